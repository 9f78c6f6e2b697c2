"""Fixtures of the launcher's tests: ``ssh_hosts``, three SSH hosts on this machine, and
``launcher``, which runs ``raggio`` with a state directory of the test's own and cleans the
hosts after the test; ``cluster_file`` writes the seed's on-premise file for the hosts.

The hosts (``ssh_hosts.SshHosts``) are network namespaces on a private bridge, each
running its own sshd, with its own processes, /tmp, /dev/shm and home directory;
``raggio`` and the Python running the tests are found on every one of them. They are
made once per test session (about a second) and shared: a test that starts processes
on a host stops them itself (``ssh_hosts.reset(i)`` kills them and empties the host's
/tmp and /dev/shm). Tests that need them are skipped, with the reason, only where they
cannot be made (not root, or sshd or iproute2 missing; ``.ci/run`` installs them).
"""

import subprocess

import pytest
import yaml
from ssh_hosts import SshHosts, missing_requirements

from raggio.test_utils import env_for

HOST_COUNT = 3

#: The seed's on-premise cluster file, as its deployment chapter writes it (the addresses and
#: the key are the test hosts').
ONPREM = """\
cluster_name: {name}
provider:
  type: local
  head_ip: {head_ip}
  worker_ips: [{worker_ips}]
auth:
  ssh_user: {user}
  ssh_private_key: {key}
head_node:
  resources:
    CPU: 2
    memory: 4Gi
worker_nodes:
  resources:
    CPU: 2
    memory: 4Gi
head_setup_commands:
  - echo "head setup on $(hostname -I)" > /tmp/setup-ran
worker_setup_commands:
  - echo "worker setup for head $RAY_HEAD_IP" > /tmp/setup-ran
head_start_ray_commands:
  - ray start --head --port=6379
worker_start_ray_commands:
  - ray start --address=$RAY_HEAD_IP:6379
"""



@pytest.fixture(scope="session")
def ssh_hosts():
    """Three SSH hosts (``SshHosts``), for the whole test session."""
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    with SshHosts(HOST_COUNT) as hosts:
        yield hosts


@pytest.fixture
def launcher(tmp_path, ssh_hosts):
    """Run ``raggio`` (the launcher's commands) with this test's state directory."""
    env = env_for(tmp_path / "raggio")
    env["RAGGIO_LAUNCHER_DIR"] = str(tmp_path / "clusters")
    env["RAGGIO_LAUNCHER_SSH_WAIT_S"] = "8"

    def run(*args: str, timeout: float = 300, check: bool = True, **kwargs):
        proc = subprocess.run(["raggio", *args], capture_output=True, text=True, env=env,
                              timeout=timeout, **kwargs)
        if check:
            assert proc.returncode == 0, f"raggio {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
        return proc

    run.env = env
    yield run
    for i in range(len(ssh_hosts.ips)):
        ssh_hosts.reset(i)


def cluster_file(tmp_path, ssh_hosts, name: str, text: str = ONPREM, workers=None, **changes):
    worker_ips = ssh_hosts.ips[1:] if workers is None else workers
    document = yaml.safe_load(text.format(
        name=name, head_ip=ssh_hosts.ips[0], worker_ips=", ".join(worker_ips),
        user=ssh_hosts.user, key=ssh_hosts.key_path))
    document.update(changes)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return str(path)


