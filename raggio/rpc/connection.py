"""One authenticated msgpack connection: framing, requests, replies, pushes.

Owns the wire format. A connection is symmetric: either end may ``call`` (a
request that gets one reply) or ``notify`` (a one-way message), and each end
serves the ops in its own handler table. Messages are msgpack arrays streamed
back to back (msgpack is self-delimiting, so no length prefix is needed)::

    [REQUEST, msg_id, op, payload]     answered by
    [REPLY, msg_id, result]   or   [ERROR, msg_id, pickled_exc, text]
    or   [RAW_REPLY, msg_id, nbytes] followed by nbytes raw bytes
    [NOTIFY, op, payload]
    [HELLO, token, info]  ->  [WELCOME, info]  |  [REJECT, reason]

Large buffers travel raw, never inside msgpack (DESIGN §2): a handler returns
``RawReply(buffer)`` and the buffer goes to the socket as it is; the caller
made the request with ``call_into(op, payload, dest)``, and the bytes are
received straight into ``dest`` (this is a ``BufferedProtocol``: the kernel
copies into the caller's memory, such as an object's place in the arena).
Writes made during one event-loop iteration are joined into one ``write`` so
a burst of small messages costs one syscall. Handlers may be plain functions
(answered at once), return a future (answered when it resolves) or be
coroutines (run as tasks the connection owns and cancels when it closes). Sockets are opened only by ``raggio.rpc.transport``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import pickle
import socket
import traceback
from typing import Any, Awaitable, Callable

import msgpack

from raggio.exceptions import AuthenticationError, ConnectionLost, RpcError

logger = logging.getLogger(__name__)

REQUEST, REPLY, ERROR, NOTIFY, HELLO, WELCOME, REJECT, RAW_REPLY = range(8)

#: Bytes read from the socket at a time outside raw frames.
READ_BUFFER_BYTES = 256 * 1024

Handler = Callable[..., Any]


class RawReply:
    """A handler's result sent as raw bytes after its header (see ``call_into``)."""

    __slots__ = ("buffer",)

    def __init__(self, buffer):
        self.buffer = memoryview(buffer).cast("B")


