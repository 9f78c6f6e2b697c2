"""Live updates for the web UI: server-sent events. (Being built.)"""

from __future__ import annotations

from aiohttp import web


def routes() -> list[web.RouteDef]:
    return []
