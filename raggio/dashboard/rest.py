"""Ray's HTTP API on the dashboard: the same paths, parameters and JSON as Ray 2.60's.

(Being built: ``/api/version`` and the health checks so far.)
"""

from __future__ import annotations

from aiohttp import web

from raggio import __version__
from raggio.dashboard.routing import SESSION, STORE

#: Ray's dashboard API version, which Ray's clients check (``/api/version``'s "version").
API_VERSION = "4"


async def version(request: web.Request) -> web.Response:
    return web.json_response({"version": API_VERSION, "ray_version": __version__,
                              "ray_commit": "raggio",
                              "session_name": request.app[SESSION]["session_name"]})


async def gcs_healthz(request: web.Request) -> web.Response:
    await request.app[STORE].call("get_nodes", None, timeout_s=2.0)
    return web.Response(text="success", content_type="application/text")


def routes() -> list[web.RouteDef]:
    return [web.get("/api/version", version),
            web.get("/api/gcs_healthz", gcs_healthz)]
