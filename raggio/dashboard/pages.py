"""The web UI: one page application served from ``static/``. (Being built.)"""

from __future__ import annotations

from aiohttp import web


def routes() -> list[web.RouteDef]:
    return []
