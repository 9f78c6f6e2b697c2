"""One ray:// client's session: a driver that makes the client's calls.

The client server (``server.py``) starts one such process per client session
(``python -m raggio.client.session``, or a spare started earlier that has done its
imports) with the cluster token in its environment and ``{"gcs_address", "socket",
"namespace", "runtime_env"}`` as a JSON line on stdin. It joins the cluster as an ordinary driver (``raggio.init(address=...)``),
listens on ``socket`` for the server's relayed requests, prints a ready line, and
exits when its stdin closes (the session ended), which frees what it owns: the
client's objects and its non-detached actors, as for any driver that exits.

What the client was given is held here, by id (``Session.refs``, ``Session.actors``):
a request naming any other id is refused, so one client cannot read or free another's
objects. The driver's printed worker output goes to the client as ``output``
notifications. Calls block (a ``get`` may wait for minutes), so each runs in a thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import json
import os
import re
import sys
import threading

import cloudpickle

from raggio.client import pickling, protocol
from raggio.common.runtime_env_packages import PACKAGE_PREFIX
from raggio.core import actor, api, context
from raggio.core.actor import ActorHandle
from raggio.core.generators import ObjectRefGenerator
from raggio.core.object_ref import ObjectRef
from raggio.core.placement_group import PlacementGroup
from raggio.launch import die_with_parent, print_ready
from raggio.rpc import Server

#: A package's URI, as ``runtime_env_packages`` names them by content hash.
_PACKAGE_URI = re.compile(rf"gcs://{PACKAGE_PREFIX}[0-9a-f]{{32}}\.zip")

#: Calls that may block at once (each ``get`` or ``wait`` holds a thread while it waits).
MAX_CONCURRENT_CALLS = 64


class Session:
    """The client's objects, actors and registered definitions, and the ops on them."""

    refs: dict[bytes, ObjectRef]  #: the objects the client holds refs to
    actors: dict[bytes, ActorHandle]  #: the actors the client holds handles to
    definitions: dict[str, object]  #: registered remote functions and actor classes
    #: the streaming generators of the client's tasks, by their completion object's id
    generators: dict[bytes, ObjectRefGenerator]
    uploads: dict[str, bytearray]  #: puts being received in chunks (in any order)
    #: get results being read in chunks, until the client releases them (a chunk may be
    #: read twice: a read cut off by a dropped connection is made again)
    downloads: dict[str, bytes]

    def __init__(self):
        self.refs, self.actors, self.definitions, self.generators = {}, {}, {}, {}
        self.uploads, self.downloads = {}, {}
        self._lock = threading.Lock()
        self._next_download = 0

    def handlers(self) -> dict:
        return {op: getattr(self, op) for op in protocol.SESSION_OPS}

    # -- ids in and out of pickles

    def _stand_in(self, obj):
        # The first handle kept stays: a weak one (get_actor's) must not replace the
        # counted one that keeps the actor alive.
        if isinstance(obj, ObjectRef):
            self.refs.setdefault(obj._id, obj)
            return ("ref", obj._id)
        if isinstance(obj, ActorHandle):
            self.actors.setdefault(obj._actor_id, obj)
            return ("actor", obj._actor_id, obj._class_name, obj._methods,
                    obj._max_task_retries)
        return None

    def _resolve(self, kind: str, object_id: bytes, *description):
        table = self.refs if kind == "ref" else self.actors
        try:
            return table[object_id]
        except KeyError:
            what = "object" if kind == "ref" else "actor"
            raise ValueError(f"The {what} {object_id.hex()} is not known to this ray:// "
                             "client session (freed, or never given to this client).") from None

    def _returned(self, refs) -> list[bytes] | dict | None:
        """The ids of what ``.remote()`` returned, held for the client (a streaming
        generator's: its completion object's, which names it in ``generator_next``)."""
        if refs is None:
            return None
        if isinstance(refs, ObjectRefGenerator):
            generator_id = self._stand_in(refs.completed())[1]
            self.generators[generator_id] = refs
            return {"generator": generator_id}
        many = isinstance(refs, list)
        ids = [self._stand_in(ref)[1] for ref in (refs if many else [refs])]
        return ids if many else ids[0]

    def _describe(self, handle: ActorHandle) -> dict:
        self._stand_in(handle)
        return {"actor_id": handle._actor_id, "class_name": handle._class_name,
                "methods": handle._methods, "max_task_retries": handle._max_task_retries}

    def _call_args(self, payload: dict) -> tuple:
        args, kwargs = pickling.loads(payload["args"], self._resolve)
        return args, kwargs, cloudpickle.loads(payload["options"])

    # -- the ops (see protocol.SESSION_OPS)

    def register(self, payload: dict) -> None:
        definition = cloudpickle.loads(payload["blob"])
        self.definitions[payload["key"]] = api.remote(definition)

    def submit_task(self, payload: dict):
        args, kwargs, options = self._call_args(payload)
        function = self.definitions[payload["key"]]
        return self._returned(function.options(**options).remote(*args, **kwargs))

    def create_actor(self, payload: dict) -> dict:
        args, kwargs, options = self._call_args(payload)
        actor_class = self.definitions[payload["key"]]
        return self._describe(actor_class.options(**options).remote(*args, **kwargs))

    def submit_actor_call(self, payload: dict):
        args, kwargs, options = self._call_args(payload)
        method = getattr(self._resolve("actor", payload["actor_id"]), payload["method"])
        if options:
            method = method.options(**options)
        return self._returned(method.remote(*args, **kwargs))

    def get_actor(self, payload: dict) -> dict:
        return self._describe(actor.get_actor(payload["name"], payload["namespace"]))

    def put_chunk(self, payload: dict) -> None:
        with self._lock:
            buffer = self.uploads.get(payload["upload"])
            if buffer is None:
                buffer = self.uploads[payload["upload"]] = bytearray(payload["size"])
        data, offset = payload["data"], payload["offset"]
        buffer[offset:offset + len(data)] = data  # chunks never overlap: no lock needed

    def _uploaded(self, payload: dict) -> bytes:
        """The bytes a ``put`` or ``put_package`` carries, or received in chunks before."""
        blob = payload.get("data")
        if blob is None:
            with self._lock:
                blob = self.uploads.pop(payload["upload"])
        return blob

    def put(self, payload: dict) -> bytes:
        return self._stand_in(api.put(pickling.loads(self._uploaded(payload), self._resolve)))[1]

    def get(self, payload: dict) -> dict:
        refs = [self._resolve("ref", object_id) for object_id in payload["ids"]]
        blob = pickling.dumps(api.get(refs, timeout=payload["timeout"]), self._stand_in)
        if len(blob) <= protocol.CHUNK_BYTES:
            return {"data": blob}
        with self._lock:
            self._next_download += 1
            download = str(self._next_download)
            self.downloads[download] = blob
        return {"download": download, "size": len(blob)}

    def read_chunk(self, payload: dict) -> memoryview:
        offset = payload["offset"]
        return memoryview(self.downloads[payload["download"]])[offset:offset + protocol.CHUNK_BYTES]

    def wait(self, payload: dict) -> list[int]:
        """The indices of the ready ones among refs and (at ``generators``) generators."""
        generators = set(payload.get("generators", ()))
        waitables = [self._generator(waitable_id) if index in generators
                     else self._resolve("ref", waitable_id)
                     for index, waitable_id in enumerate(payload["ids"])]
        ready, _ = api.wait(waitables, num_returns=payload["num_returns"],
                            timeout=payload["timeout"], fetch_local=payload["fetch_local"])
        chosen = set(map(id, ready))
        return [index for index, waitable in enumerate(waitables) if id(waitable) in chosen]

    def generator_next(self, payload: dict) -> dict:
        """The generator's next ref (``None``: none came in ``timeout``), or its end."""
        generator = self._generator(payload["id"])
        try:
            ref = generator._next_sync(payload["timeout"])
        except StopIteration:
            return {"end": True}
        return {"ref": None if ref.is_nil() else self._stand_in(ref)[1]}

    def generator_state(self, payload: dict) -> list[bool]:
        generator = self._generator(payload["id"])
        return [generator.next_ready(), generator.is_finished()]

    def _generator(self, generator_id: bytes) -> ObjectRefGenerator:
        try:
            return self.generators[generator_id]
        except KeyError:
            raise ValueError(f"The generator {generator_id.hex()} is not known to this ray:// "
                             "client session.") from None

    def release(self, payload: dict) -> None:
        for object_id in payload.get("refs", ()):
            self.refs.pop(object_id, None)
        for actor_id in payload.get("actors", ()):
            self.actors.pop(actor_id, None)
        for generator_id in payload.get("generators", ()):
            self.generators.pop(generator_id, None)
        for download in payload.get("downloads", ()):
            self.downloads.pop(download, None)

    def cancel(self, payload: dict) -> None:
        api.cancel(self._resolve("ref", payload["id"]), force=payload["force"],
                   recursive=payload["recursive"])

    def gcs_request(self, payload: dict):
        if payload["op"] not in protocol.GCS_OPS:
            raise ValueError(f"A ray:// client may not call {payload['op']!r} on the "
                             "control store.")
        return context.get_core().request("gcs", payload["op"], payload["payload"])

    def placement_group_ready(self, payload: dict) -> bytes:
        return self._stand_in(PlacementGroup(payload["pg_id"]).ready())[1]

    def has_package(self, payload: dict) -> bool:
        return bool(context.get_core().request("gcs", "kv_keys", _package_uri(payload)))

    def put_package(self, payload: dict) -> None:
        """Store a runtime env package the client packed (a ``working_dir`` or
        ``py_modules`` entry of its machine) in the control store's KV, unless there: the
        first upload of a content hash stays."""
        context.get_core().request("gcs", "kv_put",
                                   [_package_uri(payload), self._uploaded(payload), False])

    def runtime_context(self, payload) -> dict:
        core = context.get_core()
        return {"job_id": core.job_id, "node_id": core.node_id, "worker_id": core.worker_id,
                "namespace": core.namespace, "gcs_address": core.gcs_address,
                "node_ip": core.node_ip}


