"""The launcher's local record of one cluster, in ``<launcher_dir>/<cluster_name>/``.

- ``state.json``: the cluster's nodes (id, addresses, tags, running or
  terminated), read and written whole under a file lock (``fcntl.flock`` on
  ``state.lock``), so two launchers, or a launcher and an autoscaler, never
  lose each other's changes.
- ``operation.lock``: held for the whole of ``up`` or ``down``; a second one
  fails at once, naming the process that holds it, instead of fighting over
  the same machines.
- ``token``: the cluster token the launcher chose for the head and hands to
  the workers (mode 0600); users never paste it into a file.
- ``logs/<node>.log``: every command run on a node and its output.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator

from raggio.config import get_config
from raggio.exceptions import ClusterLaunchError


class ClusterState:
    """The files of one cluster's record; every read and write takes the lock."""

    dir: str
    logs_dir: str

    def __init__(self, cluster_name: str, root: str | None = None) -> None:
        root = os.path.expanduser(root or get_config().launcher_dir)
        self.cluster_name = cluster_name
        self.dir = os.path.join(root, cluster_name)
        self.logs_dir = os.path.join(self.dir, "logs")
        os.makedirs(self.logs_dir, exist_ok=True)
        self._state_path = os.path.join(self.dir, "state.json")

    @contextlib.contextmanager
    def _flock(self, name: str, flags: int) -> Iterator[int]:
        fd = os.open(os.path.join(self.dir, name), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, flags)
            yield fd
        finally:
            os.close(fd)

    @property
    def path(self) -> str:
        """The state file (``state.json``)."""
        return self._state_path

    def read(self) -> dict:
        """The state document: ``{"nodes": {node_id: record}}``."""
        with self._flock("state.lock", fcntl.LOCK_SH):
            return self._load()

    @contextlib.contextmanager
    def update(self) -> Iterator[dict]:
        """The state document, to change in place; saved when the block ends without error."""
        with self._flock("state.lock", fcntl.LOCK_EX):
            document = self._load()
            yield document
            tmp = f"{self._state_path}.{os.getpid()}"
            with open(tmp, "w") as f:
                json.dump(document, f, indent=1, sort_keys=True)
            os.replace(tmp, self._state_path)

    def merge(self, nodes: dict[str, dict]) -> None:
        """Write these node records (another copy's changes: ``raggio up``'s, on the head)
        over this record's, under the lock; every other record stays as it is here."""
        with self.update() as document:
            document["nodes"].update(nodes)

    def _load(self) -> dict:
        try:
            with open(self._state_path) as f:
                return json.load(f)
        except FileNotFoundError:
            return {"nodes": {}}

    @contextlib.contextmanager
    def operation(self, what: str) -> Iterator[None]:
        """Hold the cluster for ``what`` (``raggio up``...); fails at once if another holds it."""
        try:
            with self._flock("operation.lock", fcntl.LOCK_EX | fcntl.LOCK_NB) as fd:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()} {what}".encode(), 0)
                yield
                os.ftruncate(fd, 0)
        except BlockingIOError:
            with open(os.path.join(self.dir, "operation.lock")) as f:
                holder = f.read().strip() or "another process"
            raise ClusterLaunchError(
                f"Cluster {self.cluster_name!r} is busy: process {holder} is working on it. "
                "Wait for it to finish (or stop that process) and run this again.") from None

    def token(self) -> str:
        """The cluster's token, chosen on first use and kept (mode 0600)."""
        path = os.path.join(self.dir, "token")
        try:
            with open(path) as f:
                return f.read().strip()
        except FileNotFoundError:
            pass
        token = secrets.token_hex(16)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token)
        return token

    def forget_token(self) -> None:
        """After ``down``: the next ``up`` makes a new cluster, with a new token."""
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(self.dir, "token"))

    def log_path(self, node_name: str) -> str:
        return os.path.join(self.logs_dir, f"{node_name}.log")
