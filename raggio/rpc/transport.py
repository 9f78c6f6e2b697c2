"""Opening connections and listening: the only place raggio touches sockets.

Addresses are ``host:port`` (TCP) or ``unix:/path`` (a Unix socket, used
within one node). ``connect`` retries with backoff and jitter until its
deadline, then raises with the address and the time waited; ``Server``
listens and hands each accepted socket a ``Connection`` with its handler
table. Errors from the OS become ``RpcError`` subclasses here, so nothing
above this layer catches ``OSError``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from typing import Any, Callable

from raggio.exceptions import AuthenticationError, RpcError
from raggio.rpc.connection import Connection, Handler

logger = logging.getLogger(__name__)


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"Malformed address {address!r}: expected HOST:PORT, e.g. 127.0.0.1:6379")
    return host, int(port)


def local_ip_for(host: str) -> str:
    """This machine's address on the route to ``host`` (a UDP connect sends nothing)."""
    if host.startswith("127.") or host == "localhost":
        return "127.0.0.1"
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.connect((host, 9))
        return sock.getsockname()[0]
    except OSError:
        return "127.0.0.1"
    finally:
        sock.close()


async def connect(address: str, *, token: str, handlers: dict[str, Handler] | None = None,
                  info: dict | None = None, timeout_s: float = 30.0) -> Connection:
    """Connect and authenticate, retrying until ``timeout_s`` has passed."""
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + timeout_s
    delay_s = 0.01
    last_error: BaseException | None = None
    while True:
        factory = lambda: Connection(handlers or {}, token=token, is_server=False, info=info)
        try:
            # Bounded too: a peer that accepts nothing (stopped, or its accept queue full)
            # drops the SYN, and the kernel would go on retrying for minutes.
            if address.startswith("unix:"):
                opening = loop.create_unix_connection(factory, address[5:])
            else:
                host, port = split_address(address)
                opening = loop.create_connection(factory, host, port)
            conn = await _opened(opening, max(deadline - time.monotonic(), 0.1))
            remaining = max(deadline - time.monotonic(), 0.1)
            await conn.wait_authenticated(remaining)
            return conn
        except AuthenticationError:
            raise
        except (OSError, RpcError, asyncio.TimeoutError) as exc:
            last_error = exc
        if time.monotonic() + delay_s > deadline:
            break
        await asyncio.sleep(delay_s * (0.5 + random.random()))
        delay_s = min(delay_s * 2, 1.0)
    raise RpcError(
        f"Could not reach {address} after {timeout_s:g} s ({last_error}). Check that the "
        "cluster is running (`raggio status`) and that the address is right.") from last_error


async def _opened(opening, timeout_s: float) -> Connection:
    """The connection ``opening`` makes, or asyncio.TimeoutError after ``timeout_s``.

    Not ``asyncio.wait_for``: on 3.10/3.11 it returns the result of an opening that failed
    or finished just as its caller was cancelled, swallowing the cancel, and ``connect``'s
    retry loop would then go on for its whole deadline (a node stopping while it waits
    for its control store to come back)."""
    task = asyncio.ensure_future(opening)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
    except asyncio.CancelledError:
        task.cancel()
        if task.done() and not task.cancelled() and task.exception() is None:
            task.result()[0].close()  # opened just then: nobody will use it
        raise
    if not done:
        task.cancel()
        raise asyncio.TimeoutError
    return task.result()[1]


class Server:
    """Listens on one address and serves a handler table to every peer.

    ``start()`` returns once listening; ``address`` then holds the bound
    address (port 0 picks a free port). ``close()`` stops listening and
    closes every connection.
    """

    connections: set[Connection]
    on_connect: Callable[[Connection], Any] | None

    def __init__(self, handlers: dict[str, Handler], *, token: str, listen: str,
                 info: dict | None = None):
        self.handlers = handlers
        self.connections = set()
        self.on_connect = None
        self.address = listen
        self._token = token
        self._listen = listen
        self._info = info or {}
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> str:
        if self._server is not None:
            return self.address
        loop = asyncio.get_running_loop()
        try:
            if self._listen.startswith("unix:"):
                path = self._listen[5:]
                if os.path.exists(path):
                    os.unlink(path)
                self._server = await loop.create_unix_server(self._accept, path)
            else:
                host, port = split_address(self._listen)
                self._server = await loop.create_server(self._accept, host, port)
                port = self._server.sockets[0].getsockname()[1]
                self.address = f"{host}:{port}"
        except OSError as exc:
            raise RpcError(
                f"Cannot listen on {self._listen}: {exc.strerror or exc}. If the port is in "
                "use, stop what holds it or pick another port.") from exc
        return self.address

    def _accept(self) -> Connection:
        conn = Connection(self.handlers, token=self._token, is_server=True, info=self._info)
        self.connections.add(conn)
        conn.close_callbacks.append(self.connections.discard)
        if self.on_connect is not None:
            conn._handshake.add_done_callback(
                lambda fut: fut.exception() is None and self.on_connect(conn))
        return conn

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
            if self._listen.startswith("unix:"):
                try:
                    os.unlink(self._listen[5:])
                except FileNotFoundError:
                    pass
        for conn in list(self.connections):
            conn.close()

    async def __aenter__(self) -> "Server":
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()
