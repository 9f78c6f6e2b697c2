"""SSH to cluster nodes for the cluster launcher: commands, file copies and port forwards.

This module owns one SSH session to one node (asyncssh): connecting with retries until
a deadline, and the words of every way that fails (``NodeUnreachableError``); running a
shell command there with its environment, its secrets and its output streamed line by
line; copying files and directories both ways (rsync over the system ssh client when
both ends have rsync, as Ray's launcher does, SFTP otherwise); forwarding a local port;
and the system ssh client's argv (for ``raggio attach``). It does not decide what to
run or where: the updater and the node providers of ``raggio.launcher`` do.

As in Ray's launcher, host keys are not checked: cluster nodes come and go, and a
reused address comes back with a new key. The user's ~/.ssh/config applies (ProxyJump
and the like), to asyncssh and to the system ssh client alike; the key is the one the
cluster config names, never an agent's.

Paths on the node that start with ``~/`` are relative to the login user's home (the
directory every command starts in), for rsync and SFTP alike.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import os
import posixpath
import random
import re
import shlex
import shutil
from dataclasses import dataclass
from fnmatch import fnmatch
from typing import Callable, Sequence

import asyncssh

from raggio.exceptions import NodeCommandError, NodeUnreachableError

#: How much of a command's output RunResult keeps (its end).
OUTPUT_TAIL_CHARS = 4096
#: One connection attempt's limit; ``connect`` retries until its own deadline.
ATTEMPT_TIMEOUT_S = 10.0
#: Retry delays double from the first to the last, with jitter, as in distributed's connect().
FIRST_RETRY_DELAY_S = 0.1
MAX_RETRY_DELAY_S = 2.0
#: A command past its deadline gets SIGTERM, and SIGKILL this long after.
KILL_AFTER_S = 5.0
#: coreutils' timeout exits with these when the deadline passed (SIGTERM, SIGKILL sent);
#: a command that exits so by itself before its deadline is not taken for a timeout.
TIMEOUT_EXIT_STATUSES = (124, 137)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class SshTarget:
    """Where to SSH: a node's address, the login user and the private key to log in with."""

    host: str
    user: str
    #: None: the user's own keys (~/.ssh/id_*) and SSH agent, as the ssh client would use.
    key_path: str | None
    port: int = 22

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"

    @classmethod
    def of(cls, auth: dict, host: str) -> "SshTarget":
        """``host`` with a cluster file's ``auth`` section (``ClusterConfig.auth``)."""
        return cls(host=host, user=auth["ssh_user"], key_path=auth["ssh_private_key"],
                   port=auth.get("ssh_port", 22))


@dataclass(frozen=True)
class RunResult:
    """How a command ended: its exit status (negative: killed by that signal) and output.

    ``output`` is the end (about 4 KB) of its standard output and error, interleaved.
    """

    exit_status: int
    output: str


async def connect(target: SshTarget, *, wait_s: float) -> SshSession:
    """Open an SSH session to ``target``, retrying with backoff for up to ``wait_s``.

    A node that is still booting refuses or does not answer at first, so those are
    retried; a refused key or an unreadable key file is not (the same key will not work
    a second later).

    Raises:
        NodeUnreachableError: no session before the deadline, or the key is refused or
            unreadable; the message says which, with the fix.
    """
    # asyncssh's defaults (None) are the user's own keys and agent, as the ssh client's.
    client_keys = [_read_key(target)] if target.key_path else None
    agent_path = None if target.key_path else ()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    delay_s = FIRST_RETRY_DELAY_S
    while True:
        attempt_s = max(0.1, min(ATTEMPT_TIMEOUT_S, deadline - loop.time()))
        try:
            connection = await asyncssh.connect(
                target.host, target.port, username=target.user, client_keys=client_keys,
                agent_path=agent_path, known_hosts=None, connect_timeout=attempt_s)
            return SshSession(target, connection)
        except asyncssh.PermissionDenied as exc:
            raise NodeUnreachableError(
                f"The SSH server at {target.host}:{target.port} refused the key "
                f"{target.key_path} for user {target.user}: check auth.ssh_user and "
                f"auth.ssh_private_key in the cluster config (the key's public half must be "
                f"in ~{target.user}/.ssh/authorized_keys on the node).") from exc
        except (OSError, asyncio.TimeoutError, asyncssh.Error) as exc:
            failure = exc
        remaining_s = deadline - loop.time()
        if remaining_s <= 0:
            raise NodeUnreachableError(
                f"Could not connect to {target} over SSH for {wait_s:.0f} s: "
                f"{_describe_failure(failure, target)}") from failure
        await asyncio.sleep(min(remaining_s, delay_s * random.uniform(0.5, 1.5)))
        delay_s = min(MAX_RETRY_DELAY_S, delay_s * 2)


