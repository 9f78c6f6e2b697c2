"""PID 1 of one SSH test host made by ``ssh_hosts.SshHosts``.

``SshHosts`` runs this file as ``ip netns exec NS unshare -m -p -u -f --mount-proc
python host_init.py ...``, so it starts in the host's own network, mount, PID and
UTS namespaces. It makes the host look like a machine of its own: its host name
(resolving to its address through a private /etc/hosts), a private tmpfs on /tmp
and /dev/shm, and a home directory of its own (an overlay on the login user's
home: the machine's files show through, the host's writes stay its own). Then it
starts ``sshd -D -e -f CONFIG`` and reaps every process that ends up under it,
as init does.

It exits on SIGTERM, or when the fixture's process dies (the read end of a pipe
whose write end only that process holds reaches EOF). As PID 1 of the namespace,
its exit makes the kernel kill every process of the host.

It owns no SSH or network setup beyond the above: ``SshHosts`` writes the sshd
config, the keys and the hosts file, and wires the network namespace.
"""

from __future__ import annotations

import argparse
import os
import select
import shutil
import signal
import socket
import subprocess
import sys


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def _make_private(hostname: str, hosts_file: str, home: str, home_layer: str) -> None:
    socket.sethostname(hostname)
    _mount("-t", "tmpfs", "-o", "mode=1777", "tmpfs", "/tmp")
    _mount("-t", "tmpfs", "-o", "mode=1777", "tmpfs", "/dev/shm")
    _mount("--bind", hosts_file, "/etc/hosts")
    upper, work = os.path.join(home_layer, "upper"), os.path.join(home_layer, "work")
    os.makedirs(upper, exist_ok=True)
    os.makedirs(work, exist_ok=True)
    _mount("-t", "overlay", "overlay", "-o", f"lowerdir={home},upperdir={upper},workdir={work}",
           home)


def _reap_children(signum=None, frame=None) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hostname", required=True)
    parser.add_argument("--hosts-file", required=True, help="bind-mounted on /etc/hosts")
    parser.add_argument("--home", required=True, help="the login user's home directory")
    parser.add_argument("--home-layer", required=True, help="where the host's home writes go")
    parser.add_argument("--sshd-config", required=True)
    parser.add_argument("--sshd-log", required=True)
    parser.add_argument("--owner-fd", type=int, required=True,
                        help="read end of a pipe: EOF means the fixture's process is gone")
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    _make_private(args.hostname, args.hosts_file, args.home, args.home_layer)
    # Only now: reaping in a handler would steal the exit status of the mounts above.
    signal.signal(signal.SIGCHLD, _reap_children)
    with open(args.sshd_log, "ab") as log:
        # sshd re-executes itself for each connection, so it must be started by absolute path.
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        subprocess.Popen([sshd, "-D", "-e", "-f", args.sshd_config], stdin=subprocess.DEVNULL,
                         stdout=log, stderr=log, cwd="/")
    while True:
        readable, _, _ = select.select([args.owner_fd], [], [])
        if readable and not os.read(args.owner_fd, 1):
            sys.exit(0)


if __name__ == "__main__":
    main()
