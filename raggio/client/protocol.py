"""What a ray:// client and its session agree on: ops, versions, chunking, pickling.

Values cross as cloudpickle blobs. An ObjectRef or ActorHandle inside a value never
travels as itself: the pickler writes a persistent id (``("ref", id)`` or
``("actor", id)``) and the other side's unpickler maps it to its own object, so that
the session can refuse an id the client was never given (one client cannot name
another's objects) and the client never sees the session's owner addresses.
Blobs past ``CHUNK_BYTES`` travel in chunks (``put_chunk`` / ``read_chunk``), never
as one giant frame.
"""

from __future__ import annotations

import io
import pickle
import sys

import cloudpickle

#: Largest piece of a value in one message: big enough that a 1 GB object takes
#: ~128 round trips, small enough that the head's relay never buffers much.
CHUNK_BYTES = 8 * 2**20

#: The ops a client calls on its session, relayed as they are by the server (one table,
#: so that a grep finds both ends: the session's ``handlers()`` has the same names).
SESSION_OPS = ("register", "submit_task", "create_actor", "submit_actor_call", "get_actor",
               "put_chunk", "put", "get", "read_chunk", "wait", "release", "cancel",
               "gcs_request", "runtime_context")

#: Control-store ops a client may make through its session (``core.request("gcs", ...)``
#: in the public API: nodes, resources, named actors, ``raggio.kill``).
GCS_OPS = frozenset({"get_nodes", "cluster_resources", "list_named_actors", "kv_get",
                     "get_named_actor", "kill_actor"})


def versions() -> dict:
    """This side's versions, compared at connect."""
    from raggio import __version__
    return {"raggio_version": __version__, "python_version": "%d.%d" % sys.version_info[:2]}


def version_mismatch(client: dict, server: dict) -> str | None:
    """The refusal for a client whose raggio or Python version is not the server's; None
    when they match (Python's micro version may differ, as in Ray)."""
    for key, what in (("raggio_version", "raggio"), ("python_version", "Python")):
        if client.get(key) != server[key]:
            return (f"Version mismatch: the client runs {what} {client.get(key)} but the "
                    f"cluster runs {what} {server[key]}. Use the same {what} version on "
                    "both sides to connect with ray://.")
    return None


class Pickler(cloudpickle.Pickler):
    """cloudpickle, with refs and handles written as persistent ids by ``stand_in``."""

    def __init__(self, file, stand_in):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._stand_in = stand_in

    def persistent_id(self, obj):
        return self._stand_in(obj)


class Unpickler(pickle.Unpickler):
    """Loads a ``Pickler`` blob, asking ``resolve(kind, id, *description)`` for each
    persistent id (an actor's carries its class name, methods and max_task_retries)."""

    def __init__(self, file, resolve):
        super().__init__(file)
        self._resolve = resolve

    def persistent_load(self, pid):
        return self._resolve(*pid)


def dumps(value, stand_in) -> bytes:
    buffer = io.BytesIO()
    Pickler(buffer, stand_in).dump(value)
    return buffer.getvalue()


def loads(blob: bytes, resolve):
    return Unpickler(io.BytesIO(blob), resolve).load()


def dumps_error(exc: BaseException) -> bytes:
    """An exception for the other side; one that does not pickle becomes RaySystemError
    with its text."""
    try:
        return cloudpickle.dumps(exc)
    except Exception:  # noqa: BLE001 (any pickling failure: send the text instead)
        from raggio.exceptions import RaySystemError
        return cloudpickle.dumps(RaySystemError(f"{type(exc).__name__}: {exc}"))


def chunks(blob: bytes):
    """``blob`` in pieces of at most ``CHUNK_BYTES`` (memoryviews, no copies)."""
    view = memoryview(blob)
    for start in range(0, len(view), CHUNK_BYTES):
        yield view[start:start + CHUNK_BYTES]
