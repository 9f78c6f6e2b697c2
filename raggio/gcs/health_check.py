"""Node health checks: ping every node, declare the silent ones dead.

A node whose connection drops is dead at once (the control store's close
callback); this catches the ones whose connection stays open while the node
does not answer (hung, partitioned, SIGSTOPped). Every ``period_s`` each
node gets a ping that must be answered within ``timeout_s``; after
``failure_threshold`` misses in a row ``on_dead(node_id, reason)`` runs.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from raggio.exceptions import RpcError
from raggio.rpc import Connection

logger = logging.getLogger(__name__)


class HealthChecker:
    """See the module docstring."""

    def __init__(self, connections: Callable[[], dict[bytes, Connection]],
                 on_dead: Callable[[bytes, str], None], *, period_s: float,
                 timeout_s: float, failure_threshold: int):
        self._connections = connections
        self._on_dead = on_dead
        self._period_s = period_s
        self._timeout_s = timeout_s
        self._threshold = failure_threshold
        self._misses: dict[bytes, int] = {}
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            conns = dict(self._connections())
            results = await asyncio.gather(*(self._ping(conn) for conn in conns.values()))
            for node_id, answered in zip(conns, results):
                misses = 0 if answered else self._misses.get(node_id, 0) + 1
                self._misses[node_id] = misses
                if misses >= self._threshold:
                    del self._misses[node_id]
                    logger.warning("node %s missed %d health checks", node_id.hex(), misses)
                    self._on_dead(node_id, f"it missed {misses} health checks in a row "
                                           f"(none answered within {self._timeout_s:g} s)")
            for node_id in set(self._misses) - set(conns):
                del self._misses[node_id]
            # A round starts every period, or when its pings are answered or timed out.
            await asyncio.sleep(max(0.0, self._period_s - (loop.time() - started)))

    async def _ping(self, conn: Connection) -> bool:
        try:
            await conn.call_with_timeout("ping", None, self._timeout_s)
            return True
        except RpcError:
            return False
