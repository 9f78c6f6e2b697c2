"""Bringing one node up to date with the cluster file, over SSH.

The steps, in order, each a node status (Ray's names): wait for SSH;
initialization commands, file mounts and setup commands (``setting-up``,
``syncing-files``); ``raggio stop`` then the start commands
(``starting-raggio``); ``up-to-date``, or ``update-failed`` with the failing
command's output. Each step runs only when what it depends on changed since
it last succeeded on this node, as recorded in the node's tags: a second
``raggio up`` with an unchanged file does nothing, a changed setup command
re-runs setup and restarts, a changed start command only restarts, and a
node that failed half-way resumes where it failed.

Commands written for Ray (``ray start ...``) run raggio's (``node_commands``).
Every command gets ``RAY_HEAD_IP``, and the start commands also the node
type's resources (``RAGGIO_OVERRIDE_RESOURCES``), name and market
(``RAY_NODE_TYPE_NAME``, ``RAY_NODE_MARKET_TYPE``) and the cluster token,
which never appears in a command line.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Awaitable, Callable

from raggio.config import get_config
from raggio.exceptions import NodeCommandError, NodeUnreachableError
from raggio.launcher import node_commands, ssh
from raggio.launcher.cluster_config import ClusterConfig, NodeType
from raggio.launcher.node_provider import (
    STATUS_SETTING_UP, STATUS_STARTING, STATUS_SYNCING_FILES, STATUS_UP_TO_DATE,
    STATUS_UPDATE_FAILED, STATUS_WAITING_FOR_SSH, TAG_RAGGIO_START_CONFIG,
    TAG_RAY_FILE_MOUNTS_CONTENTS, TAG_RAY_NODE_STATUS, TAG_RAY_RUNTIME_CONFIG, NodeProvider)

#: Where the head keeps the cluster file and the SSH key (Ray's paths: Ray's default head
#: start command passes ``--autoscaling-config=~/ray_bootstrap_config.yaml``).
BOOTSTRAP_CONFIG_PATH = "~/ray_bootstrap_config.yaml"
BOOTSTRAP_KEY_PATH = "~/ray_bootstrap_key.pem"


def _stamp() -> str:
    now = time.time()
    return f"{time.strftime('%H:%M:%S', time.localtime(now))}.{int(now * 1000) % 1000:03d}"


class NodeFailed(Exception):
    """A step failed on the node; the message says which, why, and where the log is."""


@dataclasses.dataclass
class UpdatePlan:
    """What ``raggio up`` asks of every node."""

    restart_only: bool = False   #: skip setup, restart raggio everywhere
    no_restart: bool = False     #: set up what changed but leave running raggio alone
    force_start: bool = False    #: start raggio even if the start commands did not change


def digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_mounts_digest(config: ClusterConfig) -> str:
    """A hash of the contents of every local file the file mounts name."""
    h = hashlib.sha256()
    for remote, local in sorted(config.file_mounts.items()):
        h.update(f"{remote}\0{local}\0".encode())
        paths = [local] if os.path.isfile(local) else sorted(
            os.path.join(root, name) for root, _, names in os.walk(local) for name in names)
        for path in paths:
            h.update(os.path.relpath(path, local).encode() + b"\0")
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):  # a large file is never read whole
                    h.update(chunk)
    h.update(json.dumps(config.rsync_exclude).encode())
    return h.hexdigest()[:16]


class NodeUpdater:
    """Runs the steps on one node and records them in its tags."""

    def __init__(self, config: ClusterConfig, provider: NodeProvider, node_id: str, *,
                 name: str, node_type: NodeType, is_head: bool, head_ip: str, token: str,
                 plan: UpdatePlan, alive: bool, log_path: str, mounts_hash: str,
                 connect: Callable[[], Awaitable[ssh.SshSession]],
                 on_status: Callable[[str, str], None]) -> None:
        self.config = config
        self.provider = provider
        self.node_id = node_id
        self.name = name
        self.node_type = node_type
        self.is_head = is_head
        self.head_ip = head_ip
        self.token = token
        self.plan = plan
        self.alive = alive
        self.log_path = log_path
        self.on_status = on_status
        #: ``file_mounts_digest`` of the config: its caller's, once for every node
        self.mounts_hash = mounts_hash
        self.connect = connect  #: the node's SSH session (shared; its owner closes it)
        self.host = provider.external_ip(node_id)
        self.changed = False  #: whether anything was done on the node
        self.started = False  #: whether raggio was (re)started on the node
        self._log = None

    async def run(self) -> None:
        """Bring the node up to date; raises NodeFailed (after tagging it update-failed)."""
        with open(self.log_path, "a", buffering=1) as self._log:
            self._log.write(f"\n=== raggio up, {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n")
            try:
                await self._run()
            except (NodeFailed, NodeUnreachableError, NodeCommandError) as exc:
                self._log.write(f"FAILED: {exc}\n")
                await self._set_tags({TAG_RAY_NODE_STATUS: STATUS_UPDATE_FAILED})
                self.on_status(STATUS_UPDATE_FAILED, str(exc).splitlines()[0])
                raise NodeFailed(f"{self.name} ({self.host}): {exc}") from None

    async def _run(self) -> None:
        tags = await asyncio.to_thread(self.provider.node_tags, self.node_id)
        setup_commands = self.config.setup_commands_for(self.is_head, self.node_type.name)
        runtime_hash = digest(self.config.initialization_commands, setup_commands,
                              self.node_type.node_config)
        mounts_hash = self.mounts_hash
        start_hash = digest(self.config.start_commands_for(self.is_head),
                            self._start_env(), self.head_ip)
        restart_only = self.plan.restart_only
        need_setup = not restart_only and tags.get(TAG_RAY_RUNTIME_CONFIG) != runtime_hash
        need_mounts = not restart_only and (
            need_setup or tags.get(TAG_RAY_FILE_MOUNTS_CONTENTS) != mounts_hash)
        need_start = restart_only or (not self.plan.no_restart and (
            need_setup or self.plan.force_start or not self.alive
            or tags.get(TAG_RAGGIO_START_CONFIG) != start_hash))
        if not (need_setup or need_mounts or need_start):
            self.on_status(STATUS_UP_TO_DATE, "unchanged")
            return
        self.changed = True
        self.on_status(STATUS_WAITING_FOR_SSH, self.host)
        await self._set_tags({TAG_RAY_NODE_STATUS: STATUS_WAITING_FOR_SSH})
        session = await self.connect()
        if need_setup and self.config.initialization_commands:
            await self._status(STATUS_SETTING_UP)
            await self._commands(session, self.config.initialization_commands, {})
        if need_mounts:
            await self._status(STATUS_SYNCING_FILES)
            await self._sync_files(session)
            await self._set_tags({TAG_RAY_FILE_MOUNTS_CONTENTS: mounts_hash})
        if need_setup:
            await self._status(STATUS_SETTING_UP)
            await self._commands(session, setup_commands, {})
            await self._set_tags({TAG_RAY_RUNTIME_CONFIG: runtime_hash})
        if need_start:
            await self._status(STATUS_STARTING)
            start_commands = [node_commands.to_raggio(c)
                              for c in self.config.start_commands_for(self.is_head)]
            if not any(c.split() == ["raggio", "stop"] for c in start_commands):
                start_commands.insert(0, "raggio stop")  # a start needs raggio stopped
            await self._commands(session, start_commands, self._start_env(),
                                 timeout_s=get_config().launcher_start_timeout_s)
            self.started = True
            await self._set_tags({TAG_RAGGIO_START_CONFIG: start_hash})
        await self._set_tags({TAG_RAY_NODE_STATUS: STATUS_UP_TO_DATE})
        self.on_status(STATUS_UP_TO_DATE, "")

    def _start_env(self) -> dict[str, str]:
        env = {"RAY_NODE_TYPE_NAME": self.node_type.name}
        if self.node_type.resources:
            env["RAGGIO_OVERRIDE_RESOURCES"] = json.dumps(self.node_type.resources,
                                                          sort_keys=True)
        if self.node_type.use_spot:
            env["RAY_NODE_MARKET_TYPE"] = "spot"
        return env

    async def _status(self, status: str) -> None:
        self.on_status(status, "")
        await self._set_tags({TAG_RAY_NODE_STATUS: status})

    async def _set_tags(self, tags: dict[str, str]) -> None:
        await asyncio.to_thread(self.provider.set_node_tags, self.node_id, tags)

    async def _commands(self, session: ssh.SshSession, commands: list[str],
                        env: dict[str, str], timeout_s: float | None = None) -> None:
        """Run each command in order (each within ``timeout_s``: None, as long as it takes,
        as setup commands may); the first that fails ends the update."""
        for command in commands:
            command = node_commands.to_raggio(command)  # idempotent
            self.on_status("", command)
            self._log.write(f"[{_stamp()}] $ {command}\n")
            result = await session.run(
                command, env={"RAY_HEAD_IP": self.head_ip, **env},
                secret_env={"RAGGIO_AUTH_TOKEN": self.token}, on_line=self._log_line,
                timeout_s=timeout_s)
            if result.exit_status != 0:
                tail = "\n".join("    " + line for line in result.output.splitlines()[-15:])
                raise NodeFailed(
                    f"command failed with exit status {result.exit_status}: {command}\n"
                    f"{tail}\n  Full log: {self.log_path}. Fix the command (or the node) "
                    "and run `raggio up` again: it resumes from this step.")

    def _log_line(self, line: str) -> None:
        self._log.write(line if line.endswith("\n") else line + "\n")

    async def _sync_files(self, session: ssh.SshSession) -> None:
        for remote, local in self.config.file_mounts.items():
            self.on_status("", f"{local} -> {remote}")
            self._log.write(f"[{_stamp()}] sync {local} -> {self.host}:{remote}\n")
            await session.upload(local, remote, exclude=self.config.rsync_exclude)
        if self.is_head:  # two small files: SFTP on the open connection beats rsync's own
            await session.upload(self._bootstrap_config(), BOOTSTRAP_CONFIG_PATH,
                                 use_rsync=False)
            if self.config.auth.get("ssh_private_key"):
                await session.upload(self.config.auth["ssh_private_key"], BOOTSTRAP_KEY_PATH,
                                     use_rsync=False)

    def _bootstrap_config(self) -> str:
        """The cluster file as the head's autoscaler reads it (the key at its path there)."""
        document = dict(self.config.raw)
        if self.config.auth.get("ssh_private_key"):
            document["auth"] = {**document.get("auth", {}),
                                "ssh_private_key": BOOTSTRAP_KEY_PATH}
        path = os.path.join(os.path.dirname(self.log_path), f"{self.name}.bootstrap.yaml")
        with open(path, "w") as f:
            json.dump(document, f, indent=1)  # JSON is YAML
        return path
