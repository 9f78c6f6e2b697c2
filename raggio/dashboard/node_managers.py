"""The dashboard's connections to node managers: for what only a node has, its log files.

Everything else the dashboard reads comes from the control store
(``control_store.py``); a node's log files are served by its node manager
(``list_logs``, ``read_log``: ``raggio/node/log_files.py``), found by the
address the control store lists it at, as ``raggio logs`` does. One kept
connection per node, dialled when first needed and again after it broke;
the routes that read the node list hand it to ``forget_dead``, which closes
the connections to nodes that died, so that a cluster whose nodes come and go
does not leave the dashboard one connection per node it ever had.
"""

from __future__ import annotations

from raggio.rpc.kept_connection import REQUEST_TIMEOUT_S, KeptConnection


class NodeManagers:
    """Kept connections to the node managers, by address."""

    def __init__(self, token: str):
        self._token = token
        self._peers: dict[str, KeptConnection] = {}

    @property
    def addresses(self) -> set[str]:
        """The addresses of the node managers it holds a connection to."""
        return set(self._peers)

    async def call(self, address: str, op: str, payload=None,
                   timeout_s: float = REQUEST_TIMEOUT_S):
        """The reply of the node manager at ``address`` to ``op``; ``Unavailable`` if it
        cannot be reached."""
        peer = self._peers.get(address)
        if peer is None:
            peer = KeptConnection(address, self._token, "node manager", role="dashboard")
            self._peers[address] = peer
        return await peer.call(op, payload, timeout_s)

    def forget_dead(self, nodes: list[dict]) -> None:
        """Close and drop the connections to the node managers that ``nodes`` (the control
        store's ``get_nodes`` records) lists DEAD or does not list."""
        alive = {node["address"] for node in nodes if node["state"] == "ALIVE"}
        for address in self._peers.keys() - alive:
            self._peers.pop(address).close()

    def close(self) -> None:
        for peer in self._peers.values():
            peer.close()
        self._peers.clear()
