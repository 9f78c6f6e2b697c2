"""ObjectRef: a handle to a value that exists, or will, somewhere in the cluster.

A ref knows its object's id and its owner's address. Creating and dropping
refs updates the owner-side count in this process's core worker; pickling a
ref (inside a value or an argument container) records it as escaped, so the
owner keeps the object for the borrower. ``await ref``, ``ref.as_future()``
and ``ref.future()`` bridge to asyncio and concurrent.futures. As in Ray,
``raggio.ObjectID`` is another name for this class (kept for old programs).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os

from raggio.core import context
from raggio.common.ids import ObjectID
from raggio.core.serialization import note_contained_ref

logger = logging.getLogger(__name__)

_NIL_ID = b"\xff" * 28


class ObjectRef:
    """A reference to a (possibly not yet computed) remote object."""

    __slots__ = ("_id", "_owner", "_core", "__weakref__")

    def __init__(self, object_id: bytes, owner_address: str = "", *, _register: bool = True):
        self._id = object_id
        self._owner = owner_address
        self._core = context.current_core_or_none()
        if self._core is not None and _register:
            self._core.refs.add_local(object_id, owner_address)

    def __del__(self):
        core = self._core
        if core is not None:
            try:
                core.refs.remove_local(self._id)
            except Exception:  # interpreter shutdown
                pass

    @classmethod
    def nil(cls) -> "ObjectRef":
        """The ref to no object (what a generator's ``_next_sync`` returns on timeout)."""
        return cls(_NIL_ID, "", _register=False)

    @classmethod
    def from_random(cls) -> "ObjectRef":
        return cls(os.urandom(len(_NIL_ID)), _register=False)

    def is_nil(self) -> bool:
        return self._id == _NIL_ID

    def binary(self) -> bytes:
        return self._id

    def hex(self) -> str:
        return self._id.hex()

    def object_id(self) -> ObjectID:
        return ObjectID(self._id)

    def task_id(self):
        return ObjectID(self._id).task_id()

    def owner_address(self) -> str:
        return self._owner

    def __eq__(self, other):
        return isinstance(other, ObjectRef) and other._id == self._id

    def __hash__(self):
        return hash(self._id)

    def __repr__(self):
        return f"ObjectRef({self._id.hex()})"

    def __reduce__(self):
        note_contained_ref(self)
        core = self._core
        if core is not None and core.refs.mark_escaped(self._id) and not core.owns_escaped:
            core.note_owns_escaped()
        return _rebuild_ref, (self._id, self._owner)

    def _on_completed(self, callback) -> None:
        """Ray's: call ``callback(value)`` once the object is ready (with the error instead
        of the value if its task failed), on raggio's loop thread."""
        def done(fut: concurrent.futures.Future) -> None:
            try:
                value = fut.result()
            except BaseException as exc:  # noqa: BLE001 (the error is the value given)
                value = exc
            callback(value)
        self.future().add_done_callback(done)

    def future(self) -> concurrent.futures.Future:
        """A concurrent.futures.Future that resolves to the object's value."""
        return self._core_or_init().get_future(self)

    def as_future(self) -> asyncio.Future:
        """An asyncio future (of the running loop) that resolves to the object's value.

        Cancelling it does not cancel the task. Deprecated in Ray in favour of
        ``asyncio.wrap_future(ref.future())``, and warned about likewise.
        """
        logger.warning("ref.as_future() is deprecated in favor of "
                       "asyncio.wrap_future(ref.future()).")
        return asyncio.wrap_future(self.future())

    def __await__(self):
        return asyncio.wrap_future(self.future()).__await__()

    def _core_or_init(self):
        return self._core or context.get_core()


def _rebuild_ref(object_id: bytes, owner_address: str) -> ObjectRef:
    return ObjectRef(object_id, owner_address)
