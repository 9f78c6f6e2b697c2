"""Throwaway SSH hosts on this one Linux machine, for the cluster launcher's tests.

``SshHosts(count)`` makes ``count`` hosts that look like machines on a LAN: a Linux
bridge in the root network namespace with a private /24 (the bridge has .1, so this
process reaches every host directly) and, per host, a network namespace wired to
the bridge (address .10+i, loopback up, no default route) in which ``host_init.py``
runs as PID 1 of new PID, mount and UTS namespaces. Each host therefore has its own
processes, host name (resolving to its address), /tmp, /dev/shm and home directory
(an overlay on the login user's: the machine's files, such as the Python install,
show through; the host's writes stay its own), and runs an sshd that accepts the
fixture's key for root. The machine's file system is otherwise shared: raggio and
Python are the ones this process runs, found through the ``PATH`` and ``PYTHONPATH``
every SSH session gets.

The init processes are not children of this process (``setsid -f``), so the test
suite's leak check sees no host process; each init exits when this process dies
(a pipe only this process can write reaches EOF), and the kernel then ends the
whole host. Keys, configs and logs live under /var/tmp/raggio-ssh-hosts/<tag>/,
outside the hosts' private /tmp; the network devices and files of a fixture whose
process died without ``close()`` are removed by the next one to start.

``tests/launcher/conftest.py`` makes the session-scoped ``ssh_hosts`` fixture from
this; the SSH layer's and the launcher's tests use it.
"""

from __future__ import annotations

import atexit
import ipaddress
import json
import os
import pwd
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import psutil

FIXTURE_ROOT = "/var/tmp/raggio-ssh-hosts"
#: In each fixture's directory: "<pid> <start time>" of the process that made it.
OWNER_FILE = "owner"
HOST_INIT = str(Path(__file__).with_name("host_init.py"))
REPO_ROOT = str(Path(__file__).resolve().parents[2])
SSH_PORT = 22
#: Where sshd and the other system tools are, whatever this process's PATH says.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
REQUIRED_TOOLS = ("sshd", "ssh-keygen", "ip", "nsenter", "unshare", "setsid", "mount")
#: How long a host gets to start (namespaces, mounts, sshd listening).
START_TIMEOUT_S = 20.0
FIRST_HOST_OCTET = 10
#: The bridge has .1; a launcher namespace .2; hosts .10 and up; nothing ever has this one.
LAUNCHER_OCTET = 2
UNUSED_OCTET = 250


def missing_requirements() -> str | None:
    """Why SSH test hosts cannot be made on this machine, or None when they can."""
    if sys.platform != "linux" or os.geteuid() != 0:
        return "SSH test hosts need root on Linux (network namespaces and mounts)"
    for tool in REQUIRED_TOOLS:
        if shutil.which(tool, path=_search_path()) is None:
            return (f"SSH test hosts need `{tool}` (Debian packages openssh-server, "
                    "iproute2, util-linux)")
    return None


