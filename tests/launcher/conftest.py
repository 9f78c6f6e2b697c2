"""Fixtures of the launcher's tests: ``ssh_hosts``, three SSH hosts on this machine.

The hosts (``ssh_hosts.SshHosts``) are network namespaces on a private bridge, each
running its own sshd, with its own processes, /tmp, /dev/shm and home directory;
``raggio`` and the Python running the tests are found on every one of them. They are
made once per test session (about a second) and shared: a test that starts processes
on a host stops them itself (``ssh_hosts.reset(i)`` kills them and empties the host's
/tmp and /dev/shm). Tests that need them are skipped, with the reason, only where they
cannot be made (not root, or sshd or iproute2 missing; ``.ci/run`` installs them).
"""

import pytest
from ssh_hosts import SshHosts, missing_requirements

HOST_COUNT = 3


@pytest.fixture(scope="session")
def ssh_hosts():
    """Three SSH hosts (``SshHosts``), for the whole test session."""
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    with SshHosts(HOST_COUNT) as hosts:
        yield hosts
