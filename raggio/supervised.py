"""A helper process of the head, started again whenever it exits.

The head runs a few helpers beside its own work (the dashboard, the
autoscaler's monitor): each is its own process, at a lower priority than the
head, its output in the session's ``logs/<name>.log``. ``Supervised`` starts
one on the head's loop and, when it exits, starts another after a pause that
doubles with each exit within a minute (a helper that cannot start must not
spin); ``stop()`` ends it (SIGTERM, then SIGKILL). The command line, its
environment and the descriptors it inherits (``pass_fds``) are the caller's; a
subclass may wait before each start (``_before_start``: the dashboard waits for
its first client).
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import time

logger = logging.getLogger(__name__)

#: Pauses before starting a helper again: doubled after each exit within a minute.
RESTART_DELAY_S, MAX_RESTART_DELAY_S = 0.5, 30.0
#: How long a stopped helper gets to exit after SIGTERM before SIGKILL.
STOP_TIMEOUT_S = 2.5
#: How much lower than the head a helper runs (``nice``): none is on a task's path.
NICENESS = 5


class Supervised:
    """Runs ``argv`` (output to ``<session_dir>/logs/<name>.log``) until ``stop()``."""

    name: str
    _process: asyncio.subprocess.Process | None  #: the current process (or the last one)
    _task: asyncio.Task | None  #: ``_keep_running``, cancelled and awaited by ``stop()``

    def __init__(self, name: str, argv: list[str], session_dir: str,
                 env: dict[str, str] | None = None, pass_fds: tuple[int, ...] = ()) -> None:
        self.name = name
        self._argv = argv
        self._env = env
        self._pass_fds = pass_fds  #: descriptors the process inherits (a listening socket)
        self._session_dir = session_dir
        self._process = None
        self._task = None

    @property
    def log_path(self) -> str:
        return os.path.join(self._session_dir, "logs", f"{self.name}.log")

    def start(self) -> None:
        """Start the process and watch it (on the running loop); returns at once."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._keep_running())

    def pid(self) -> int | None:
        """The helper's process, while it runs."""
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    async def _before_start(self) -> None:
        """Wait for whatever must happen before each start (nothing, here)."""

    async def _start_one(self) -> asyncio.subprocess.Process:
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        with open(self.log_path, "ab") as log:
            process = await asyncio.create_subprocess_exec(
                *self._argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self._env,
                pass_fds=self._pass_fds)
        # Set before the process has imported anything: its start-up then yields to the
        # cluster's work on a small machine.
        try:
            os.setpriority(os.PRIO_PROCESS, process.pid,
                           min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICENESS))
        except OSError:
            pass  # it exited already; _keep_running sees it
        return process

    async def _keep_running(self) -> None:
        delay_s = RESTART_DELAY_S
        while True:
            await self._before_start()
            started = time.monotonic()
            self._process = await self._start_one()
            returncode = await self._process.wait()
            quick = time.monotonic() - started < 60
            delay_s = min(delay_s * 2, MAX_RESTART_DELAY_S) if quick else RESTART_DELAY_S
            logger.warning("the %s exited with code %s; it starts again in %.1f s (its log: "
                           "%s)", self.name, returncode, delay_s, self.log_path)
            await asyncio.sleep(delay_s)

    async def stop(self) -> None:
        """End the process (SIGTERM, then SIGKILL after ``STOP_TIMEOUT_S``); no other starts."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])
        process = self._process
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()