class SshHosts:
    """``count`` SSH hosts on a private bridge; a context manager (``close()`` ends them).

    Args:
        count: How many hosts.
        path_prefix: Directories put first in the ``PATH`` of every SSH session.
        env: More variables every SSH session gets (sshd's ``SetEnv``).
        launcher_ns: Also make a network namespace on the bridge without sshd
            (``launcher_ns``, address ``launcher_ip``), to run a launcher inside.
    """

    count: int
    tag: str | None           #: 4 hex digits naming the bridge, namespaces and fixture dir
    dir: str | None           #: fixture files: keys, configs, logs, home layers
    bridge: str | None
    bridge_ip: str
    ips: list[str]
    hostnames: list[str]      #: also each host's network namespace name
    unused_ip: str            #: an address in the subnet that no host has
    user: str                 #: "root"
    home: str                 #: the user's home directory (each host has its own)
    key_path: str             #: the private key every host accepts (mode 0600)
    launcher_ns: str | None
    launcher_ip: str | None
    init_pids: list[int]      #: each host's init, as this process sees it

    def __init__(self, count: int, *, path_prefix: Sequence[str] = (),
                 env: dict[str, str] | None = None, launcher_ns: bool = False):
        self.count = count
        self._path_prefix = list(path_prefix)
        self._extra_env = dict(env or {})
        self._want_launcher_ns = launcher_ns
        self.user = "root"
        self.home = pwd.getpwnam(self.user).pw_dir
        self.ips, self.hostnames = [], []
        self.launcher_ns = self.launcher_ip = None
        self.tag = self.dir = self.bridge = None
        self.init_pids = []
        self._owner_write_fd: int | None = None
        self._started = self._closed = False

    # -- lifecycle --

    def __enter__(self) -> SshHosts:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def start(self) -> None:
        """Make the bridge and the hosts; returns once every sshd accepts connections."""
        if self._started:
            return
        self._started = True
        atexit.register(self.close)
        try:
            self._make_fixture_dir()
            self._make_keys()
            self._make_bridge()
            for index in range(self.count):
                self._add_host_network(index)
            if self._want_launcher_ns:
                self._add_launcher_ns()
            self._boot_hosts()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """End every host, delete the namespaces, bridge and files. Idempotent."""
        if self._closed or not self._started:
            return
        self._closed = True
        atexit.unregister(self.close)
        for pid in self.init_pids:
            _kill_and_wait(pid)
        if self._owner_write_fd is not None:
            os.close(self._owner_write_fd)  # ends any init not found yet
        if self.bridge is None:
            return
        for index in range(self.count):
            _quiet(["ip", "link", "del", self._veth(index)])
            _quiet(["ip", "netns", "del", self._netns_name(index)])
        if self.launcher_ns is not None:
            _quiet(["ip", "link", "del", self._veth("l")])
            _quiet(["ip", "netns", "del", self.launcher_ns])
        _quiet(["ip", "link", "del", self.bridge])
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- using the hosts --

    def session_env(self) -> dict[str, str]:
        """The variables sshd sets for every session beyond its own (USER, HOME, ...)."""
        path = ":".join([*self._path_prefix, os.path.dirname(sys.executable), SYSTEM_PATH])
        pythonpath = os.environ.get("PYTHONPATH") or REPO_ROOT
        return {"PATH": path, "PYTHONPATH": pythonpath, **self._extra_env}

    def run(self, index: int, command: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        """Run ``command`` with bash inside host ``index`` (not over SSH), in a session's env.

        Returns the CompletedProcess (text stdout and stderr); a non-zero exit is not raised.
        A command that leaves a process behind must redirect that process's output, or this
        waits for it until ``timeout``.
        """
        env = {"HOME": self.home, "USER": self.user, "LOGNAME": self.user, **self.session_env()}
        argv = [_tool("nsenter"), "-t", str(self.init_pids[index]), "-n", "-m", "-p", "-u",
                f"--wd={self.home}", "env", "-i", *(f"{k}={v}" for k, v in env.items()),
                "bash", "-c", command]
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)

    def processes(self, index: int) -> list[str]:
        """Command lines of the processes running in host ``index``, but its init and sshd's."""
        found = []
        for proc in self._host_processes(index):
            try:
                cmdline = proc.cmdline()
            except psutil.Error:
                continue
            if cmdline:
                found.append(" ".join(cmdline))
        return found

    def kill_processes(self, index: int) -> None:
        """SIGKILL every process of host ``index`` but its init and sshd's; wait until gone."""
        procs = self._host_processes(index)
        for proc in procs:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(procs, timeout=START_TIMEOUT_S)

    def reset(self, index: int) -> None:
        """Make host ``index`` as new but for its home: no processes but sshd's, empty /tmp
        and /dev/shm (so no raggio session state either)."""
        self.kill_processes(index)
        result = self.run(index, "find /tmp /dev/shm -mindepth 1 -delete")
        if result.returncode != 0:
            raise RuntimeError(f"Could not empty /tmp and /dev/shm of host {index}: "
                               f"{result.stderr}")

    def _host_processes(self, index: int) -> list[psutil.Process]:
        init_pid = self.init_pids[index]
        namespace = os.readlink(f"/proc/{init_pid}/ns/pid")
        found = []
        for proc in psutil.process_iter(["name"]):
            try:
                if proc.pid == init_pid or os.readlink(f"/proc/{proc.pid}/ns/pid") != namespace:
                    continue
            except OSError:
                continue
            if proc.info["name"] != "sshd":
                found.append(proc)
        return found

    def stop_sshd(self, index: int) -> None:
        """Stop host ``index``'s sshd listener (sessions already open go on)."""
        pid_file = os.path.join(self._host_dir(index), "sshd.pid")
        with open(pid_file) as f:
            sshd_pid = f.read().strip()
        self.run(index, f"kill {sshd_pid}")
        _wait_for(lambda: not _accepts(self.ips[index]), START_TIMEOUT_S,
                   what=f"sshd of host {index} to stop")

    def start_sshd(self, index: int) -> None:
        """Start host ``index``'s sshd again after ``stop_sshd``; nothing if it is up."""
        if _accepts(self.ips[index]):
            return
        config = os.path.join(self._host_dir(index), "sshd_config")
        log = os.path.join(self._host_dir(index), "sshd.log")
        result = self.run(index, f"{_tool('sshd')} -E {log} -f {config}")
        if result.returncode != 0:
            raise RuntimeError(f"sshd of host {index} did not start: {result.stderr}")
        self._wait_sshd(index)

    def sshd_log(self, index: int) -> str:
        """What host ``index``'s sshd has logged (for failure messages)."""
        try:
            with open(os.path.join(self._host_dir(index), "sshd.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # -- setup steps --

    def _make_fixture_dir(self) -> None:
        os.makedirs(FIXTURE_ROOT, mode=0o700, exist_ok=True)
        remove_stale_fixtures()
        while True:
            self.tag = secrets.token_hex(2)
            self.dir = os.path.join(FIXTURE_ROOT, self.tag)
            try:
                os.mkdir(self.dir, 0o700)
                break
            except FileExistsError:
                continue
        self.bridge = _bridge_name(self.tag)
        with open(os.path.join(self.dir, OWNER_FILE), "w") as f:
            f.write(_process_key(psutil.Process()))
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation dir

    def _make_keys(self) -> None:
        self.key_path = os.path.join(self.dir, "id_ed25519")
        self._host_key = os.path.join(self.dir, "ssh_host_ed25519_key")
        for path in (self.key_path, self._host_key):
            _check(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"raggio-{self.tag}",
                    "-f", path])
        self._authorized_keys = os.path.join(self.dir, "authorized_keys")
        shutil.copyfile(self.key_path + ".pub", self._authorized_keys)

    def _make_bridge(self) -> None:
        subnet = _free_subnet()
        self._subnet_prefix = str(subnet.network_address).rsplit(".", 1)[0]
        self.bridge_ip = self._address(1)
        self.unused_ip = self._address(UNUSED_OCTET)
        _check(["ip", "link", "add", self.bridge, "type", "bridge"])
        _check(["ip", "addr", "add", f"{self.bridge_ip}/24", "dev", self.bridge])
        _check(["ip", "link", "set", self.bridge, "up"])

    def _add_host_network(self, index: int) -> None:
        name = self._netns_name(index)
        self._wire_namespace(name, self._veth(index), self._address(FIRST_HOST_OCTET + index))
        self.hostnames.append(name)
        self.ips.append(self._address(FIRST_HOST_OCTET + index))
        os.mkdir(self._host_dir(index))

    def _add_launcher_ns(self) -> None:
        self.launcher_ns = f"{self.bridge}-l"
        self.launcher_ip = self._address(LAUNCHER_OCTET)
        self._wire_namespace(self.launcher_ns, self._veth("l"), self.launcher_ip)

    def _wire_namespace(self, netns: str, veth: str, ip: str) -> None:
        _check(["ip", "netns", "add", netns])
        _check(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns])
        _check(["ip", "link", "set", veth, "master", self.bridge, "up"])
        _check(["ip", "-n", netns, "addr", "add", f"{ip}/24", "dev", "eth0"])
        _check(["ip", "-n", netns, "link", "set", "eth0", "up"])
        _check(["ip", "-n", netns, "link", "set", "lo", "up"])

    def _boot_hosts(self) -> None:
        hosts_file = os.path.join(self.dir, "hosts")
        with open(hosts_file, "w") as f:
            f.write("127.0.0.1\tlocalhost\n")
            f.writelines(f"{ip}\t{name}\n" for ip, name in zip(self.ips, self.hostnames))
        read_fd, self._owner_write_fd = os.pipe()
        try:
            for index in range(self.count):
                self._launch_init(index, hosts_file, read_fd)
        finally:
            os.close(read_fd)
        for index in range(self.count):
            self.init_pids.append(self._find_init(index))
        for index in range(self.count):
            self._wait_sshd(index)

    def _launch_init(self, index: int, hosts_file: str, owner_fd: int) -> None:
        host_dir = self._host_dir(index)
        config = os.path.join(host_dir, "sshd_config")
        with open(config, "w") as f:
            f.write(self._sshd_config(index))
        argv = [_tool("setsid"), "-f", _tool("ip"), "netns", "exec", self.hostnames[index],
                "unshare", "-m", "-p", "-u", "-f", "--mount-proc",
                sys.executable, HOST_INIT, "--hostname", self.hostnames[index],
                "--hosts-file", hosts_file, "--home", self.home,
                "--home-layer", os.path.join(host_dir, "home"),
                "--sshd-config", config, "--sshd-log", os.path.join(host_dir, "sshd.log"),
                "--owner-fd", str(owner_fd)]
        with open(os.path.join(host_dir, "init.log"), "ab") as log:
            subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                           pass_fds=[owner_fd], check=True,
                           env={**os.environ, "PATH": _search_path()})

    def _sshd_config(self, index: int) -> str:
        session_env = self.session_env()
        if any('"' in key + value for key, value in session_env.items()):
            raise ValueError(f"sshd's SetEnv cannot hold a double quote: {session_env}")
        set_env = " ".join(f'"{key}={value}"' for key, value in session_env.items())
        host_dir = self._host_dir(index)
        return "\n".join([
            f"ListenAddress {self.ips[index]}",
            f"Port {SSH_PORT}",
            f"HostKey {self._host_key}",
            f"AuthorizedKeysFile {self._authorized_keys}",
            f"PidFile {os.path.join(host_dir, 'sshd.pid')}",
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "MaxSessions 64",
            "MaxStartups 64",
            "PrintMotd no",
            "PrintLastLog no",
            "LogLevel VERBOSE",
            "Subsystem sftp internal-sftp",
            f"SetEnv {set_env}",
            "",
        ])

    def _find_init(self, index: int) -> int:
        """The pid (in this namespace) of host ``index``'s init: the one that is 1 inside."""
        def find() -> int | None:
            pids = _check(["ip", "netns", "pids", self.hostnames[index]]).split()
            for pid in pids:
                try:
                    with open(f"/proc/{pid}/status") as f:
                        status = f.read()
                except OSError:
                    continue
                for line in status.splitlines():
                    if line.startswith("NSpid:") and line.split()[1:] == [pid, "1"]:
                        return int(pid)
            return None
        return _wait_for(find, START_TIMEOUT_S, what=f"the init of host {index} "
                         f"(log: {os.path.join(self._host_dir(index), 'init.log')})")

    def _wait_sshd(self, index: int) -> None:
        try:
            _wait_for(lambda: _accepts(self.ips[index]), START_TIMEOUT_S,
                       what=f"sshd of host {index} at {self.ips[index]}:{SSH_PORT}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; its log:\n{self.sshd_log(index)}") from None

    # -- names --

    def _address(self, last_octet: int) -> str:
        return f"{self._subnet_prefix}.{last_octet}"

    def _netns_name(self, index: int) -> str:
        return f"{self.bridge}-h{index}"

    def _veth(self, index: int | str) -> str:
        return f"{self.bridge}-v{index}"  # at most 15 characters, as Linux requires

    def _host_dir(self, index: int) -> str:
        return os.path.join(self.dir, f"host{index}")


