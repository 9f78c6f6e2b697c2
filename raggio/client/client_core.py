"""The client's side of ray://: a stand-in for the core worker behind the public API.

``init("ray://HOST:PORT")`` (or ``raggio://``) builds a ``ClientCore`` and sets it as
the process's core (``core/context.py``), so ``raggio.get``, ``raggio.put``,
``raggio.wait``, ``raggio.cancel``, ``raggio.kill``, ``nodes()``, ``cluster_resources()``
and ``get_runtime_context()`` work unchanged: they call the methods a ``CoreWorker``
has, and this class answers them by asking its session on the head (``session.py``,
through ``server.py``). Remote functions, actor classes and actor handles see
``core.is_client`` and hand their calls to ``submit_task``, ``create_actor`` and
``submit_actor_call``. Refs and handles are raggio's own classes; their counts here
(``refs``, ``actor_handles``) tell the session when the client let go of one.

A connection that drops is opened again on the next call, with the same client id, so
the session (and its objects) carries on; calls in flight when it dropped are made again
if they only read (``READ_OPS``), others fail with ``ConnectionLost``. Not here: what the
session does with the calls.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
import os
import sys
import threading
import time
import weakref
from typing import Any

import cloudpickle

from raggio.client import pickling, protocol
from raggio.core.actor import ActorHandle
from raggio.core.generators import ObjectRefGenerator
from raggio.core.object_ref import ObjectRef
from raggio.core.runtime_env_upload import RuntimeEnvUploader
from raggio.exceptions import ConnectionLost, RpcError
from raggio.rpc import Connection, connect

logger = logging.getLogger(__name__)

#: Ops that change nothing in the session, so a call that a dropped connection cut off is
#: made again after reconnecting (others raise ConnectionLost: they may have been done).
READ_OPS = frozenset({"get", "wait", "read_chunk", "runtime_context", "has_package"})


#: What the client tells its session it let go of, batched (``release_soon``).
RELEASED_KINDS = ("refs", "actors", "generators")


class _Holdings:
    """How many refs (or handles) to each id the client holds; an id whose count drops
    to zero is released in the session with the next batch (``release``)."""

    def __init__(self, core: "ClientCore", kind: str):
        self._core, self._kind = core, kind
        self._counts: dict[bytes, int] = {}
        self._lock = threading.Lock()

    def add_local(self, object_id: bytes, owner_address: str = "") -> None:
        with self._lock:
            self._counts[object_id] = self._counts.get(object_id, 0) + 1

    def remove_local(self, object_id: bytes) -> None:
        with self._lock:
            count = self._counts.get(object_id, 0) - 1
            if count > 0:
                self._counts[object_id] = count
                return
            self._counts.pop(object_id, None)
        self._core.release_soon(self._kind, object_id)

    def mark_escaped(self, object_id: bytes) -> bool:
        return False  # the session holds the object for as long as the client does

    # the ActorHandle spelling of the same counts
    def acquire(self, actor_id: bytes, transit_token=None) -> None:
        self.add_local(actor_id)

    def release(self, actor_id: bytes) -> None:
        self.remove_local(actor_id)

    def in_transit(self, actor_id: bytes) -> None:
        return None


class _ClientPackages(RuntimeEnvUploader):
    """The runtime envs of a ray:// client, prepared on its machine: a local
    ``working_dir`` or ``py_modules`` entry is packed here and the package goes to the
    session (``has_package``, ``put_package``), which stores it in the control store's KV;
    the session's driver is given the URIs. The packages of ``init``'s runtime env are
    packed before the session exists (its driver starts with their URIs) and held until
    ``send_held``."""

    def __init__(self, core: "ClientCore"):
        super().__init__(core.call)
        self._core = core
        self._held: list[tuple[str, bytes]] | None = []

    def _store(self, uri: str, data: bytes) -> None:
        """Send a package to the session unless the control store has it (held until
        ``send_held`` while there is no session yet)."""
        if self._held is not None:
            self._held.append((uri, data))
        elif not self._core.call("has_package", {"uri": uri}):
            logger.info("Pushing file package '%s' (%.2f MiB) to the cluster.", uri,
                        len(data) / (1024 * 1024))
            self._core.run_sync(self._core._put_package(uri, data))

    def send_held(self) -> None:
        """Send the packages held before the session started (once connected)."""
        held, self._held = self._held or [], None
        for uri, data in held:
            self._store(uri, data)


class ClientCore:
    """The process's core while connected through ray:// (see the module docstring)."""

    is_client = True
    mode = "driver"
    owns_escaped = True  #: never asks to be told of escaped refs (see _Holdings)
    actor_id = None
    placement_group = None
    session_dir = ""
    dashboard_url = None

    def __init__(self, address: str, *, token: str, cfg, namespace: str | None,
                 runtime_env: dict | None, log_to_driver: bool):
        self.address = address
        self.cfg = cfg
        self.current = threading.local()
        self.refs = _Holdings(self, "refs")
        self.actor_handles = _Holdings(self, "actors")
        self._token = token
        self._client_id = os.urandom(16).hex()
        #: Packs the local working_dir and py_modules of runtime envs (see _ClientPackages).
        self.runtime_envs = _ClientPackages(self)
        self._runtime_env = runtime_env
        self._request = {"client_id": self._client_id, "namespace": namespace,
                         **protocol.versions()}
        self._log_to_driver = log_to_driver
        self._conn: Connection | None = None
        self._connect_lock: asyncio.Lock | None = None
        self._released: dict[str, list[bytes]] = {kind: [] for kind in RELEASED_KINDS}
        self._release_lock = threading.Lock()
        self._registered: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._closed = False
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                        name="raggio-client")

    # -- lifecycle

    def start(self) -> None:
        """Connect and open the session.

        Raises:
            ConnectionError: the server cannot be reached in ``connect_timeout_s``.
            AuthenticationError: the token is wrong.
            RuntimeError: the client's and the cluster's versions differ.
        """
        self._thread.start()
        # The session's driver starts with the job's runtime env: its packages' URIs, the
        # packages themselves sent once the session is there.
        self._request["runtime_env"] = self.runtime_envs.set_job_env(self._runtime_env) or None
        try:
            self.run_sync(self._connection())
        except RpcError as exc:
            if isinstance(exc, ConnectionLost) or "Could not reach" in str(exc):
                raise ConnectionError(f"Could not connect to the ray:// client server at "
                                      f"{self.address}: {exc}") from exc
            raise
        self.runtime_envs.send_held()

    def _set_info(self, info: dict) -> None:
        self.job_id, self.node_id = info["job_id"], info["node_id"]
        self.worker_id, self.namespace = info["worker_id"], info["namespace"]
        self.gcs_address, self.node_ip = info["gcs_address"], info["node_ip"]

    def shutdown(self) -> None:
        if self._closed:
            return
        if self._conn is not None and not self._conn.is_closed:
            try:  # the session ends now, not after the reconnect grace period
                self.run_sync(self._conn.call_with_timeout("disconnect", None, 5.0), 10.0)
            except Exception:  # noqa: BLE001 (gone already: the grace period ends it)
                logger.debug("disconnect failed", exc_info=True)
        self._closed = True
        if self._conn is not None:
            self.loop.call_soon_threadsafe(self._conn.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()  # its selector and wake-up pipe are descriptors

    # -- the connection

    async def _connection(self) -> Connection:
        """The open connection, connecting (again) first if need be."""
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        async with self._connect_lock:
            if self._conn is not None and not self._conn.is_closed:
                return self._conn
            first = self._conn is None
            conn = await connect(self.address, token=self._token,
                                 handlers={"output": self._print_output},
                                 info={"role": "ray client"},
                                 timeout_s=self.cfg.connect_timeout_s)
            try:
                info = await conn.call("connect", dict(self._request, resume=not first))
            except BaseException:
                conn.close()
                raise
            self._conn = conn
            if first:
                self._set_info(info)
            return conn

    def _print_output(self, conn, output: dict) -> None:
        if self._log_to_driver:
            stream = sys.stderr if output["err"] else sys.stdout
            stream.write(output["text"])
            stream.flush()

    async def _call(self, op: str, payload: Any) -> Any:
        conn = await self._connection()
        try:
            reply = await conn.call(op, payload)
        except ConnectionLost:
            if op not in READ_OPS or self._closed:
                raise
            # The connection dropped under a call that only reads: make it again, once
            # connected again to the same session (which fails if the session ended).
            logger.info("The connection to %s dropped under %s: reconnecting to make it again",
                        self.address, op)
            reply = await (await self._connection()).call(op, payload)
        if "error" in reply:
            raise cloudpickle.loads(reply["error"])
        return reply["ok"]

    def run_sync(self, coro, timeout_s: float | None = None) -> Any:
        if self._closed:
            coro.close()
            raise RuntimeError("Cannot use raggio: raggio.shutdown() was already called.")
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout_s)
        except (concurrent.futures.TimeoutError, KeyboardInterrupt):
            fut.cancel()
            raise

    def call(self, op: str, payload: Any = None) -> Any:
        return self.run_sync(self._call(op, payload))

    def release_soon(self, kind: str, object_id: bytes) -> None:
        """Batch a release: the first of a loop iteration schedules the message."""
        if self._closed:
            return
        with self._release_lock:
            self._released[kind].append(object_id)
            first = sum(map(len, self._released.values())) == 1
        if first:
            try:
                self.loop.call_soon_threadsafe(self._send_releases)
            except RuntimeError:  # the loop closed (interpreter shutdown)
                pass

    def _send_releases(self) -> None:
        with self._release_lock:
            released, self._released = self._released, {kind: [] for kind in RELEASED_KINDS}
        if self._conn is not None and not self._conn.is_closed:
            self._conn.notify("release", released)

    # -- pickling: refs and handles travel as ids

    def _stand_in(self, obj):
        if isinstance(obj, ObjectRef):
            return ("ref", obj._id)
        if isinstance(obj, ActorHandle):
            return ("actor", obj._actor_id)
        return None

    def _resolve(self, kind: str, object_id: bytes, *description):
        if kind == "ref":
            return ObjectRef(object_id, "")
        return self._handle({"actor_id": object_id, "class_name": description[0],
                             "methods": description[1], "max_task_retries": description[2]})

    @staticmethod
    def _handle(described: dict) -> ActorHandle:
        return ActorHandle(described["actor_id"], described["class_name"],
                           described["methods"], described["max_task_retries"], counted=True)

    def _refs(self, ids):
        if ids is None:
            return None
        if isinstance(ids, dict):  # a streaming generator's, held by the session
            return ClientRefGenerator(self, ids["generator"])
        if isinstance(ids, list):
            return [ObjectRef(object_id, "") for object_id in ids]
        return ObjectRef(ids, "")

    # -- what the public API calls (a CoreWorker's methods)

    def get(self, refs: list[ObjectRef], timeout_s: float | None) -> list:
        return self.run_sync(self._get([ref._id for ref in refs], timeout_s))

    async def _get(self, ids: list[bytes], timeout_s: float | None) -> list:
        reply = await self._call("get", {"ids": ids, "timeout": timeout_s})
        blob = reply.get("data")
        if blob is None:
            blob = bytearray(reply["size"])

            async def read(offset: int) -> None:
                piece = await self._call("read_chunk", {"download": reply["download"],
                                                        "offset": offset})
                blob[offset:offset + len(piece)] = piece
            await self._each_chunk(reply["size"], read)
            await self._call("release", {"downloads": [reply["download"]]})
        return pickling.loads(blob, self._resolve)

    @staticmethod
    async def _each_chunk(size_bytes: int, move) -> None:
        """``await move(offset)`` for each chunk, ``CHUNKS_IN_FLIGHT`` at a time."""
        slots = asyncio.Semaphore(protocol.CHUNKS_IN_FLIGHT)

        async def one(offset: int) -> None:
            async with slots:
                await move(offset)
        await asyncio.gather(*(one(offset) for offset in protocol.chunk_offsets(size_bytes)))

    def get_future(self, ref: ObjectRef) -> concurrent.futures.Future:
        async def one():
            return (await self._get([ref._id], None))[0]
        return asyncio.run_coroutine_threadsafe(one(), self.loop)

    def put(self, value: Any) -> ObjectRef:
        blob = pickling.dumps(value, self._stand_in)
        return ObjectRef(self.run_sync(self._put(blob)), "")

    async def _put(self, blob: bytes) -> bytes:
        return await self._call("put", await self._sent(blob))

    async def _sent(self, blob: bytes) -> dict:
        """How ``blob`` goes in a ``put`` or ``put_package``: as it is, or sent before in
        chunks (``put_chunk``) and named by its upload id."""
        if len(blob) <= protocol.CHUNK_BYTES:
            return {"data": blob}
        upload, view = os.urandom(8).hex(), memoryview(blob)

        async def write(offset: int) -> None:
            await self._call("put_chunk", {"upload": upload, "size": len(blob), "offset": offset,
                                           "data": view[offset:offset + protocol.CHUNK_BYTES]})
        await self._each_chunk(len(blob), write)
        return {"upload": upload}

    async def _put_package(self, uri: str, data: bytes) -> None:
        await self._call("put_package", {"uri": uri, **await self._sent(data)})

    def wait(self, waitables: list, num_returns: int, timeout_s: float | None,
             fetch_local: bool) -> tuple[list, list]:
        """``raggio.wait`` over refs and streaming generators (``ClientRefGenerator``)."""
        generators = [index for index, waitable in enumerate(waitables)
                      if isinstance(waitable, ClientRefGenerator)]
        ready = set(self.call("wait", {"ids": [waitable._id for waitable in waitables],
                                       "generators": generators, "num_returns": num_returns,
                                       "timeout": timeout_s, "fetch_local": fetch_local}))
        return ([waitable for index, waitable in enumerate(waitables) if index in ready],
                [waitable for index, waitable in enumerate(waitables) if index not in ready])

    async def cancel(self, ref: ObjectRef, force: bool, recursive: bool) -> None:
        await self._call("cancel", {"id": ref._id, "force": force, "recursive": recursive})

    def request(self, conn_name: str, op: str, payload: Any = None,
                timeout_s: float | None = None) -> Any:
        """The control store's answer to ``op`` (the ops in ``protocol.GCS_OPS``)."""
        return self.call("gcs_request", {"op": op, "payload": payload})

    def placement_group_ready_ref(self, group) -> ObjectRef:
        return ObjectRef(self.call("placement_group_ready", {"pg_id": group.id.binary()}), "")

    def submit_task(self, function, args: tuple, kwargs: dict):
        return self._refs(self.call("submit_task", self._call_payload(
            function._function, function._options, args, kwargs)))

    def create_actor(self, actor_class, args: tuple, kwargs: dict) -> ActorHandle:
        return self._handle(self.call("create_actor", self._call_payload(
            actor_class._cls, actor_class._options, args, kwargs)))

    def submit_actor_call(self, handle: ActorHandle, method: str, args: tuple, kwargs: dict,
                          options: dict):
        return self._refs(self.call("submit_actor_call", {
            "actor_id": handle._actor_id, "method": method,
            "options": cloudpickle.dumps(options),
            "args": pickling.dumps((args, kwargs), self._stand_in)}))

    def get_actor(self, name: str, namespace: str | None) -> ActorHandle:
        return self._handle(self.call("get_actor", {"name": name,
                                                    "namespace": namespace or self.namespace}))

    def _call_payload(self, definition, options: dict, args: tuple, kwargs: dict) -> dict:
        if options.get("runtime_env"):  # its local paths are this machine's: packed here
            options = dict(options, runtime_env=self.runtime_envs.for_call(
                options["runtime_env"]))
        return {"key": self._register(definition), "options": cloudpickle.dumps(options),
                "args": pickling.dumps((args, kwargs), self._stand_in)}

    def _register(self, definition) -> str:
        """The session's key for a function or class, sent to it once."""
        key = self._registered.get(definition)
        if key is None:
            blob = cloudpickle.dumps(definition)
            key = hashlib.sha1(blob).hexdigest()
            self.call("register", {"key": key, "blob": blob})
            self._registered[definition] = key
        return key


