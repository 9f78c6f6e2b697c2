"""Values between a ray:// client and its session: cloudpickle, with refs as ids.

An ObjectRef or ActorHandle inside a value never travels as itself: the pickler
writes a persistent id (``("ref", id)``, or ``("actor", id, class name, methods,
max_task_retries)``) and the other side's unpickler maps it to its own object, so
that the session can refuse an id the client was never given (one client cannot
name another's objects) and the client never sees the session's owner addresses.
Used by ``session.py`` and ``client_core.py``.
"""

from __future__ import annotations

import io
import pickle

import cloudpickle


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
