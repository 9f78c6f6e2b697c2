"""A connection that is kept, and dialled again when lost: for the head's helper processes.

``KeptConnection`` is one peer (the control store, or a node manager) reached
with the cluster token, for a process that outlives its peer's restarts (the
dashboard, the autoscaler's monitor). While the peer cannot be reached,
``call`` raises ``Unavailable`` (the dashboard answers 503, the monitor skips
a round) and the next call dials again, so the process recovers by itself when
a restarted head is back. Errors of a request itself (a file that is not
there: ``ValueError``) are raised as the peer raised them.
"""

from __future__ import annotations

import asyncio

from raggio.exceptions import RpcError
from raggio.rpc.connection import Connection
from raggio.rpc.transport import connect

#: How long one request (or dialling) may take before the route gives up with a 503.
REQUEST_TIMEOUT_S = 10.0
DIAL_TIMEOUT_S = 2.0


class Unavailable(Exception):
    """A peer does not answer (it is down, or restarting)."""


class KeptConnection:
    """A kept connection to the ``what`` (for messages) at ``address``; ``role`` tells the
    peer who dials (the handshake's info)."""

    def __init__(self, address: str, token: str, what: str, role: str):
        self.address = address
        self.what = what
        self.role = role
        self._token = token
        self._conn: Connection | None = None
        self._dialling: asyncio.Lock | None = None

    async def _connection(self) -> Connection:
        if self._conn is not None and not self._conn.is_closed:
            return self._conn
        if self._dialling is None:
            self._dialling = asyncio.Lock()
        async with self._dialling:
            if self._conn is None or self._conn.is_closed:
                try:
                    self._conn = await connect(self.address, token=self._token,
                                               info={"role": self.role},
                                               timeout_s=DIAL_TIMEOUT_S)
                except (OSError, ConnectionError, asyncio.TimeoutError, RpcError) as exc:
                    raise Unavailable(
                        f"The {self.what} at {self.address} does not answer ({exc}).") from None
        return self._conn

    async def call(self, op: str, payload=None, timeout_s: float = REQUEST_TIMEOUT_S):
        """The peer's reply to ``op``; ``Unavailable`` if it cannot be reached in time."""
        conn = await self._connection()
        try:
            return await conn.call_with_timeout(op, payload, timeout_s)
        except (ConnectionError, RpcError) as exc:  # lost, or no reply in time
            # The connection stays as it is: a request that timed out (a short ?timeout=, one
            # slow summary) must not fail every other request on it. A lost one is closed
            # already, and the next call dials again.
            raise Unavailable(
                f"The {self.what} at {self.address} did not answer {op}: {exc}") from None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
