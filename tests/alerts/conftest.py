"""Fixtures of the alert tests: a real HTTP receiver for webhooks, on 127.0.0.1.

``receiver`` is an aiohttp server on a free port, run on its own event loop in a
thread, that records every POST (its path and JSON) and answers by path:

- ``/slack``, ``/webhook``: 200.
- ``/flaky``: 500 for the first ``receiver.failures`` posts, then 200.
- ``/hang``: no answer until the receiver stops.
- ``/refuse``: 403.

``receiver`` is one per test, ``module_receiver`` one per module.
``receiver.wait_for(path, predicate)`` waits (with a deadline) for a post to
``path`` whose JSON satisfies ``predicate``.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest
from aiohttp import web

from raggio.test_utils import wait_until


class Receiver:
    """See the module docstring."""

    def __init__(self):
        self.posts: list[tuple[str, dict, float]] = []  #: (path, JSON, time received)
        self.failures = 1
        self.url = ""
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._stopped: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._ready = threading.Event()

    def start(self) -> "Receiver":
        self._thread.start()
        assert self._ready.wait(10), "the receiver did not start"
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(10)

    def _serve(self) -> None:
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stopped = asyncio.Event()
        app = web.Application()
        app.router.add_post("/{name}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        await web.SockSite(runner, sock).start()
        self.url = "http://127.0.0.1:%d" % sock.getsockname()[1]
        self._ready.set()
        await self._stopped.wait()
        await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await request.json()
        with self._lock:
            self.posts.append((name, body, time.monotonic()))
            count = sum(1 for path, _, _ in self.posts if path == name)
        if name == "hang":
            await self._stopped.wait()
        if name == "flaky" and count <= self.failures:
            return web.Response(status=500, text="try again")
        if name == "refuse":
            return web.Response(status=403, text="no")
        return web.json_response({"ok": True})

    def received(self, path: str, predicate=lambda body: True) -> list[dict]:
        with self._lock:
            return [body for name, body, _ in self.posts if name == path and predicate(body)]

    def times(self, path: str) -> list[float]:
        with self._lock:
            return [at for name, _, at in self.posts if name == path]

    def wait_for(self, path: str, predicate=lambda body: True, timeout_s: float = 60.0,
                 what: str = "") -> dict:
        found = wait_until(lambda: self.received(path, predicate), timeout_s=timeout_s,
                           what=what or f"a post to /{path}")
        return found[0]


@pytest.fixture
def receiver():
    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def module_receiver():
    """A receiver for a module's tests (its cluster posts to it)."""
    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()
