"""A driver's or worker's connection to the control store, kept across its restarts.

Owns the connection: when it drops, a background task reconnects with
backoff (up to ``gcs_reconnect_timeout_s``) and runs the ``on_reconnect``
hooks (a driver re-attaches its job; everyone re-subscribes to node events).
``call`` waits out such an outage and retries on the new connection, so code
above sees a slow call, not a failed one, while the control store restarts.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

from raggio.exceptions import ConnectionLost, RpcError
from raggio.rpc import Connection, connect

logger = logging.getLogger(__name__)


class GcsClient:
    """See the module docstring. Lives on the core worker's loop."""

    def __init__(self, address: str, *, token: str, handlers: dict, info: dict,
                 reconnect_timeout_s: float):
        self.address = address
        self.on_reconnect: list[Callable[[], Awaitable[None]]] = []
        self._token = token
        self._handlers = handlers
        self._info = info
        self._reconnect_timeout_s = reconnect_timeout_s
        self._conn: Connection | None = None
        self._ready = asyncio.Event()
        self._closed = False
        self._reconnecting: asyncio.Task | None = None

    async def connect(self, timeout_s: float) -> None:
        self._conn = await connect(self.address, token=self._token, handlers=self._handlers,
                                   info=self._info, timeout_s=timeout_s)
        self._conn.close_callbacks.append(self._lost)
        self._ready.set()

    @property
    def is_closed(self) -> bool:
        return self._closed

    @property
    def connected(self) -> bool:
        return self._conn is not None and self._ready.is_set() and not self._closed

    def _lost(self, conn: Connection) -> None:
        self._ready.clear()
        if not self._closed and self._reconnecting is None:
            self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        logger.warning("lost the control store at %s; reconnecting", self.address)
        try:
            await self.connect(self._reconnect_timeout_s)
            for hook in self.on_reconnect:
                await hook()
            logger.warning("reconnected to the control store at %s", self.address)
        except RpcError as exc:
            logger.error("the control store at %s did not come back: %s", self.address, exc)
            self._closed = True
            self._ready.set()  # wake the waiters: their calls fail now
        finally:
            self._reconnecting = None

    async def call(self, op: str, payload: Any = None) -> Any:
        """``op`` on the control store; waits for it to come back if it is away."""
        while True:
            if not self._ready.is_set():
                try:
                    await asyncio.wait_for(self._ready.wait(), self._reconnect_timeout_s)
                except asyncio.TimeoutError:
                    raise RpcError(f"The control store at {self.address} has been unreachable "
                                   f"for {self._reconnect_timeout_s:g} s.") from None
            if self._closed:
                raise ConnectionLost(f"The control store at {self.address} is gone.")
            try:
                return await self._conn.call(op, payload)
            except ConnectionLost:
                if self._closed:
                    raise
                await asyncio.sleep(0)  # the close callback has cleared _ready: wait for it

    async def call_with_timeout(self, op: str, payload: Any, timeout_s: float) -> Any:
        # While the store is away, the call may first wait for it to come back.
        wait_s = timeout_s + (0 if self._ready.is_set() else self._reconnect_timeout_s)
        try:
            return await asyncio.wait_for(self.call(op, payload), wait_s)
        except asyncio.TimeoutError:
            raise RpcError(f"{op} to the control store at {self.address} got no reply within "
                           f"{timeout_s:g} s") from None

    def notify(self, op: str, payload: Any = None) -> None:
        """A one-way message; dropped while disconnected (hooks resend what must survive)."""
        if self._conn is not None and self._ready.is_set():
            self._conn.notify(op, payload)

    def close(self) -> None:
        self._closed = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        if self._conn is not None:
            self._conn.close()
