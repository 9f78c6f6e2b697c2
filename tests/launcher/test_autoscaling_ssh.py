"""The autoscaler on a cluster `raggio up` made on SSH hosts: the head's monitor sets up a
worker from the file's `worker_ips` for pending work, over SSH from the head, removes it
when idle, and releases one whose raggio stopped; `raggio down` then stops every node, the
autoscaler's included."""

from __future__ import annotations

import json

import pytest
import yaml

from raggio.test_utils import wait_until

pytestmark = pytest.mark.timeout(600)

JOB = """\
import raggio as ray

ray.init()

@ray.remote(num_cpus=1)
def where():
    return ray.util.get_node_ip_address()

print("RAN ON", ray.get(where.remote(), timeout=240))
"""


def alive_ips(launcher, path) -> list[str]:
    return json.loads(launcher("exec", path, "raggio head-info").stdout.splitlines()[-1])[
        "alive_ips"]


def test_the_heads_autoscaler_adds_a_worker_from_the_pool_and_removes_it(
        tmp_path, ssh_hosts, launcher):
    document = {
        "cluster_name": "autoscaled",
        "max_workers": 1,
        "idle_timeout_minutes": 0.1,
        "provider": {"type": "local", "head_ip": ssh_hosts.ips[0],
                     "worker_ips": ssh_hosts.ips[1:]},
        "auth": {"ssh_user": ssh_hosts.user, "ssh_private_key": ssh_hosts.key_path},
        "available_node_types": {
            "head": {"node_config": {}, "resources": {"CPU": 0}, "max_workers": 0},
            "worker": {"node_config": {}, "resources": {"CPU": 1},
                       "min_workers": 0, "max_workers": 1}},
        "head_node_type": "head",
        "head_start_ray_commands": [
            "ray stop",
            "RAGGIO_AUTOSCALER_UPDATE_INTERVAL_S=1 ray start --head --port=6379 "
            "--autoscaling-config=~/ray_bootstrap_config.yaml"],
        "worker_start_ray_commands": ["ray stop", "ray start --address=$RAY_HEAD_IP:6379"],
    }
    path = tmp_path / "autoscaled.yaml"
    path.write_text(yaml.safe_dump(document))
    path = str(path)
    launcher("up", "-y", path)  # min_workers 0: the head alone
    assert alive_ips(launcher, path) == [ssh_hosts.ips[0]]

    # A task needs a CPU, which only a worker has: the head's autoscaler sets one up.
    job = tmp_path / "job.py"
    job.write_text(JOB)
    out = launcher("submit", path, str(job)).stdout
    ran_on = out.split("RAN ON ", 1)[1].split()[0]
    assert ran_on in ssh_hosts.ips[1:], out
    assert launcher("exec", path, "test -s ~/.raggio/clusters/autoscaled/state.json",
                    check=False).returncode == 0

    # Idle past the timeout: removed, and raggio no longer runs there.
    wait_until(lambda: alive_ips(launcher, path) == [ssh_hosts.ips[0]], timeout_s=120,
               what="the idle worker to leave")
    index = ssh_hosts.ips.index(ran_on)
    wait_until(lambda: not [c for c in ssh_hosts.processes(index) if "raggio" in c],
               timeout_s=60, what="raggio to stop on the removed worker")

    # A second demand: the autoscaler sets a worker up again.
    out = launcher("submit", path, str(job)).stdout
    assert out.split("RAN ON ", 1)[1].split()[0] in ssh_hosts.ips[1:], out

    # Its raggio stopped under the autoscaler (as by a crash): the worker is released, and
    # the next demand gets a worker (it holds the only slot, max_workers 1, until then).
    launcher("down", "-y", "--workers-only", path)
    out = launcher("submit", path, str(job)).stdout
    assert out.split("RAN ON ", 1)[1].split()[0] in ssh_hosts.ips[1:], out

    # `down` stops that worker too, though the launcher never set it up itself.
    launcher("down", "-y", path)
    for i in range(len(ssh_hosts.ips)):
        assert not [c for c in ssh_hosts.processes(i) if "raggio" in c], ssh_hosts.processes(i)
