"""The node's workers: forking them from the zygote, tracking them, ending them.

Owns the zygote process and the table of workers (starting, idle, leased,
dead). It does not decide who gets a worker: the node manager's lease logic
does, and tells the pool to start or end workers. Workers connect back to
the node manager and register; ``worker_registered`` matches them here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from dataclasses import dataclass, field
from typing import Callable

from raggio.common.runtime_env import env_key

logger = logging.getLogger(__name__)

STARTING, IDLE, LEASED, DEAD = "STARTING", "IDLE", "LEASED", "DEAD"


@dataclass
class WorkerHandle:
    worker_id: bytes
    env_key: bytes
    pid: int = 0
    state: str = STARTING
    address: str = ""
    conn: object = None
    lease_id: int | None = None
    job_id: int | None = None
    registered: asyncio.Future = field(default=None)
    #: Set by its first lease. As in Ray, a worker that ran a GPU task serves only GPU tasks
    #: and one that ran another task only those: CUDA state and CUDA_VISIBLE_DEVICES stay.
    is_gpu: bool | None = None
    #: The jobs in which other processes may have come to hold refs to objects it owns,
    #: until each ends: meanwhile it must not host an actor, whose end ends the process (and
    #: so those objects), as Ray's workers drain before exiting, nor its node be drained.
    owner_jobs: set = field(default_factory=set)

    @property
    def owns_objects(self) -> bool:
        return bool(self.owner_jobs)


class WorkerPool:
    """See the module docstring."""

    def __init__(self, *, worker_args: dict, log_dir: str,
                 on_exit: Callable[[int, int], None] | None = None):
        self.workers: dict[bytes, WorkerHandle] = {}
        self._worker_args = worker_args
        self._log_dir = log_dir
        self._on_exit = on_exit  #: called with (pid, exit code) when a worker process ends
        self._zygote: asyncio.subprocess.Process | None = None
        self._forks: dict[str, asyncio.Future] = {}  #: worker id (hex) -> its pid, once forked
        self._reader: asyncio.Task | None = None

    async def start(self) -> None:
        env = dict(os.environ)
        self._zygote = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "raggio.node.zygote",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env)
        self._reader = asyncio.get_running_loop().create_task(self._read_zygote())

    @property
    def zygote_pid(self) -> int | None:
        return self._zygote.pid if self._zygote is not None else None

    async def _read_zygote(self) -> None:
        """Dispatch the zygote's lines: fork replies and worker exits."""
        while True:
            line = await self._zygote.stdout.readline()
            if not line:
                return
            message = json.loads(line)
            if "exited" in message:
                if self._on_exit is not None:
                    self._on_exit(message["exited"], message["exit_code"])
                continue
            # The pid goes on the handle here, not when launch() resumes: a worker that dies
            # at once has its exit line right behind this one, handled before launch() runs.
            handle = self.workers.get(bytes.fromhex(message["worker_id"]))
            if handle is not None:
                handle.pid = message["pid"]
            fut = self._forks.pop(message["worker_id"], None)
            if fut is not None and not fut.done():
                fut.set_result(message["pid"])

    def idle_workers(self, key: bytes, is_gpu: bool, for_actor: bool) -> list[WorkerHandle]:
        """Idle workers for a task with this runtime env that needs (or not) a GPU; for an
        actor, only those that own no object another process may hold."""
        return [w for w in self.workers.values()
                if w.state == IDLE and w.env_key == key and w.is_gpu in (None, is_gpu)
                and not (for_actor and w.owns_objects)]

    def num_starting(self, key: bytes) -> int:
        return sum(1 for w in self.workers.values() if w.state == STARTING and w.env_key == key)

    def add_worker(self, runtime_env: dict | None) -> WorkerHandle:
        """Record a worker about to start, so callers count it at once."""
        worker_id = os.urandom(28)
        handle = WorkerHandle(worker_id, env_key(runtime_env),
                              registered=asyncio.get_running_loop().create_future())
        self.workers[worker_id] = handle
        return handle

    async def launch(self, handle: WorkerHandle, runtime_env: dict | None,
                     prepared: dict | None) -> None:
        """Fork the worker from the zygote; it registers on its own. ``prepared``: what
        ``RuntimeEnvSetup.prepare`` made of ``runtime_env`` (None for the empty env)."""
        request = dict(self._worker_args, worker_id=handle.worker_id.hex(),
                       runtime_env=runtime_env or {}, prepared_env=prepared,
                       log_dir=self._log_dir)
        fut = asyncio.get_running_loop().create_future()
        self._forks[request["worker_id"]] = fut
        self._zygote.stdin.write(json.dumps(request).encode() + b"\n")
        await self._zygote.stdin.drain()
        handle.pid = await fut

    def worker_registered(self, worker_id: bytes, address: str, conn) -> WorkerHandle | None:
        handle = self.workers.get(worker_id)
        if handle is None:
            return None
        handle.address = address
        handle.conn = conn
        handle.state = IDLE
        if not handle.registered.done():
            handle.registered.set_result(handle)
        return handle

    def kill(self, handle: WorkerHandle) -> None:
        if handle.state == DEAD:
            return
        handle.state = DEAD
        self.workers.pop(handle.worker_id, None)
        if handle.pid:
            try:
                os.kill(handle.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def mark_dead(self, handle: WorkerHandle) -> None:
        handle.state = DEAD
        self.workers.pop(handle.worker_id, None)

    def worker_by_pid(self, pid: int) -> WorkerHandle | None:
        return next((w for w in self.workers.values() if w.pid == pid), None)

    def stderr_tail(self, handle: WorkerHandle, max_lines: int = 10) -> str:
        """The last lines the worker wrote to its stderr log (worker_main names the file)."""
        name = f"worker-{handle.worker_id.hex()[:16]}-{handle.pid}.err"
        path = os.path.join(self._log_dir, name)
        try:
            with open(path, errors="replace") as f:
                lines = [line for line in f.read().splitlines()
                         if not line.startswith(":")]  # the log monitor's :task_name: marks
        except OSError:
            return ""
        return "\n".join(lines[-max_lines:])

    async def close(self) -> None:
        for handle in list(self.workers.values()):
            self.kill(handle)
        if self._reader is not None:
            self._reader.cancel()
        if self._zygote is not None:
            if self._zygote.stdin is not None:
                self._zygote.stdin.close()
            try:
                await asyncio.wait_for(self._zygote.wait(), 2)
            except asyncio.TimeoutError:
                self._zygote.kill()
                await self._zygote.wait()
            self._zygote = None
