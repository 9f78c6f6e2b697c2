"""The ray:// client server: the head's door for remote drivers.

Runs in the head's control-store process (``head.py`` starts it when given
``ray_client_server_port``), on the one port a remote machine needs. Each client
connects with the cluster token (the rpc handshake checks it), then calls ``connect``
with its versions and a client id it made up. A version mismatch is refused, naming
both. A new client id gets a session: a driver process of its own (``session.py``),
which this server starts and relays to. The relay is op for op (``protocol.SESSION_OPS``;
a reply is a future resolved by the session's reply, so nothing is decoded or copied
here beyond msgpack), and the session's ``output`` notifications go back to the client.

A client whose connection drops keeps its session for ``client_reconnect_grace_s``
(Ray's 30 s): connecting again with the same id within it resumes the session; after
it (or at once, when the client calls ``disconnect`` from ``raggio.shutdown()``) the
session process's stdin is closed and it exits, freeing the client's objects and
non-detached actors. Not here: the calls themselves (``session.py``) and the client's
side (``client_core.py``).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import sys
from dataclasses import dataclass, field

from raggio.client import protocol
from raggio.exceptions import ConnectionLost
from raggio.rpc import Connection, Server, connect

logger = logging.getLogger(__name__)

#: How long a disconnecting client still gets output: the node's log monitor reads the
#: workers' files every 100 ms, and a line then takes two more hops to reach the client.
OUTPUT_LINGER_S = 0.3

#: Writes of output held for a client that is away (each a batch of lines, as printed).
HELD_OUTPUT_MAX = 1000


@dataclass
class _Session:
    client_id: str
    process: asyncio.subprocess.Process | None = None
    conn: Connection | None = None  #: to the session's driver process
    client: Connection | None = None  #: to the client, while it is connected
    expiry: asyncio.TimerHandle | None = None  #: the end of the grace period, when cut off
    #: output printed while the client was away, sent when it comes back (the newest
    #: ``HELD_OUTPUT_MAX`` writes)
    held_output: collections.deque = field(
        default_factory=lambda: collections.deque(maxlen=HELD_OUTPUT_MAX))
    started: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop()
                                    .create_future())


class ClientServer:
    """Serves ray:// clients on ``listen``; an async context manager (see the module doc)."""

    address: str
    sessions: dict[str, _Session]  #: by client id

    def __init__(self, *, listen: str, gcs_address: str, token: str, session_dir: str, cfg):
        self.address = listen
        self.sessions = {}
        self._gcs_address = gcs_address
        self._token = token
        self._session_dir = session_dir
        self._cfg = cfg
        self._by_client: dict[Connection, _Session] = {}
        self._tasks: set[asyncio.Task] = set()
        self._spare: asyncio.subprocess.Process | None = None  #: see ``_take_driver``
        self._spare_starting = False
        self._closing = False
        handlers = {op: self._relay(op) for op in protocol.SESSION_OPS}
        handlers["connect"] = self.connect
        handlers["disconnect"] = self.disconnect
        self._server = Server(handlers, token=token, listen=listen,
                              info={"role": "ray client server"})

    async def start(self) -> str:
        self.address = await self._server.start()
        return self.address

    async def close(self) -> None:
        self._closing = True
        await self._server.close()
        for session in list(self.sessions.values()):
            self._end(session)
        if self._spare is not None:
            self._spawn(self._stop_driver(self._spare))
            self._spare = None
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)

    async def __aenter__(self) -> "ClientServer":
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    # -- the ops

    async def connect(self, conn: Connection, payload: dict) -> dict:
        """Check the client's versions, then give it its session (a new one, or the one it
        had under the same client id)."""
        refusal = protocol.version_mismatch(payload, protocol.versions())
        if refusal is not None:
            raise RuntimeError(refusal)
        client_id = str(payload["client_id"])
        session = self.sessions.get(client_id)
        if session is None and payload.get("resume"):
            raise ConnectionLost(
                f"This ray:// client's session ended while it was away (more than "
                f"{self._cfg.client_reconnect_grace_s:g} s, or its driver exited): its objects "
                "and actors are freed. Call raggio.shutdown() and init() again.")
        if session is None:
            session = self.sessions[client_id] = _Session(client_id)
            self._spawn(self._start_session(session, payload))
        try:
            info = await asyncio.shield(session.started)
        except asyncio.CancelledError:  # the client left while its session was starting
            if session.client is None:
                self._expire_later(session)
            raise
        if session.expiry is not None:
            session.expiry.cancel()
            session.expiry = None
        old, session.client = session.client, conn
        self._by_client[conn] = session
        conn.close_callbacks.append(self._client_lost)
        if old is not None and old is not conn:
            old.close()  # the old connection of a client that came back (after the swap:
            # its close must not start the grace period of a session that has its client)
        while session.held_output:
            conn.notify("output", session.held_output.popleft())
        return info

    async def disconnect(self, conn: Connection, payload) -> None:
        """The client is done (``raggio.shutdown()``): end its session now, no grace, but
        after the output its last tasks printed has had time to arrive."""
        session = self._by_client.get(conn)
        if session is not None:
            await asyncio.sleep(OUTPUT_LINGER_S)
            self._end(session)

    def _relay(self, op: str):
        def relay(conn: Connection, payload):
            session = self._by_client.get(conn)
            if session is None or session.conn is None:
                raise RuntimeError(f"{op} before connect: call connect first.")
            return session.conn.call(op, payload)
        return relay

    # -- sessions

    async def _start_session(self, session: _Session, payload: dict) -> None:
        try:
            session.process, session.conn = await self._start_driver(session, payload)
            if self.sessions.get(session.client_id) is not session:  # ended meanwhile
                session.conn.close()
                await self._stop_driver(session.process)
                raise RuntimeError("The ray:// client server is closing.")
            info = await session.conn.call("runtime_context", None)
            session.started.set_result(info["ok"])
        except Exception as exc:  # noqa: BLE001 (the client's connect gets the reason)
            logger.warning("ray:// session %s did not start: %s", session.client_id, exc)
            session.started.set_exception(exc)
            self._end(session)

    async def _spawn_driver(self) -> asyncio.subprocess.Process:
        """A session driver process; it imports raggio, then waits for its spec on stdin."""
        log = open(os.path.join(self._session_dir, "logs", "ray_client_sessions.err"), "ab")
        with log:
            return await asyncio.create_subprocess_exec(
                sys.executable, "-m", "raggio.client.session", stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=log,
                env=dict(os.environ, RAGGIO_AUTH_TOKEN=self._token))

    async def _take_driver(self) -> asyncio.subprocess.Process:
        """The spare driver process, else a new one; then a new spare for the next client.

        A spare has done its imports (~0.3-0.6 s of a connect on this 2-core VM) before
        its client comes. The first client of a head starts one for the next: a head
        that serves no clients keeps no idle process."""
        process, self._spare = self._spare, None
        if process is None or process.returncode is not None:
            process = await self._spawn_driver()
        if not self._closing:
            self._spawn(self._make_spare())
        return process

    async def _make_spare(self) -> None:
        if self._spare is None and not self._spare_starting:
            self._spare_starting = True
            try:
                self._spare = await self._spawn_driver()
            finally:
                self._spare_starting = False
            if self._closing:
                await self._stop_driver(self._spare)
                self._spare = None

    async def _start_driver(self, session: _Session, payload: dict):
        """The session's driver process, given its spec and connected to."""
        sockets = os.path.join(self._session_dir, "sockets")
        os.makedirs(sockets, exist_ok=True)
        process = await self._take_driver()
        spec = {"gcs_address": self._gcs_address, "namespace": payload.get("namespace"),
                "runtime_env": payload.get("runtime_env"),
                "socket": os.path.join(sockets, f"client-{session.client_id[:8]}")}
        process.stdin.write(json.dumps(spec).encode() + b"\n")
        try:
            ready = json.loads(await asyncio.wait_for(process.stdout.readline(),
                                                      self._cfg.connect_timeout_s) or b"{}")
            if "address" not in ready:
                raise RuntimeError("The ray:// session's driver did not start: "
                                   + ready.get("error", "it exited; see its log in "
                                               f"{self._session_dir}/logs"))
            conn = await connect(ready["address"], token=self._token,
                                 handlers={"output": lambda _, out: self._output(session, out)},
                                 info={"role": "ray client server"},
                                 timeout_s=self._cfg.connect_timeout_s)
        except BaseException:
            process.kill()
            await process.wait()
            raise
        conn.close_callbacks.append(lambda _: self._end(session))
        return process, conn

    def _output(self, session: _Session, output: dict) -> None:
        if session.client is not None:
            session.client.notify("output", output)
        else:
            session.held_output.append(output)

    def _client_lost(self, conn: Connection) -> None:
        session = self._by_client.pop(conn, None)
        if session is None or session.client is not conn:
            return
        session.client = None
        self._expire_later(session)

    def _expire_later(self, session: _Session) -> None:
        """End the session after the grace period, unless its client comes back."""
        if self.sessions.get(session.client_id) is session and session.expiry is None:
            session.expiry = asyncio.get_running_loop().call_later(
                self._cfg.client_reconnect_grace_s, self._end, session)

    def _end(self, session: _Session) -> None:
        """End the session: its driver exits, freeing the client's objects and actors."""
        if self.sessions.get(session.client_id) is not session:
            return
        del self.sessions[session.client_id]
        logger.info("ray:// session %s ended", session.client_id)
        if session.expiry is not None:
            session.expiry.cancel()
        if session.client is not None:
            session.client.close()
        if session.conn is not None:
            session.conn.close()
        if session.process is not None:
            self._spawn(self._stop_driver(session.process))

    async def _stop_driver(self, process: asyncio.subprocess.Process) -> None:
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