def _package_uri(payload: dict) -> str:
    """The package URI a client named; only the form raggio's packages have
    (``gcs://_ray_pkg_<hash>.zip``), so a client writes no other key of the KV."""
    uri = payload["uri"]
    if not isinstance(uri, str) or not _PACKAGE_URI.fullmatch(uri):
        raise ValueError(f"{uri!r} is not a runtime env package URI "
                         f"(gcs://{PACKAGE_PREFIX}<hash>.zip).")
    return uri


class _ForwardedOutput(io.TextIOBase):
    """A text stream whose writes go to the client as ``output`` notifications (the
    driver prints its workers' lines to sys.stdout/sys.stderr)."""

    def __init__(self, server: Server, loop: asyncio.AbstractEventLoop, is_err: bool):
        super().__init__()
        self._server, self._loop, self._is_err = server, loop, is_err

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._loop.call_soon_threadsafe(self._send, text)
        return len(text)

    def _send(self, text: str) -> None:
        for conn in self._server.connections:
            conn.notify("output", {"err": self._is_err, "text": text})



def _in_thread(executor, method):
    """A handler that runs ``method`` in a thread and replies ``{"ok": result}`` or
    ``{"error": pickled exception}`` (pickled here with cloudpickle: the client's own
    exception classes must reach it, and the server that relays it cannot load them)."""
    async def handle(conn, payload):
        try:
            result = await asyncio.get_running_loop().run_in_executor(executor, method, payload)
        except Exception as exc:  # noqa: BLE001 (every error goes back to the client)
            return {"error": pickling.dumps_error(exc)}
        return {"ok": result}
    return handle


