"""The web UI: one page application served from ``static/``, with no build step.

``/`` is the app (``static/index.html``; its pages are routes after ``#``, as in
Ray's dashboard: ``#/actors/<id>``), ``/login`` the login page, ``/static/...``
their scripts and styles (public, as the login page needs them; they hold no
data). The pages read the cluster through the HTTP API (``rest.py``,
``ui_api.py``) and listen to ``live.py``'s event stream. Pages are sent with a
Content-Security-Policy that allows this site's own scripts and nothing else.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).with_name("static")

#: No inline scripts or styles, nothing from elsewhere, no framing (clickjacking).
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
                               "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _page(name: str):
    async def handler(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / name, headers=_PAGE_HEADERS)
    return handler


async def favicon(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "favicon.svg",
                            headers={"Content-Type": "image/svg+xml",
                                     "Cache-Control": "max-age=86400"})


def routes() -> list[web.AbstractRouteDef]:
    return [web.get("/", _page("index.html")),
            web.get("/login", _page("login.html")),
            web.get("/favicon.ico", favicon),
            web.static("/static", STATIC_DIR, append_version=False)]