def remove_stale_fixtures() -> None:
    """Delete the namespaces, bridge and files of fixtures whose process died without close().

    Their hosts are gone already (each init exits with that process); only the network
    devices and files remain. Fixtures of live processes are left alone.
    """
    try:
        tags = os.listdir(FIXTURE_ROOT)
    except FileNotFoundError:
        return
    namespaces = _check(["ip", "netns", "list"]).split()
    for tag in tags:
        fixture_dir = os.path.join(FIXTURE_ROOT, tag)
        try:
            with open(os.path.join(fixture_dir, OWNER_FILE)) as f:
                owner = f.read()
        except OSError:
            continue  # being made right now, or not a fixture's
        if _owner_alive(owner):
            continue
        bridge = _bridge_name(tag)
        for netns in namespaces:
            if netns.startswith(bridge + "-"):
                _quiet(["ip", "netns", "del", netns])
        _quiet(["ip", "link", "del", bridge])
        shutil.rmtree(fixture_dir, ignore_errors=True)


def _process_key(proc: psutil.Process) -> str:
    return f"{proc.pid} {proc.create_time()}"


def _owner_alive(owner: str) -> bool:
    pid = int(owner.split()[0])
    try:
        return _process_key(psutil.Process(pid)) == owner
    except psutil.NoSuchProcess:
        return False