def _read_key(target: SshTarget) -> asyncssh.SSHKey:
    try:
        return asyncssh.read_private_key(target.key_path)
    except OSError as exc:
        cause = exc.strerror or str(exc)
    except (asyncssh.KeyImportError, ValueError) as exc:
        cause = f"not a private key without passphrase that SSH can read: {exc}"
    raise NodeUnreachableError(
        f"Cannot use the SSH private key {target.key_path} for {target} ({cause}): check "
        "auth.ssh_private_key in the cluster config.")


def _describe_failure(exc: BaseException, target: SshTarget) -> str:
    """A connection failure in words, with what to check."""
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused. Is sshd running on port {target.port} of {target.host}?"
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out. Check the address and that the host is up."
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "no route to host. Check the address and that the host is up."
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}. Check the address and that the host is up."
    return (f"the SSH handshake failed ({type(exc).__name__}: {exc}). Check that port "
            f"{target.port} of {target.host} is an SSH server.")


class SshSession:
    """One SSH connection to a node; every command and copy to that node goes through it.

    Made by ``connect``; ``close()`` (or ``async with``) ends the connection and its
    port forwards.
    """

    target: SshTarget
    _connection: asyncssh.SSHClientConnection
    _remote_has_rsync: bool | None  #: asked on the first copy that could use rsync

    def __init__(self, target: SshTarget, connection: asyncssh.SSHClientConnection):
        self.target = target
        self._connection = connection
        self._remote_has_rsync = None

    async def __aenter__(self) -> SshSession:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def close(self) -> None:
        self._connection.close()
        await self._connection.wait_closed()

    async def run(self, command: str, *, env: dict[str, str] | None = None,
                  secret_env: dict[str, str] | None = None,
                  on_line: Callable[[str], None] | None = None,
                  timeout_s: float | None = None) -> RunResult:
        """Run ``command`` with ``bash -c`` (not a login shell) on the node.

        Args:
            command: A bash command line.
            env: Variables exported before the command runs; they are part of the remote
                bash's argv, so any user of the node can read them while it runs.
            secret_env: Variables the command gets without them appearing in any argv:
                bash reads them from standard input, which is then at EOF for the command.
            on_line: Called with every line of output (stdout and stderr) as it arrives.
            timeout_s: How long the command may run (None: no limit).

        Returns:
            The exit status and the end of the output; a non-zero exit is returned, not raised.

        Raises:
            NodeCommandError: the command ran past ``timeout_s`` (its process group is sent
                SIGTERM, then SIGKILL 5 s later) or the connection broke before it ended.
        """
        # The node keeps the deadline; this side waits a little longer, in case it is lost.
        local_timeout_s = (None if timeout_s is None
                           else timeout_s + KILL_AFTER_S + ATTEMPT_TIMEOUT_S)
        started = asyncio.get_running_loop().time()
        process = await self._connection.create_process(
            _remote_command(command, env or {}, secret_env or {}, timeout_s),
            stderr=asyncssh.STDOUT, encoding="utf-8", errors="replace")
        tail = _OutputTail()
        try:
            if secret_env:
                process.stdin.write("".join(value + "\0" for value in secret_env.values()))
            process.stdin.write_eof()
            await asyncio.wait_for(_read_lines(process, tail, on_line), local_timeout_s)
        except asyncio.TimeoutError:
            raise self._timed_out(command, timeout_s, tail) from None
        except (OSError, asyncssh.Error) as exc:
            raise NodeCommandError(
                f"The SSH connection to {self.target} broke while `{command}` ran ({exc}); "
                f"its last output:\n{tail.text()}") from exc
        finally:
            process.close()
        if process.returncode is None:
            raise NodeCommandError(
                f"The SSH connection to {self.target} closed before `{command}` ended; its "
                f"last output:\n{tail.text()}")
        ran_s = asyncio.get_running_loop().time() - started
        if (timeout_s is not None and process.returncode in TIMEOUT_EXIT_STATUSES
                and ran_s >= timeout_s):
            raise self._timed_out(command, timeout_s, tail)
        return RunResult(process.returncode, tail.text())

    def _timed_out(self, command: str, timeout_s: float, tail: _OutputTail) -> NodeCommandError:
        return NodeCommandError(f"`{command}` on {self.target} did not finish within "
                                f"{timeout_s:g} s and was stopped; its last output:\n{tail.text()}")

    async def upload(self, local: str, remote: str, *, exclude: Sequence[str] = (),
                     use_rsync: bool | None = None) -> None:
        """Copy the file or directory ``local`` to ``remote`` on the node.

        A directory's contents go into ``remote`` (Ray's trailing-slash rsync semantics),
        which is made with its parents as needed; a file becomes ``remote``.

        Args:
            local: A local file or directory.
            remote: The path on the node; ``~/`` means the login user's home.
            exclude: rsync exclude patterns (a pattern with no ``/`` matches a name at any
                depth; one with ``/`` matches the path under ``local``, ``/``-anchored there).
            use_rsync: None picks rsync when both ends have it; False forces SFTP.

        Raises:
            NodeCommandError: ``local`` is missing, or the copy failed; names node and cause.
        """
        remote_path = home_relative(remote)
        if not os.path.exists(local):
            raise NodeCommandError(f"Cannot copy {local} to {self.target.user}@"
                                   f"{self.target.host}:{remote}: no such file or directory")
        is_dir = os.path.isdir(local)
        what = f"Copying {local} to {self.target.user}@{self.target.host}:{remote}"
        if await self._can_rsync(use_rsync):
            parent = posixpath.dirname(remote_path.rstrip("/")) or "."
            await self._check(f"mkdir -p -- {shlex.quote(parent)}", what)
            source = local.rstrip("/") + "/" if is_dir else local
            dest = remote_path.rstrip("/") + "/" if is_dir else remote_path
            await self._rsync([*(f"--exclude={pattern}" for pattern in exclude), source,
                               self._rsync_remote(dest)], what)
        else:
            await self._sftp(self._sftp_upload(local, remote_path, is_dir, exclude), what)

    async def download(self, remote: str, local: str, *, use_rsync: bool | None = None) -> None:
        """Copy the file or directory ``remote`` on the node to ``local``.

        As ``upload`` the other way: a directory's contents go into ``local``, made with
        its parents as needed.

        Raises:
            NodeCommandError: the copy failed; names node and cause.
        """
        remote_path = home_relative(remote)
        what = f"Copying {self.target.user}@{self.target.host}:{remote} to {local}"
        if await self._can_rsync(use_rsync):
            is_dir = (await self.run(f"test -d {shlex.quote(remote_path)}")).exit_status == 0
            target_dir = local if is_dir else os.path.dirname(os.path.abspath(local))
            await asyncio.to_thread(os.makedirs, target_dir, exist_ok=True)
            source = remote_path.rstrip("/") + "/" if is_dir else remote_path
            await self._rsync([self._rsync_remote(source), local], what)
        else:
            await self._sftp(self._sftp_download(remote_path, local), what)

    async def forward_local_port(self, local_port: int, remote_port: int,
                                 remote_host: str = "127.0.0.1") -> asyncssh.SSHListener:
        """Listen on 127.0.0.1:``local_port`` here and connect each client through the node
        to ``remote_host:remote_port`` (as seen from the node).

        ``local_port`` 0 picks a free port: the listener's ``get_port()`` says which. The
        forward lasts until the listener's ``close()`` or the session's.
        """
        return await self._connection.forward_local_port("127.0.0.1", local_port, remote_host,
                                                         remote_port)

    # -- copies --

    async def _can_rsync(self, use_rsync: bool | None) -> bool:
        if use_rsync is False or not (shutil.which("rsync") and shutil.which("ssh")):
            return False
        if self._remote_has_rsync is None:
            found = await self.run("command -v rsync")
            self._remote_has_rsync = found.exit_status == 0
        return self._remote_has_rsync

    def _rsync_remote(self, path: str) -> str:
        host = f"[{self.target.host}]" if ":" in self.target.host else self.target.host
        return f"{self.target.user}@{host}:{path}"

    async def _rsync(self, args: list[str], what: str) -> None:
        ssh_command = shlex.join(["ssh", *_ssh_options(self.target)])
        process = await asyncio.create_subprocess_exec(
            "rsync", "-az", "--rsh", ssh_command, *args, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        output, _ = await process.communicate()
        if process.returncode != 0:
            text = output.decode(errors="replace")[-OUTPUT_TAIL_CHARS:].strip()
            raise NodeCommandError(f"{what} with rsync failed (exit status "
                                   f"{process.returncode}): {text}")

    async def _check(self, command: str, what: str) -> None:
        result = await self.run(command)
        if result.exit_status != 0:
            raise NodeCommandError(f"{what} failed: `{command}` exited with status "
                                   f"{result.exit_status}: {result.output.strip()}")

    async def _sftp(self, copy, what: str) -> None:
        """Run ``copy(sftp)`` on a new SFTP client, its failures as NodeCommandError."""
        try:
            async with self._connection.start_sftp_client() as sftp:
                await copy(sftp)
        except (OSError, asyncssh.Error) as exc:
            raise NodeCommandError(f"{what} over SFTP failed: {exc}") from exc

    def _sftp_upload(self, local: str, remote: str, is_dir: bool, exclude: Sequence[str]):
        async def copy(sftp: asyncssh.SFTPClient) -> None:
            if not is_dir:
                await _sftp_makedirs(sftp, posixpath.dirname(remote))
                await sftp.put(local, remote, preserve=True)
                return
            dirs, files = await asyncio.to_thread(_walk, local, exclude)
            await _sftp_makedirs(sftp, remote)
            for relative in dirs:
                await _sftp_makedirs(sftp, posixpath.join(remote, relative))
            for relative in files:
                await sftp.put(os.path.join(local, relative), posixpath.join(remote, relative),
                               preserve=True)
        return copy

    def _sftp_download(self, remote: str, local: str):
        async def copy(sftp: asyncssh.SFTPClient) -> None:
            if not await sftp.isdir(remote):
                await asyncio.to_thread(os.makedirs, os.path.dirname(os.path.abspath(local)),
                                        exist_ok=True)
                await sftp.get(remote, local, preserve=True)
                return
            await asyncio.to_thread(os.makedirs, local, exist_ok=True)
            names = [name for name in await sftp.listdir(remote) if name not in (".", "..")]
            if names:
                await sftp.get([posixpath.join(remote, name) for name in names], local,
                               recurse=True, preserve=True)
        return copy


def ssh_argv(target: SshTarget, *, tty: bool) -> list[str]:
    """The system ssh client's argv to log in to ``target`` (append a command to run one).

    ``tty`` asks for a terminal (``-tt``, for an interactive shell) or none (``-T``).
    """
    return ["ssh", "-tt" if tty else "-T", *_ssh_options(target),
            f"{target.user}@{target.host}"]


def _ssh_options(target: SshTarget) -> list[str]:
    options = {
        "IdentitiesOnly": "yes",
        "StrictHostKeyChecking": "no",
        "UserKnownHostsFile": "/dev/null",
        "LogLevel": "ERROR",
        "BatchMode": "yes",
        "ConnectTimeout": f"{ATTEMPT_TIMEOUT_S:.0f}",
        "ServerAliveInterval": "5",
        "ServerAliveCountMax": "3",
    }
    argv = (["-i", target.key_path] if target.key_path else []) + ["-p", str(target.port)]
    for name, value in options.items():
        argv += ["-o", f"{name}={value}"]
    return argv


def _remote_command(command: str, env: dict[str, str], secret_env: dict[str, str],
                    timeout_s: float | None) -> str:
    """What the node's login shell runs: ``command`` under bash, within ``timeout_s``."""
    remote_command = "bash -c " + shlex.quote(_script(command, env, secret_env))
    if timeout_s is None:
        return remote_command
    # sshd refuses to signal a root login's command (OpenSSH: "session signalling requires
    # privilege separation"), so coreutils' timeout keeps the deadline on the node; it ends
    # the command's whole process group.
    return f"timeout --kill-after={KILL_AFTER_S:g} {timeout_s:g} {remote_command}"


def _script(command: str, env: dict[str, str], secret_env: dict[str, str]) -> str:
    """The bash script that reads the secrets from stdin, exports env, then runs ``command``."""
    for name in [*env, *secret_env]:
        if not _ENV_NAME.match(name):
            raise ValueError(f"{name!r} is not an environment variable name")
    for name, value in secret_env.items():
        if "\0" in value:
            raise ValueError(f"The value of {name} holds a NUL character")
    lines = [f"IFS= read -r -d '' {name}; export {name}" for name in secret_env]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in env.items()]
    lines.append(command)
    return "\n".join(lines)


