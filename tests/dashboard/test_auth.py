"""Who may use the dashboard, and what it tells those who may not.

Against a running cluster with its dashboard (``conftest.py``): logging in (``POST /login``,
Ray's ``POST /api/authenticate``) sets a session cookie that scripts cannot read and other
sites cannot send; a wrong token, a wrong cookie or a malformed login is refused (401, 400)
and never crashes a route (500), and the refusal says where the token is; a page asked
for without the token sends the browser to the login page, keeping the whole address; no
answer lets another site's scripts read it (no CORS header). And an error no route expected
is a JSON 500 that gives no traceback away (``app.json_errors``).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import urllib.parse
from dataclasses import dataclass

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from raggio.dashboard import app, auth

#: What every refusal names: where the token is, and the command that prints a login URL.
WHERE = ("session_latest/token", "raggio dashboard")


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self):
        return json.loads(self.body)


def request(cluster, method: str, path: str, *, headers: dict | None = None,
            body: bytes | None = None) -> Answer:
    """One HTTP request to the cluster's dashboard, as given: no redirect followed, headers
    sent as they are (a ``bytes`` value byte for byte)."""
    url = urllib.parse.urlsplit(cluster.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        connection.putrequest(method, path)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body or b"")))
        connection.endheaders(body)
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


def post_json(cluster, path: str, value, **headers) -> Answer:
    return request(cluster, "POST", path, body=json.dumps(value).encode(),
                   headers={"Content-Type": "application/json", **headers})


def assert_names_where_the_token_is(message: str) -> None:
    for fragment in WHERE:
        assert fragment in message, message
    assert "raggio status" not in message  # no such command shows the token's place


# -- the session cookie --


def _session_cookie(answer: Answer) -> str:
    (cookie,) = [c for c in answer.headers.get_all("Set-Cookie")
                 if c.startswith(auth.SESSION_COOKIE + "=")]
    return cookie


def _assert_private(cookie: str) -> None:
    flags = {part.strip().split("=")[0].lower(): part.strip().partition("=")[2]
             for part in cookie.split(";")[1:]}
    assert "httponly" in flags, cookie  # page scripts cannot read it
    assert flags.get("samesite") == "Strict", cookie  # another site's page cannot send it
    assert flags.get("path") == "/", cookie


def test_login_sets_a_session_cookie_scripts_and_other_sites_cannot_use(dashboard_cluster):
    answer = post_json(dashboard_cluster, "/login", {"token": dashboard_cluster.token})
    assert answer.status == 200, answer.body
    cookie = _session_cookie(answer)
    _assert_private(cookie)
    value = cookie.split(";")[0]
    assert dashboard_cluster.token not in value  # the cookie opens the dashboard only
    page = request(dashboard_cluster, "GET", "/api/version", headers={"Cookie": value})
    assert page.status == 200


def test_rays_authenticate_sets_the_same_cookie(dashboard_cluster):
    answer = request(dashboard_cluster, "POST", "/api/authenticate",
                     headers={"Authorization": f"Bearer {dashboard_cluster.token}"})
    assert answer.status == 200, answer.body
    assert answer.json()["status"] == "authenticated"
    _assert_private(_session_cookie(answer))


def test_authentication_mode_is_public_and_gives_nothing_away(dashboard_cluster):
    answer = request(dashboard_cluster, "GET", "/api/authentication_mode")
    assert answer.status == 200
    assert answer.json() == {"authentication_mode": "token"}
    assert dashboard_cluster.token.encode() not in answer.body


# -- refusals --


def test_a_wrong_token_is_refused_naming_where_the_token_is(dashboard_cluster):
    for headers in ({}, {"Authorization": "Bearer not-the-token"},
                    {"X-Ray-Authorization": "Bearer not-the-token"},
                    {"Cookie": f"{auth.SESSION_COOKIE}=not-the-cookie"}):
        answer = request(dashboard_cluster, "GET", "/api/version", headers=headers)
        assert answer.status == 401, (headers, answer.body)
        body = answer.json()
        assert body["result"] is False and body["data"] == {}
        assert_names_where_the_token_is(body["msg"])
    answer = post_json(dashboard_cluster, "/login", {"token": "not-the-token"})
    assert answer.status == 401
    assert_names_where_the_token_is(answer.json()["message"])
    answer = request(dashboard_cluster, "POST", "/api/authenticate",
                     headers={"Authorization": "Bearer not-the-token"})
    assert answer.status == 401
    assert_names_where_the_token_is(answer.json()["message"])


def test_non_ascii_credentials_are_wrong_ones_not_errors(dashboard_cluster):
    # As UTF-8, and as one Latin-1 byte (not UTF-8: aiohttp keeps it as a surrogate).
    for raw in ("é".encode(), "é".encode("latin-1")):
        for name, value in (("Cookie", f"{auth.SESSION_COOKIE}=".encode() + raw),
                            ("Authorization", b"Bearer " + raw),
                            ("X-Ray-Authorization", b"Bearer " + raw)):
            answer = request(dashboard_cluster, "GET", "/api/version", headers={name: value})
            assert answer.status == 401, (name, value, answer.status, answer.body)
        answer = request(dashboard_cluster, "POST", "/api/authenticate",
                         headers={"Authorization": b"Bearer " + raw})
        assert answer.status == 401, (raw, answer.body)
    for token in ("é", "\ud800"):  # a lone surrogate is valid JSON
        answer = post_json(dashboard_cluster, "/login", {"token": token})
        assert answer.status == 401, (token, answer.body)


def test_a_malformed_login_is_a_clear_400(dashboard_cluster):
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for headers, body in (
            ({"Content-Type": "application/json"}, b"[1]"),
            ({"Content-Type": "application/json"}, b'"x"'),
            ({"Content-Type": "application/json"}, b"null"),
            ({"Content-Type": "application/json"}, b"{not json"),
            ({"Content-Type": "application/json"}, b"\xff\xfe"),
            ({"Content-Type": "application/json"}, b'{"token": 5}'),
            ({"Content-Type": "application/json"}, b'{"tolkien": "x"}'),
            (form, b"user=me"),
            (form, b""),
            ({"Content-Type": "text/plain"}, b"token")):
        answer = request(dashboard_cluster, "POST", "/login", headers=headers, body=body)
        assert answer.status == 400, (body, answer.status, answer.body)
        message = answer.json()["message"]
        assert '{"token": ' in message and "token field" in message, message
    answer = request(dashboard_cluster, "POST", "/login", headers=form,
                     body=urllib.parse.urlencode({"token": dashboard_cluster.token}).encode())
    assert answer.status == 200  # the form the page would post without scripts


def test_a_page_without_the_token_goes_to_login_keeping_the_whole_address(dashboard_cluster):
    answer = request(dashboard_cluster, "GET", "/nodes?a=1&b=2",
                     headers={"Accept": "text/html"})
    assert answer.status == 302
    location = urllib.parse.urlsplit(answer.headers["Location"])
    assert location.path == "/login"
    assert urllib.parse.parse_qs(location.query) == {"next": ["/nodes?a=1&b=2"]}


def test_no_answer_lets_other_sites_read_it(dashboard_cluster):
    origin = {"Origin": "http://elsewhere.example"}
    bearer = {"Authorization": f"Bearer {dashboard_cluster.token}"}
    answers = [
        request(dashboard_cluster, "GET", "/api/version", headers={**origin, **bearer}),
        request(dashboard_cluster, "GET", "/api/version", headers=origin),
        request(dashboard_cluster, "GET", "/api/version", headers=bearer),
        request(dashboard_cluster, "GET", "/api/authentication_mode", headers=origin),
        request(dashboard_cluster, "OPTIONS", "/api/version", headers={
            **origin, "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization"}),
        post_json(dashboard_cluster, "/login", {"token": dashboard_cluster.token}, **origin),
    ]
    for answer in answers:
        assert not [name for name in answer.headers if name.lower().startswith(
            "access-control-")], (answer.status, dict(answer.headers))


# -- errors no route expected --


async def _answers_of_a_failing_route(path: str):
    async def broken(request):
        raise RuntimeError("a bug, with a secret in its traceback: s3cr3t")

    async def moved(request):
        raise web.HTTPFound("/elsewhere")

    application = web.Application(middlewares=[app.json_errors])
    application.router.add_get("/broken", broken)
    application.router.add_get("/moved", moved)
    async with TestClient(TestServer(application)) as client:
        response = await client.get(path, allow_redirects=False)
        return response.status, response.headers.get("Location"), await response.text()


def test_an_unexpected_error_is_a_json_500_that_gives_nothing_away(caplog, monkeypatch):
    # An init() earlier in this process gave raggio's loggers their own handler and stopped
    # them propagating (as Ray's); caplog listens at the root.
    monkeypatch.setattr(logging.getLogger("raggio"), "propagate", True)
    with caplog.at_level(logging.ERROR, logger="raggio.dashboard"):
        status, _, text = asyncio.run(_answers_of_a_failing_route("/broken"))
    assert status == 500
    body = json.loads(text)
    assert body["result"] is False and body["data"] == {}
    assert "GET /broken" in body["msg"] and "dashboard.log" in body["msg"]
    assert "s3cr3t" not in text and "Traceback" not in text and "RuntimeError" not in text
    # The dashboard's log has the whole story.
    (record,) = [r for r in caplog.records if r.exc_info]
    assert "s3cr3t" in str(record.exc_info[1])
    # aiohttp's own answers stay as they are.
    status, location, _ = asyncio.run(_answers_of_a_failing_route("/moved"))
    assert (status, location) == (302, "/elsewhere")