async def _serve(spec: dict, session: Session) -> None:
    loop = asyncio.get_running_loop()
    executor = concurrent.futures.ThreadPoolExecutor(MAX_CONCURRENT_CALLS,
                                                     thread_name_prefix="client-call")
    handlers = {op: _in_thread(executor, method) for op, method in session.handlers().items()}
    server = Server(handlers, token=context.get_core().cfg.auth_token,
                    listen="unix:" + spec["socket"], info={"role": "client session"})
    await server.start()
    stdin_closed = loop.create_future()
    threading.Thread(target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(
        stdin_closed.set_result, None)), daemon=True).start()
    print_ready({"address": server.address})
    sys.stdout = _ForwardedOutput(server, loop, is_err=False)
    sys.stderr = _ForwardedOutput(server, loop, is_err=True)
    try:
        await stdin_closed
    finally:
        await server.close()
        executor.shutdown(wait=False, cancel_futures=True)


def main() -> None:
    die_with_parent()
    line = sys.stdin.readline()  # a spare waits here, imports done, until a client comes
    if not line:
        return  # a spare no client took
    spec = json.loads(line)
    try:
        api.init(address=spec["gcs_address"], namespace=spec.get("namespace"),
                 runtime_env=spec.get("runtime_env"), configure_logging=False)
    except Exception as exc:  # noqa: BLE001 (the server passes the reason to the client)
        print_ready({"error": f"{type(exc).__name__}: {exc}"})
        raise SystemExit(1) from None
    try:
        asyncio.run(_serve(spec, Session()))
    finally:
        api.shutdown()
        os._exit(0)  # threads still blocked in a get must not hold the exit


if __name__ == "__main__":
    main()