async def _read_lines(process: asyncssh.SSHClientProcess, tail: _OutputTail,
                      on_line: Callable[[str], None] | None) -> None:
    # Not ``async for``: asyncssh's iterator can yield a last "" that is no line of output.
    while line := await process.stdout.readline():
        line = line.rstrip("\n")
        tail.add(line)
        if on_line is not None:
            on_line(line)
    await process.wait_closed()


class _OutputTail:
    """The last OUTPUT_TAIL_CHARS or so of a command's output, kept line by line."""

    def __init__(self):
        self._lines: collections.deque[str] = collections.deque()
        self._chars = 0

    def add(self, line: str) -> None:
        self._lines.append(line)
        self._chars += len(line) + 1
        while self._chars > OUTPUT_TAIL_CHARS and len(self._lines) > 1:
            self._chars -= len(self._lines.popleft()) + 1

    def text(self) -> str:
        return "\n".join(self._lines)


def home_relative(remote: str) -> str:
    """``~/x`` as ``x``: rsync and SFTP take a relative path as relative to the home."""
    if remote in ("~", "~/"):
        return "."
    return remote[2:] if remote.startswith("~/") else remote


def _walk(root: str, exclude: Sequence[str]) -> tuple[list[str], list[str]]:
    """The directories and files under ``root`` (relative, parents first), less ``exclude``."""
    dirs, files = [], []
    for current, subdirs, names in os.walk(root):
        relative_dir = os.path.relpath(current, root)
        relative_dir = "" if relative_dir == "." else relative_dir
        subdirs[:] = [d for d in subdirs
                      if not _excluded(os.path.join(relative_dir, d), exclude)]
        dirs += [os.path.join(relative_dir, d) for d in subdirs]
        files += [os.path.join(relative_dir, n) for n in names
                  if not _excluded(os.path.join(relative_dir, n), exclude)]
    return dirs, files


def _excluded(relative: str, patterns: Sequence[str]) -> bool:
    """Whether rsync's ``--exclude`` would skip ``relative`` (a path under the copied dir)."""
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        if pattern.startswith("/"):
            if fnmatch(relative, pattern[1:]):
                return True
        elif "/" in pattern:
            if fnmatch(relative, pattern) or fnmatch(relative, "*/" + pattern):
                return True
        elif fnmatch(os.path.basename(relative), pattern):
            return True
    return False


async def _sftp_makedirs(sftp: asyncssh.SFTPClient, path: str) -> None:
    if path and path != ".":
        await sftp.makedirs(path, exist_ok=True)
