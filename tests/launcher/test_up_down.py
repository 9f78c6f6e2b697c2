"""`raggio up`/`down` and the commands on a running cluster, on real SSH hosts.

The hosts are network namespaces with their own /tmp, /dev/shm and process
tree, each running Debian's sshd (``ssh_hosts.py``); the launcher runs here
and reaches them over SSH only, as it would reach machines in a rack.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
import urllib.error
import urllib.parse
import urllib.request

import pytest
import yaml

from cluster_files import ONPREM, cluster_file
from raggio.test_utils import free_port, wait_until

pytestmark = pytest.mark.timeout(600)

#: A job that runs one task on every node and prints the nodes' addresses.
JOB = """\
import raggio as ray
from raggio.util.scheduling_strategies import NodeAffinitySchedulingStrategy

ray.init()
nodes = [n for n in ray.nodes() if n["Alive"]]

@ray.remote(num_cpus=0)
def where():
    return ray.util.get_node_ip_address()

refs = [where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote()
        for n in nodes]
print("IPS", " ".join(sorted(ray.get(refs))))
print("MEMORY", int(ray.cluster_resources()["memory"]))
"""


def raggio_processes(ssh_hosts, i: int) -> list[str]:
    return [cmd for cmd in ssh_hosts.processes(i) if "raggio" in cmd]


def head_pid(ssh_hosts) -> str:
    return ssh_hosts.run(0, "pgrep -f raggio.head").stdout.split()


def test_seed_onprem_file_up_job_restart_down(tmp_path, ssh_hosts, launcher):
    path = cluster_file(tmp_path, ssh_hosts, "onprem")
    up = launcher("up", "-y", path)
    assert "is up: head" in up.stdout and "2 worker(s) alive" in up.stdout, up.stdout
    for i in range(3):  # each node ran its own setup commands
        ran = ssh_hosts.run(i, "cat /tmp/setup-ran").stdout
        assert ran.startswith("head setup" if i == 0 else f"worker setup for head "
                              f"{ssh_hosts.ips[0]}"), ran
    assert launcher("get-head-ip", path).stdout.split() == [ssh_hosts.ips[0]]
    assert sorted(launcher("get-worker-ips", path).stdout.split()) == sorted(ssh_hosts.ips[1:])

    # A job on all nodes, with the resources the file gave them.
    job = tmp_path / "job.py"
    job.write_text(JOB)
    out = launcher("submit", path, str(job)).stdout
    assert f"IPS {' '.join(sorted(ssh_hosts.ips))}" in out, out
    assert f"MEMORY {3 * 4 * 1024**3}" in out, out

    # The same file again: nothing to do, nothing restarted.
    before = head_pid(ssh_hosts)
    again = launcher("up", "-y", path)
    assert "nothing changed" in again.stdout, again.stdout
    assert head_pid(ssh_hosts) == before

    # --restart-only: raggio restarted on every node, no setup.
    ssh_hosts.run(1, "rm /tmp/setup-ran")
    launcher("up", "-y", "--restart-only", path)
    assert head_pid(ssh_hosts) != before
    assert ssh_hosts.run(1, "test -e /tmp/setup-ran").returncode != 0
    out = launcher("submit", path, str(job)).stdout
    assert f"IPS {' '.join(sorted(ssh_hosts.ips))}" in out, out

    # A changed worker setup command re-runs on the workers only; the head keeps running.
    before = head_pid(ssh_hosts)
    document = yaml.safe_load(open(path))
    document["worker_setup_commands"] = ["echo changed > /tmp/setup-ran"]
    with open(path, "w") as f:
        yaml.safe_dump(document, f)
    launcher("up", "-y", path)
    assert head_pid(ssh_hosts) == before
    assert ssh_hosts.run(2, "cat /tmp/setup-ran").stdout.strip() == "changed"
    status = launcher("exec", path, "raggio status").stdout
    assert len(re.findall(r"^ 1 node_", status, re.M)) == 3, status

    # down leaves nothing of the cluster running on any host.
    launcher("down", "-y", path)
    for i in range(3):
        assert raggio_processes(ssh_hosts, i) == [], ssh_hosts.processes(i)


def test_exec_submit_rsync_attach_on_a_ray_schema_file(tmp_path, ssh_hosts, launcher):
    data = tmp_path / "data"
    data.mkdir()
    (data / "input.txt").write_text("hello from the launcher\n")
    document = {
        "cluster_name": "rayschema",
        "max_workers": 1,
        "provider": {"type": "local", "head_ip": ssh_hosts.ips[0],
                     "worker_ips": [ssh_hosts.ips[1]]},
        "auth": {"ssh_user": ssh_hosts.user, "ssh_private_key": ssh_hosts.key_path},
        "available_node_types": {
            "head": {"node_config": {}, "resources": {"CPU": 1}, "max_workers": 0},
            "worker": {"node_config": {}, "resources": {"CPU": 1, "special": 1},
                       "min_workers": 1, "max_workers": 1}},
        "head_node_type": "head",
        "file_mounts": {"/tmp/data": str(data)},
        "setup_commands": ["cat /tmp/data/input.txt > /tmp/mounted"],
        # Ray's default start commands, unchanged.
        "head_start_ray_commands": [
            "ray stop",
            "ulimit -n 65536; ray start --head --port=6379 --object-manager-port=8076 "
            "--autoscaling-config=~/ray_bootstrap_config.yaml"],
        "worker_start_ray_commands": [
            "ray stop",
            "ulimit -n 65536; ray start --address=$RAY_HEAD_IP:6379 --object-manager-port=8076"],
    }
    path = tmp_path / "rayschema.yaml"
    path.write_text(yaml.safe_dump(document))
    path = str(path)
    launcher("up", "-y", path)
    for i in (0, 1):
        assert ssh_hosts.run(i, "cat /tmp/mounted").stdout == "hello from the launcher\n"

    # A changed mounted file is copied again; setup does not re-run, raggio keeps running.
    before = head_pid(ssh_hosts)
    (data / "input.txt").write_text("changed\n")
    launcher("up", "-y", path)
    for i in (0, 1):
        assert ssh_hosts.run(i, "cat /tmp/data/input.txt").stdout == "changed\n"
        assert ssh_hosts.run(i, "cat /tmp/mounted").stdout == "hello from the launcher\n"
    assert head_pid(ssh_hosts) == before
    (data / "input.txt").write_text("hello from the launcher\n")

    # Ray's head start command runs the autoscaler's monitor, which counts raggio up's worker
    # (the launcher gave the head its record) and launches nothing more.
    # (A round just before the worker joined counts it launching: wait for one after.)
    wait_until(lambda: "Cluster 'rayschema': 1 head, 1 worker;" in (
        text := launcher("exec", path, "raggio status").stdout) and "launching" not in text,
        what="the monitor to count the worker up set up, and launch nothing")

    # exec: output here, exit status ours; the node type's resources reached the worker.
    assert launcher("exec", path, "echo $((6*7)); exit 3", check=False).returncode == 3
    out = launcher("exec", path, "python -c 'import raggio as ray; ray.init(); "
                   "print(ray.cluster_resources().get(\"special\"))'").stdout
    assert out.strip().splitlines()[-1] == "1.0", out

    # submit passes the script's arguments.
    script = tmp_path / "echo_args.py"
    script.write_text("import sys; print('ARGS', sys.argv[1:])\n")
    out = launcher("submit", path, str(script), "a b", "--flag").stdout
    assert "ARGS ['a b', '--flag']" in out, out

    # rsync-up to every node, rsync-down from the head.
    launcher("rsync-up", path, str(data / "input.txt"), "/tmp/copied.txt", "--all-nodes")
    for i in (0, 1):
        assert ssh_hosts.run(i, "cat /tmp/copied.txt").stdout == "hello from the launcher\n"
    launcher("rsync-down", path, "/tmp/mounted", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_text() == "hello from the launcher\n"

    # attach: a shell on the head.
    out = launcher("attach", path, input="echo attached-$((6*7)) $(hostname -I)\nexit\n",
                   timeout=60).stdout
    assert f"attached-42 {ssh_hosts.ips[0]}" in out, out

    # The dashboard, forwarded to this machine.
    port = free_port()
    forward = subprocess.Popen(["raggio", "dashboard", path, "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=launcher.env)
    try:
        line = forward.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line, line + forward.stdout.read()
        login = forward.stdout.readline()
        token = urllib.parse.unquote(login.rsplit("#token=", 1)[1].strip())
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/version",
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=30) as reply:
            assert "version" in json.load(reply)
        with pytest.raises(urllib.error.HTTPError, match="401"):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/version", timeout=30)
    finally:
        forward.terminate()
        forward.wait(30)

    launcher("down", "-y", path)
    for i in (0, 1):
        assert raggio_processes(ssh_hosts, i) == [], ssh_hosts.processes(i)


def test_failing_setup_command_marks_its_node_failed_and_up_resumes(tmp_path, ssh_hosts,
                                                                    launcher):
    text = ONPREM.replace('echo "worker setup for head $RAY_HEAD_IP" > /tmp/setup-ran',
                          "test ! -e /tmp/broken || {{ echo this host is broken >&2; exit 7; }}")
    path = cluster_file(tmp_path, ssh_hosts, "failing", text)
    ssh_hosts.run(2, "touch /tmp/broken")
    try:
        up = launcher("up", "-y", path, check=False)
        assert up.returncode != 0
        output = up.stdout + up.stderr
        failed = f"worker-{ssh_hosts.ips[2]}"
        assert f"{failed} ({ssh_hosts.ips[2]})" in output and "exit status 7" in output, output
        assert "this host is broken" in output, output
        assert "Run `raggio up` again to resume" in output, output
        # The other worker is up.
        out = launcher("exec", path, "raggio head-info").stdout
        assert ssh_hosts.ips[1] in out and ssh_hosts.ips[2] not in out, out
    finally:
        ssh_hosts.run(2, "rm -f /tmp/broken")
    again = launcher("up", "-y", path)
    out = launcher("exec", path, "raggio head-info").stdout
    assert all(ip in out for ip in ssh_hosts.ips), out + again.stdout
    launcher("down", "-y", path)


def test_unreachable_worker_is_named_and_the_rest_come_up(tmp_path, ssh_hosts, launcher):
    path = cluster_file(tmp_path, ssh_hosts, "unreachable",
                        workers=[ssh_hosts.ips[1], ssh_hosts.unused_ip])
    up = launcher("up", "-y", path, check=False)
    output = up.stdout + up.stderr
    assert up.returncode != 0
    assert ssh_hosts.unused_ip in output and "check" in output.lower(), output
    out = launcher("exec", path, "raggio head-info").stdout
    assert ssh_hosts.ips[1] in out, out
    down = launcher("down", "-y", path, check=False)
    assert ssh_hosts.unused_ip in down.stdout + down.stderr
    for i in (0, 1):
        assert raggio_processes(ssh_hosts, i) == [], ssh_hosts.processes(i)


def test_a_second_launcher_is_refused_while_one_works(tmp_path, ssh_hosts, launcher):
    path = cluster_file(tmp_path, ssh_hosts, "busy")
    holder = subprocess.Popen(
        ["python", "-c", textwrap.dedent("""\
            import sys, time
            from raggio.launcher.cluster_state import ClusterState
            with ClusterState("busy").operation("raggio up"):
                print("holding", flush=True)
                sys.stdin.read()
            """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=launcher.env)
    try:
        assert holder.stdout.readline().strip() == "holding"
        up = launcher("up", "-y", path, check=False)
        assert up.returncode != 0
        assert f"process {holder.pid} raggio up" in up.stderr, up.stderr
    finally:
        holder.communicate("", timeout=30)
    assert os.path.exists(tmp_path / "clusters" / "busy" / "operation.lock")
    wait_until(lambda: holder.poll() is not None, what="the holder to exit")
