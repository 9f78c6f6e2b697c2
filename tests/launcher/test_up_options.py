"""`raggio up`/`down` flags and a node's bad day: a port in use, a wrong key, worker counts."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml
from cluster_files import cluster_file

from raggio.test_utils import wait_until

pytestmark = pytest.mark.timeout(600)


def alive_ips(launcher, path) -> list[str]:
    return json.loads(launcher("exec", path, "raggio head-info").stdout.splitlines()[-1])[
        "alive_ips"]


def test_a_port_in_use_on_the_head_is_named_with_the_node(tmp_path, ssh_hosts, launcher):
    path = cluster_file(tmp_path, ssh_hosts, "portinuse", workers=[])
    ssh_hosts.run(0, "setsid python -m http.server 6379 >/dev/null 2>&1 < /dev/null &")
    wait_until(lambda: ssh_hosts.run(0, "ss -ltn | grep -q ':6379 '").returncode == 0,
               what="the port holder to listen")
    up = launcher("up", "-y", path, check=False)
    output = up.stdout + up.stderr
    assert up.returncode != 0
    assert f"head-{ssh_hosts.ips[0]} ({ssh_hosts.ips[0]})" in output, output
    assert "6379" in output and "in use" in output, output


def test_a_wrong_key_names_the_node_and_the_fix(tmp_path, ssh_hosts, launcher):
    other_key = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)],
                   check=True)
    path = cluster_file(tmp_path, ssh_hosts, "wrongkey")
    document = yaml.safe_load(open(path))
    document["auth"]["ssh_private_key"] = str(other_key)
    with open(path, "w") as f:
        yaml.safe_dump(document, f)
    up = launcher("up", "-y", path, check=False)
    assert up.returncode != 0
    assert ssh_hosts.ips[0] in up.stderr and str(other_key) in up.stderr, up.stderr
    assert "auth.ssh_private_key" in up.stderr, up.stderr


def test_worker_counts_no_restart_and_partial_down(tmp_path, ssh_hosts, launcher):
    document = {
        "cluster_name": "counts",
        "provider": {"type": "local", "head_ip": ssh_hosts.ips[0],
                     "worker_ips": ssh_hosts.ips[1:]},
        "auth": {"ssh_user": ssh_hosts.user, "ssh_private_key": ssh_hosts.key_path},
        "available_node_types": {
            "head": {"resources": {"CPU": 1}, "node_config": {}, "max_workers": 0},
            "worker": {"resources": {"CPU": 1}, "node_config": {}, "min_workers": 1,
                       "max_workers": 2}},
        "head_node_type": "head",
        "max_workers": 2,
        "head_start_ray_commands": ["ray start --head --port=6379"],
        "worker_start_ray_commands": ["ray start --address=$RAY_HEAD_IP:6379"],
    }
    path = tmp_path / "counts.yaml"
    path.write_text(yaml.safe_dump(document))
    path = str(path)

    launcher("up", "-y", "--max-workers", "0", path)  # the head alone
    assert alive_ips(launcher, path) == [ssh_hosts.ips[0]]
    launcher("up", "-y", path)  # the type's min_workers: one
    assert len(alive_ips(launcher, path)) == 2
    launcher("up", "-y", "--min-workers", "2", path)
    assert sorted(alive_ips(launcher, path)) == sorted(ssh_hosts.ips)

    # --no-restart: a changed start command is recorded, nothing restarted.
    head_pids = ssh_hosts.run(0, "pgrep -f raggio.head").stdout.split()
    document["head_start_ray_commands"] = ["ray start --head --port=6379 --num-cpus=1"]
    with open(path, "w") as f:
        yaml.safe_dump(document, f)
    launcher("up", "-y", "--no-restart", path)
    assert ssh_hosts.run(0, "pgrep -f raggio.head").stdout.split() == head_pids

    # down --workers-only keeps the head; --keep-min-workers keeps one worker too.
    launcher("down", "-y", "--workers-only", "--keep-min-workers", path)
    assert len(alive_ips(launcher, path)) == 2
    assert len(launcher("get-worker-ips", path).stdout.split()) == 1
    launcher("down", "-y", "--workers-only", path)
    assert launcher("get-worker-ips", path).stdout.split() == []
    assert ssh_hosts.ips[0] in launcher("get-head-ip", path).stdout
    launcher("down", "-y", path)
    missing = launcher("get-head-ip", path, check=False)
    assert missing.returncode != 0 and "raggio up" in missing.stderr, missing.stderr


def test_monitor_follows_the_heads_autoscaler_log(tmp_path, ssh_hosts, launcher):
    path = cluster_file(tmp_path, ssh_hosts, "monitor", workers=[])
    launcher("up", "-y", path)
    ssh_hosts.run(0, "echo 'autoscaler: first line' >> /tmp/raggio/session_latest/logs/"
                     "monitor.log")
    follow = subprocess.Popen(["raggio", "monitor", path], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=launcher.env)
    try:
        assert follow.stdout.readline().strip() == "autoscaler: first line"
        ssh_hosts.run(0, "echo 'autoscaler: second line' >> /tmp/raggio/session_latest/logs/"
                         "monitor.log")
        assert follow.stdout.readline().strip() == "autoscaler: second line"
    finally:
        follow.terminate()
        follow.wait(30)
