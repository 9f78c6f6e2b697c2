"""The dashboard's connections to node managers: for what only a node has, its log files.

Everything else the dashboard reads comes from the control store
(``control_store.py``); a node's log files are served by its node manager
(``list_logs``, ``read_log``: ``raggio/node/log_files.py``), found by the
address the control store lists it at, as ``raggio logs`` does. One kept
connection per node, dialled when first needed and again after it broke.
"""

from __future__ import annotations

from raggio.dashboard.control_store import REQUEST_TIMEOUT_S, KeptConnection


class NodeManagers:
    """Kept connections to the node managers, by address."""

    def __init__(self, token: str):
        self._token = token
        self._peers: dict[str, KeptConnection] = {}

    async def call(self, address: str, op: str, payload=None,
                   timeout_s: float = REQUEST_TIMEOUT_S):
        """The reply of the node manager at ``address`` to ``op``; ``Unavailable`` if it
        cannot be reached."""
        peer = self._peers.get(address)
        if peer is None:
            peer = self._peers[address] = KeptConnection(address, self._token, "node manager")
        return await peer.call(op, payload, timeout_s)

    def close(self) -> None:
        for peer in self._peers.values():
            peer.close()
        self._peers.clear()