class Connection(asyncio.BufferedProtocol):
    """A protocol instance per socket; see the module docstring."""

    handlers: dict[str, Handler]
    #: Extra info the peer sent in its handshake (its role, id, address...).
    peer_info: dict
    #: Called once with this connection when it closes, for whatever reason.
    close_callbacks: list[Callable[["Connection"], None]]

    def __init__(self, handlers: dict[str, Handler], *, token: str,
                 is_server: bool, info: dict | None = None):
        self.handlers = handlers
        self.peer_info = {}
        self.close_callbacks = []
        self._token = token
        self._is_server = is_server
        self._info = info or {}
        self._authenticated = False
        self._transport: asyncio.Transport | None = None
        self._unpacker = msgpack.Unpacker(raw=False, max_buffer_size=2**31 - 1,
                                         strict_map_key=False)
        self._pending: dict[int, asyncio.Future] = {}
        self._next_id = 0
        self._out: list[bytes | memoryview] = []
        self._out_has_raw = False
        self._flush_scheduled = False
        self._read_buffer = memoryview(bytearray(READ_BUFFER_BYTES))
        #: Where each ``call_into`` wants its raw reply, by message id.
        self._raw_destinations: dict[int, memoryview] = {}
        #: The raw frame being received: its future, its destination, bytes so far.
        self._raw_future: asyncio.Future | None = None
        self._raw_into: memoryview | None = None
        self._raw_filled = 0
        self._tasks: set[asyncio.Task] = set()
        self._loop = asyncio.get_running_loop()
        self._handshake: asyncio.Future = self._loop.create_future()
        self._closed_exc: BaseException | None = None
        self.closed = self._loop.create_future()

    # -- asyncio.Protocol --------------------------------------------------

    def connection_made(self, transport):
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        if not self._is_server:
            self._write([HELLO, self._token, self._info])

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._raw_into is not None:
            return self._raw_into[self._raw_filled:]
        return self._read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        if self._raw_into is not None:
            self._raw_filled += nbytes
            if self._raw_filled < len(self._raw_into):
                return
            self._finish_raw()
        else:
            self._unpacker.feed(self._read_buffer[:nbytes])
        try:
            self._process()
        except Exception as exc:  # malformed stream: this peer is broken
            logger.warning("Dropping connection to %s: %r", self.peer_name, exc, exc_info=True)
            self.close(RpcError(f"Malformed message from {self.peer_name}: {exc!r}"))

    def _process(self) -> None:
        """Dispatch the messages the unpacker holds, up to a raw frame it cannot finish."""
        unpacker = self._unpacker
        while self._raw_into is None:
            try:
                msg = next(unpacker)
            except StopIteration:
                return
            if self._authenticated:
                self._dispatch(msg)
            else:
                self._dispatch_handshake(msg)
            if self._raw_into is not None:
                # The raw bytes follow the header: take those already read with it.
                data = unpacker.read_bytes(len(self._raw_into) - self._raw_filled)
                self._raw_into[self._raw_filled:self._raw_filled + len(data)] = data
                self._raw_filled += len(data)
                if self._raw_filled == len(self._raw_into):
                    self._finish_raw()

    def connection_lost(self, exc):
        if exc is None:
            exc = ConnectionLost(f"Connection to {self.peer_name} closed")
        else:
            exc = ConnectionLost(f"Connection to {self.peer_name} lost: {exc}")
        self._finish(exc)

    # -- public API ---------------------------------------------------------

    @property
    def peer_name(self) -> str:
        if self._transport is None:
            return "<unconnected>"
        peer = self._transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            return f"{peer[0]}:{peer[1]}"
        return str(self.peer_info.get("address") or peer or "local socket")

    @property
    def is_closed(self) -> bool:
        return self._closed_exc is not None

    async def wait_authenticated(self, timeout_s: float) -> dict:
        return await asyncio.wait_for(self._handshake, timeout_s)

    def call(self, op: str, payload: Any = None) -> asyncio.Future:
        """Send a request; the returned future resolves to the reply."""
        fut = self._loop.create_future()
        if self._closed_exc is not None:
            fut.set_exception(self._closed_exc)
            return fut
        self._next_id += 1
        msg_id = self._next_id
        self._pending[msg_id] = fut
        self._write([REQUEST, msg_id, op, payload])
        return fut

    def call_into(self, op: str, payload: Any, dest: memoryview) -> asyncio.Future:
        """Send a request whose handler returns ``RawReply``: its bytes are received
        straight into ``dest``; the future resolves to how many there were."""
        fut = self.call(op, payload)
        if not fut.done():
            self._raw_destinations[self._next_id] = dest
        return fut

    async def call_with_timeout(self, op: str, payload: Any, timeout_s: float) -> Any:
        try:
            return await asyncio.wait_for(self.call(op, payload), timeout_s)
        except asyncio.TimeoutError:
            raise RpcError(
                f"{op} to {self.peer_name} got no reply within {timeout_s:g} s") from None

    def notify(self, op: str, payload: Any = None) -> None:
        """Send a one-way message; silently dropped if the connection is closed."""
        if self._closed_exc is None:
            self._write([NOTIFY, op, payload])

    def close(self, exc: BaseException | None = None) -> None:
        if self._transport is not None:
            self._flush()
            self._transport.close()
        self._finish(exc or ConnectionLost(f"Connection to {self.peer_name} closed"))

    # -- internals ------------------------------------------------------------

    def _finish(self, exc: BaseException) -> None:
        if self._closed_exc is not None:
            return
        self._closed_exc = exc
        self._raw_destinations.clear()
        if self._raw_future is not None and not self._raw_future.done():
            self._raw_future.set_exception(exc)  # cut off inside a raw frame
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(exc)
        if not self._handshake.done():
            self._handshake.set_exception(exc)
            self._handshake.exception()  # mark retrieved
        for task in list(self._tasks):
            task.cancel()
        for callback in self.close_callbacks:
            try:
                callback(self)
            except Exception:
                logger.exception("close callback failed for %s", self.peer_name)
        if not self.closed.done():
            self.closed.set_result(None)

    def _write(self, msg) -> None:
        self._out.append(msgpack.packb(msg, use_bin_type=True))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _write_raw(self, msg_id: int, buffer: memoryview) -> None:
        self._write([RAW_REPLY, msg_id, buffer.nbytes])
        self._out.append(buffer)
        self._out_has_raw = True

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._out or self._transport is None or self._transport.is_closing():
            self._out.clear()
            return
        out, self._out = self._out, []
        if self._out_has_raw:  # raw buffers go to the transport as they are, never joined
            self._out_has_raw = False
            for piece in out:
                self._transport.write(piece)
            return
        self._transport.write(out[0] if len(out) == 1 else b"".join(out))

    def _start_raw(self, msg_id: int, nbytes: int) -> None:
        """A raw frame of ``nbytes`` follows: receive it into its ``call_into`` destination."""
        fut = self._pending.pop(msg_id, None)
        dest = self._raw_destinations.pop(msg_id, None)
        if dest is None or nbytes > dest.nbytes:
            if fut is not None and not fut.done():
                fut.set_exception(RpcError(
                    f"{self.peer_name} sent {nbytes} raw bytes for a reply that has room for "
                    f"{'none' if dest is None else dest.nbytes}"))
            fut, dest = None, memoryview(bytearray(nbytes))  # read them, to stay in step
        self._raw_future = fut
        self._raw_into = dest[:nbytes]
        self._raw_filled = 0
        if nbytes == 0:
            self._finish_raw()

    def _finish_raw(self) -> None:
        fut, nbytes = self._raw_future, self._raw_filled
        self._raw_future = self._raw_into = None
        self._raw_filled = 0
        if fut is not None and not fut.done():
            fut.set_result(nbytes)

    def _send_reply(self, msg_id: int, result) -> None:
        if isinstance(result, RawReply):
            self._write_raw(msg_id, result.buffer)
        else:
            self._write([REPLY, msg_id, result])

    def _dispatch_handshake(self, msg) -> None:
        kind = msg[0]
        if self._is_server and kind == HELLO:
            if not hmac.compare_digest(str(msg[1]).encode(), self._token.encode()):
                self._write([REJECT, "wrong or missing cluster token"])
                self.close(AuthenticationError(f"{self.peer_name} sent a wrong cluster token"))
                return
            self.peer_info = msg[2] or {}
            self._authenticated = True
            self._write([WELCOME, self._info])
            self._handshake.set_result(self.peer_info)
        elif not self._is_server and kind == WELCOME:
            self.peer_info = msg[1] or {}
            self._authenticated = True
            self._handshake.set_result(self.peer_info)
        elif not self._is_server and kind == REJECT:
            self.close(AuthenticationError(
                f"{self.peer_name} refused the connection: {msg[1]}. Pass the cluster's "
                "token with --token or RAGGIO_AUTH_TOKEN (it is in the head's session "
                "directory, file 'token')."))
        else:
            self.close(RpcError(f"{self.peer_name} skipped the handshake"))

    def _dispatch(self, msg) -> None:
        kind = msg[0]
        if kind == REPLY:
            fut = self._pending.pop(msg[1], None)
            if fut is not None and not fut.done():
                fut.set_result(msg[2])
        elif kind == RAW_REPLY:
            self._start_raw(msg[1], msg[2])
        elif kind == REQUEST:
            self._serve(msg[1], msg[2], msg[3])
        elif kind == NOTIFY:
            self._serve(None, msg[1], msg[2])
        elif kind == ERROR:
            self._raw_destinations.pop(msg[1], None)
            fut = self._pending.pop(msg[1], None)
            if fut is not None and not fut.done():
                fut.set_exception(_load_error(msg[2], msg[3]))
        else:
            raise RpcError(f"unknown message kind {kind!r}")

    def _serve(self, msg_id: int | None, op: str, payload) -> None:
        handler = self.handlers.get(op)
        if handler is None:
            self._reply_error(msg_id, RpcError(f"{self._info.get('role', 'peer')} has no op {op!r}"))
            return
        try:
            result = handler(self, payload)
        except Exception as exc:
            self._reply_error(msg_id, exc)
            return
        if isinstance(result, asyncio.Future):
            if msg_id is not None:
                result.add_done_callback(lambda fut: self._reply_future(msg_id, fut))
        elif asyncio.iscoroutine(result):
            task = self._loop.create_task(self._serve_async(msg_id, op, result))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif msg_id is not None:
            self._send_reply(msg_id, result)

    async def _serve_async(self, msg_id: int | None, op: str, coro: Awaitable) -> None:
        try:
            result = await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._reply_error(msg_id, exc)
            return
        if msg_id is not None:
            self._send_reply(msg_id, result)

    def _reply_future(self, msg_id: int, fut: asyncio.Future) -> None:
        if fut.cancelled():
            self._reply_error(msg_id, RpcError("the handler was cancelled"))
        elif fut.exception() is not None:
            self._reply_error(msg_id, fut.exception())
        else:
            self._send_reply(msg_id, fut.result())

    def _reply_error(self, msg_id: int | None, exc: BaseException) -> None:
        if msg_id is None:
            logger.error("one-way handler failed: %s", "".join(
                traceback.format_exception(exc)))
            return
        text = "".join(traceback.format_exception(exc))
        try:
            blob = pickle.dumps(exc)
        except Exception:
            blob = None
        self._write([ERROR, msg_id, blob, text])


def _load_error(blob: bytes | None, text: str) -> BaseException:
    if blob is not None:
        try:
            exc = pickle.loads(blob)
            if isinstance(exc, BaseException):
                return exc
        except Exception:
            pass
    return RpcError(f"remote error:\n{text}")
