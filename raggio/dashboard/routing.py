"""What every route module of the dashboard uses: where the cluster is, Ray's JSON envelope,
and the error a bad query raises."""

from __future__ import annotations

from aiohttp import web

from raggio.dashboard.control_store import ControlStore
from raggio.dashboard.node_managers import NodeManagers

#: Where routes find the cluster: ``request.app[STORE].call(op, payload)``.
STORE = web.AppKey("store", ControlStore)
#: What only a node has (its log files): ``request.app[NODES].call(address, op, payload)``.
NODES = web.AppKey("nodes", NodeManagers)
#: ``session_name``, ``session_dir`` and ``gcs_address`` of this cluster.
SESSION = web.AppKey("session", dict)
#: The cluster token, for what the dashboard asks outside the RPC layer (nodes' metrics).
TOKEN = web.AppKey("token", str)


class BadRequest(Exception):
    """A route's query parameters are wrong: 400, with this message (name the parameter)."""


def ok(data: dict, msg: str = "") -> web.Response:
    """Ray's envelope for a successful answer: ``{"result": true, "msg", "data"}``."""
    return web.json_response({"result": True, "msg": msg, "data": data})


def error_body(message: str) -> dict:
    """Ray's envelope for an error: ``{"result": false, "msg", "data": {}}``."""
    return {"result": False, "msg": message, "data": {}}
