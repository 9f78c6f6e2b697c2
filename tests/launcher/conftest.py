"""Fixtures of the launcher's tests: ``ssh_hosts``, three SSH hosts on this machine, and
``launcher``, which runs ``raggio`` with a state directory of the test's own and cleans the
hosts after the test (``cluster_files.py`` writes cluster files for the hosts).

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
from ssh_hosts import SshHosts, missing_requirements

from raggio.test_utils import env_for

HOST_COUNT = 3


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
