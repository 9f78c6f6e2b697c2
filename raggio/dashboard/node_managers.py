"""The dashboard's connections to node managers: for what only a node has, its log files.

Everything else the dashboard reads comes from the control store
(``control_store.py``); a node's log files are served by its node manager
(``list_logs``, ``read_log``: ``raggio/node/log_files.py``), found by the
address the control store lists it at, as ``raggio logs`` does. One kept
connection per node, dialled with the cluster token when first needed and
again after it broke; a node that does not answer raises ``Unavailable``
(503), as the control store does.
"""

from __future__ import annotations

import asyncio

from raggio.dashboard.control_store import DIAL_TIMEOUT_S, REQUEST_TIMEOUT_S, Unavailable
from raggio.exceptions import RpcError
from raggio.rpc import Connection, connect


class NodeManagers:
    """Kept connections to the node managers, by address."""

    def __init__(self, token: str):
        self._token = token
        self._conns: dict[str, Connection] = {}
        self._dialling: dict[str, asyncio.Lock] = {}

    async def _connection(self, address: str) -> Connection:
        conn = self._conns.get(address)
        if conn is not None and not conn.is_closed:
            return conn
        async with self._dialling.setdefault(address, asyncio.Lock()):
            conn = self._conns.get(address)
            if conn is None or conn.is_closed:
                try:
                    conn = await connect(address, token=self._token,
                                         info={"role": "dashboard"}, timeout_s=DIAL_TIMEOUT_S)
                except (OSError, ConnectionError, asyncio.TimeoutError, RpcError) as exc:
                    raise Unavailable(
                        f"The node manager at {address} does not answer ({exc}).") from None
                self._conns[address] = conn
        return conn

    async def call(self, address: str, op: str, payload=None,
                   timeout_s: float = REQUEST_TIMEOUT_S):
        """The reply of the node manager at ``address`` to ``op``; ``Unavailable`` if it
        cannot be reached. Errors of the request itself (a file that is not there:
        ``ValueError``) are raised as the node raised them."""
        conn = await self._connection(address)
        try:
            return await conn.call_with_timeout(op, payload, timeout_s)
        except (ConnectionError, RpcError) as exc:  # lost, or no reply in time
            conn.close()
            raise Unavailable(
                f"The node manager at {address} did not answer {op}: {exc}") from None

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()