class ClientRefGenerator(ObjectRefGenerator):
    """A streaming generator task's refs on a ray:// client: the session holds the
    task's ObjectRefGenerator, and each ``next()`` asks it for the next ref
    (``generator_next``), so refs come as the worker yields them, as in a driver."""

    def __init__(self, core: ClientCore, generator_id: bytes):
        self._core = core
        self._id = generator_id
        self._generator_ref = ObjectRef(generator_id, "")  # the completion object's
        self._ended = False

    def _next_sync(self, timeout_s: float | None = None) -> ObjectRef:
        return self._taken(self._core.call("generator_next", self._next_request(timeout_s)),
                           StopIteration)

    async def _next_async(self, timeout_s: float | None = None) -> ObjectRef:
        reply = await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(
            self._core._call("generator_next", self._next_request(timeout_s)), self._core.loop))
        return self._taken(reply, StopAsyncIteration)

    def _next_request(self, timeout_s: float | None) -> dict:
        return {"id": self._id, "timeout": timeout_s}

    def _taken(self, reply: dict, end: type[Exception]) -> ObjectRef:
        """The ref the session gave (a nil ref past the timeout), or ``end`` raised."""
        if "end" in reply:
            self._ended = True
            raise end
        return ObjectRef(reply["ref"], "") if reply["ref"] is not None else ObjectRef.nil()

    def next_ready(self) -> bool:
        return not self._ended and self._core.call("generator_state", {"id": self._id})[0]

    def is_finished(self) -> bool:
        return self._ended or self._core.call("generator_state", {"id": self._id})[1]

    def __del__(self):
        self._core.release_soon("generators", self._id)

    def __repr__(self):
        return f"ClientRefGenerator({self._id.hex()})"


def connect_client(address: str, *, cfg, token: str, namespace: str | None,
                   runtime_env: dict | None, log_to_driver: bool) -> ClientCore:
    """A started ClientCore for ``ray://HOST:PORT`` or ``raggio://HOST:PORT``."""
    core = ClientCore(address.partition("://")[2], token=token, cfg=cfg, namespace=namespace,
                      runtime_env=runtime_env, log_to_driver=log_to_driver)
    started = time.monotonic()
    try:
        core.start()
    except BaseException:
        core.shutdown()
        raise
    logger.debug("connected to %s in %.3f s", address, time.monotonic() - started)
    return core
