"""The dashboard's connection to the control store (a ``KeptConnection``, rpc/kept_connection.py)."""

from __future__ import annotations

from raggio.rpc.kept_connection import REQUEST_TIMEOUT_S, KeptConnection, Unavailable

__all__ = ["REQUEST_TIMEOUT_S", "ControlStore", "KeptConnection", "Unavailable"]


class ControlStore(KeptConnection):
    """The connection every route but the log files' asks through."""

    def __init__(self, address: str, token: str):
        super().__init__(address, token, "control store", role="dashboard")
