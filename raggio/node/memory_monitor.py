"""The memory monitor: when the node runs short of memory, end a worker before the kernel does.

Every ``period_s`` it reads the node's memory use; above ``threshold`` (a
fraction, Ray's default 0.95) it picks the leased worker that started its
lease last (its work is the newest, and likely the cheapest to redo), kills
it and says why: the lease holder hears ``worker_oom_killed``, so the task
fails with ``OutOfMemoryError`` once its retries are spent, and the control
store records the reason for an actor. The kernel's OOM killer would pick
any process, the node manager included, and say nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

import psutil

logger = logging.getLogger(__name__)


class MemoryMonitor:
    """See the module docstring. ``kill_newest(message)`` does the killing."""

    def __init__(self, *, threshold: float, period_s: float,
                 kill_newest: Callable[[str], bool]):
        self._threshold = threshold
        self._period_s = period_s
        self._kill_newest = kill_newest

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._period_s)
            memory = psutil.virtual_memory()
            used = 1.0 - memory.available / memory.total
            if used > self._threshold:
                message = (
                    f"The node ran low on memory: {used:.1%} of {memory.total / 2**30:.1f} GiB "
                    f"in use, above the threshold of {self._threshold:.0%} "
                    "(RAGGIO_MEMORY_USAGE_THRESHOLD). raggio killed this worker, the one that "
                    "started most recently, to free memory. Use less memory per task, ask for "
                    "`memory=` so fewer run at once, or add nodes.")
                if self._kill_newest(message):
                    logger.warning("memory at %.1f%%: killed the newest worker", used * 100)