def _bridge_name(tag: str) -> str:
    return f"rgb{tag}"


def _free_subnet() -> ipaddress.IPv4Network:
    """A 10.x.y.0/24 that no route of this namespace overlaps."""
    routes = json.loads(_check(["ip", "-j", "-4", "route", "show", "table", "all"]))
    used = [ipaddress.ip_network(route["dst"], strict=False) for route in routes
            if route.get("dst", "default") != "default"]
    for _ in range(1000):
        second, third = random.randint(200, 254), random.randint(0, 255)
        candidate = ipaddress.ip_network(f"10.{second}.{third}.0/24")
        if not any(candidate.overlaps(net) for net in used):
            return candidate
    raise RuntimeError("No free 10.x.y.0/24 subnet for the SSH test hosts' bridge")


def _accepts(ip: str) -> bool:
    try:
        socket.create_connection((ip, SSH_PORT), timeout=0.5).close()
        return True
    except OSError:
        return False


def _wait_for(condition, timeout_s: float, what: str):
    """raggio.test_utils.wait_until's loop: this module imports nothing of raggio, because
    bench/launcher_bench.py loads it under Ray's Python too."""
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"Gave up waiting for {what} after {timeout_s:.0f} s")
        time.sleep(0.05)
    return value


def _kill_and_wait(pid: int) -> None:
    """SIGKILL a host's init (the kernel then kills its host) and wait until it is gone."""
    def gone() -> bool:
        try:
            return proc.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
    try:
        proc = psutil.Process(pid)
        proc.send_signal(signal.SIGKILL)
    except psutil.NoSuchProcess:
        return
    _wait_for(gone, START_TIMEOUT_S, what=f"host init {pid} to end")


def _search_path() -> str:
    return os.environ.get("PATH", "") + ":" + SYSTEM_PATH


def _tool(name: str) -> str:
    return shutil.which(name, path=_search_path()) or name


def _check(argv: list[str]) -> str:
    result = subprocess.run([_tool(argv[0]), *argv[1:]], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed ({result.returncode}): "
                           f"{result.stderr.strip()}")
    return result.stdout


def _quiet(argv: list[str]) -> None:
    subprocess.run([_tool(argv[0]), *argv[1:]], capture_output=True)
