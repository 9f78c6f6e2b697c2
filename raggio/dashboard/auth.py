"""Who may use the dashboard: whoever shows the cluster token.

Every route but the login page, its assets, ``/api/authentication_mode`` and the
health checks needs the token, in one of (Ray 2.60's order):

- ``Authorization: Bearer <token>`` (scripts, raggio's CLI and SDK);
- ``X-Ray-Authorization: Bearer <token>`` (Ray's SDK behind proxies, KubeRay);
- the session cookie that ``/login`` (or Ray's ``POST /api/authenticate``) sets.

The cookie holds an HMAC of the token, not the token: it opens the dashboard
and nothing else (not the control store's port). It is HttpOnly and
SameSite=Strict, and lives 30 days (Ray's figure). Departure from Ray: a
wrong token is 401 as a missing one is (Ray answers 403), with the same
message saying where the token is; a browser asking for a page is sent to the
login page instead. A login that posts no token is 400, saying what to post.
"""

from __future__ import annotations

import hashlib
import hmac
import urllib.parse

from aiohttp import web

SESSION_COOKIE = "raggio-session"
SESSION_MAX_AGE_S = 30 * 24 * 3600
#: Reachable without the token: the login page and what it loads, and probes.
PUBLIC_PATHS = frozenset({"/login", "/api/authentication_mode", "/api/authenticate",
                          "/api/healthz", "/api/gcs_healthz", "/-/healthz",
                          "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/",)

WHERE_THE_TOKEN_IS = (
    "This dashboard needs the cluster token. On the head's machine, `raggio dashboard` "
    "prints a login URL; the token itself is in <temp dir>/session_latest/token there (the "
    "temp dir is /tmp/raggio unless the head was started with --temp-dir or RAGGIO_TEMP_DIR), "
    "or in RAGGIO_AUTH_TOKEN where the cluster was started with it. Send it as "
    "`Authorization: Bearer <token>` (or `X-Ray-Authorization`), or log in at /login.")
LOGIN_FORMS = ('Post {"token": "<token>"} (a JSON object, Content-Type: application/json), '
               "or a form with a token field.")


def session_value(token: str) -> str:
    """What the session cookie holds for this token."""
    return hmac.new(token.encode(), b"raggio dashboard session", hashlib.sha256).hexdigest()


def _matches(given: str, expected: str) -> bool:
    """Whether ``given`` (from a header, a cookie or a login: any text) is ``expected``, in
    constant time. As bytes: ``compare_digest`` refuses a str with a non-ASCII character,
    and aiohttp keeps a header's bytes that are not UTF-8 as surrogates."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())


def _bearer(header: str) -> str:
    scheme, _, value = header.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" else header.strip()


def request_is_authenticated(request: web.Request, token: str) -> bool:
    for name in ("Authorization", "X-Ray-Authorization"):
        header = request.headers.get(name)
        if header:
            return _matches(_bearer(header), token)
    cookie = request.cookies.get(SESSION_COOKIE)
    return cookie is not None and _matches(cookie, session_value(token))


def _wants_page(request: web.Request) -> bool:
    return (request.method == "GET" and not request.path.startswith("/api/")
            and "text/html" in request.headers.get("Accept", ""))


def middleware(token: str):
    """The aiohttp middleware that turns away requests without the token."""

    @web.middleware
    async def check_token(request: web.Request, handler):
        if (request.path in PUBLIC_PATHS or request.path.startswith(PUBLIC_PREFIXES)
                or request_is_authenticated(request, token)):
            return await handler(request)
        if _wants_page(request):
            # Encoded whole: its own query (?a=1&b=2) is part of the one parameter.
            raise web.HTTPFound("/login?next=" + urllib.parse.quote(request.path_qs, safe=""))
        return web.json_response({"result": False, "msg": WHERE_THE_TOKEN_IS, "data": {}},
                                 status=401, headers={"WWW-Authenticate": "Bearer"})

    return check_token


def set_session_cookie(response: web.StreamResponse, request: web.Request, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, session_value(token), max_age=SESSION_MAX_AGE_S,
                        path="/", httponly=True, samesite="Strict",
                        secure=request.scheme == "https")


async def _posted_token(request: web.Request) -> str | None:
    """The token a login posts (JSON ``{"token": ...}`` or a form's field), or None when it
    posts none."""
    try:
        if request.content_type == "application/json":
            body = await request.json()
            given = body.get("token") if isinstance(body, dict) else None
        else:
            given = (await request.post()).get("token")  # empty unless a form
    except ValueError:  # not JSON, not UTF-8, or a broken form
        return None
    return given if isinstance(given, str) and given.strip() else None


def routes(token: str) -> list[web.RouteDef]:
    """Logging in: Ray's ``POST /api/authenticate`` (the token in ``Authorization``) and
    ``POST /login`` (the login page's form, or JSON ``{"token": ...}``)."""

    async def authentication_mode(request: web.Request) -> web.Response:
        return web.json_response({"authentication_mode": "token"})

    async def authenticate(request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        if not header or not _matches(_bearer(header), token):
            return web.json_response({"status": "unauthorized", "message": WHERE_THE_TOKEN_IS},
                                     status=401)
        response = web.json_response({"status": "authenticated", "message": "Token is valid"})
        set_session_cookie(response, request, token)
        return response

    async def login(request: web.Request) -> web.Response:
        given = await _posted_token(request)
        if given is None:
            return web.json_response({"status": "bad request", "message": "This login has "
                                      "no token. " + LOGIN_FORMS}, status=400)
        if not _matches(given.strip(), token):
            return web.json_response({"status": "unauthorized",
                                      "message": "That is not this cluster's token. "
                                      + WHERE_THE_TOKEN_IS}, status=401)
        response = web.json_response({"status": "authenticated"})
        set_session_cookie(response, request, token)
        return response

    async def logout(request: web.Request) -> web.Response:
        response = web.json_response({"status": "logged out"})
        response.del_cookie(SESSION_COOKIE, path="/")
        return response

    return [web.get("/api/authentication_mode", authentication_mode),
            web.post("/api/authenticate", authenticate),
            web.post("/login", login),
            web.post("/api/logout", logout)]
