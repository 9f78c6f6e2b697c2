"""The objects this process knows: owned ones and cached borrowed ones.

For each object: whether its value is ready, the value itself when small
(``inline``: the serialized parts) or the node whose arena holds it, whether
it is an error, and who is waiting for it. It also keeps the reference
counts an owner needs: refs alive in this process, refs held by pending
tasks (and by the lineage of their results), and whether a ref escaped to another process (then the object is kept
until this owner exits: a simplification of Ray's borrower protocol).

Reference counts change from any thread (an ObjectRef dies wherever the
garbage collector runs) under a lock; everything else changes on the core
worker's event loop. When an object's count reaches zero, ``free_callback``
runs on the loop with the ids to free.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Callable

PENDING, READY = 0, 1


class ObjectEntry:
    __slots__ = ("state", "inline", "node_id", "node_address", "size_bytes", "is_error",
                 "waiters", "local_refs", "task_refs", "escaped", "owned", "owner_address",
                 "dropped", "copies", "lineage", "call_site")

    def __init__(self, owned: bool, owner_address: str):
        self.state = PENDING
        self.inline: list | None = None
        self.node_id: bytes | None = None
        self.node_address = ""
        self.size_bytes = 0
        self.is_error = False
        self.waiters: list[asyncio.Future] | None = None
        self.local_refs = 0
        self.task_refs = 0
        self.escaped = False
        self.owned = owned
        self.owner_address = owner_address
        self.dropped = False  #: no refs left while still pending: free on arrival
        self.copies: set[str] | None = None  #: other nodes (addresses) holding a copy
        self.lineage: dict | None = None  #: the spec of the task that made it, to rebuild it
        self.call_site: str | None = None  #: where the user's code made it, when recorded

    def location(self) -> dict:
        if self.inline is not None:
            return {"inline": self.inline, "is_error": self.is_error}
        return {"node_id": self.node_id, "node_address": self.node_address,
                "size_bytes": self.size_bytes, "is_error": self.is_error}


def _record(entry: ObjectEntry, location: dict) -> None:
    entry.inline = location.get("inline")
    entry.node_id = location.get("node_id")
    entry.node_address = location.get("node_address", "")
    entry.size_bytes = location.get("size_bytes", 0)
    entry.is_error = location.get("is_error", False)
    entry.state = READY


def _enqueue(entry: ObjectEntry, waiter) -> None:
    if entry.waiters is None:
        entry.waiters = [waiter]
        return
    if len(entry.waiters) > 16:  # drop waiters that timed out or were cancelled
        entry.waiters = [w for w in entry.waiters if not w.done()]
    entry.waiters.append(waiter)


class ReadyCounter:
    """Waits for `needed` objects of many to become ready, as one waiter on all of them.

    An entry's waiters are woken with ``set_result`` unless ``done()``, which is all a
    future offers them; this counts the wake-ups and resolves ``future`` at `needed`.
    ``fetched`` is the same for a fetch task's callback (the task returns the entry).
    With ``stop_on_error`` (``get``) an error value ends the wait at once and ``future``'s
    result is True: ``get`` raises it without waiting for the others, as Ray does.
    """

    __slots__ = ("needed", "future", "stop_on_error")

    def __init__(self, needed: int, loop: asyncio.AbstractEventLoop, stop_on_error: bool = False):
        self.needed = needed
        self.future = loop.create_future()
        self.stop_on_error = stop_on_error

    def done(self) -> bool:
        return self.future.done()

    def set_result(self, entry) -> None:
        self.needed -= 1
        if entry is not None and entry.is_error and self.stop_on_error:
            if not self.future.done():
                self.future.set_result(True)
        elif self.needed <= 0 and not self.future.done():
            self.future.set_result(False)

    def fetched(self, task: asyncio.Future) -> None:
        if self.future.done() or task.cancelled():
            return
        if task.exception() is not None:
            self.future.set_exception(task.exception())
        else:
            self.set_result(task.result())

    def cancel(self) -> None:
        """Stop waiting (done or given up): the entries drop it at their next pruning."""
        self.future.cancel()


class ObjectTable:
    """See the module docstring."""

    def __init__(self, my_address: str, loop: asyncio.AbstractEventLoop,
                 free_callback: Callable[[list[tuple[bytes, ObjectEntry]]], None]):
        self.entries: dict[bytes, ObjectEntry] = {}
        self.my_address = my_address
        self._loop = loop
        self._free_callback = free_callback
        self._lock = threading.Lock()
        self._to_free: list[bytes] = []
        #: Task id -> the argument objects it holds (kept here, not in the spec that travels).
        self._task_args: dict[bytes, list[bytes]] = {}
        self._free_scheduled = False

    # -- any thread --

    def add_local(self, object_id: bytes, owner_address: str) -> None:
        with self._lock:
            entry = self.entries.get(object_id)
            if entry is None:
                entry = ObjectEntry(owner_address == self.my_address, owner_address)
                self.entries[object_id] = entry
            entry.local_refs += 1

    def remove_local(self, object_id: bytes) -> None:
        with self._lock:
            entry = self.entries.get(object_id)
            if entry is None:
                return
            entry.local_refs -= 1
            if entry.local_refs <= 0 and entry.task_refs <= 0:
                self._schedule_free(object_id)

    def hold_task_args(self, task_id: bytes, object_ids: list[bytes]) -> None:
        """Keep a task's argument objects alive until ``release_task_args``."""
        with self._lock:
            self._task_args[task_id] = object_ids
            for object_id in object_ids:
                entry = self.entries.get(object_id)
                if entry is not None:
                    entry.task_refs += 1

    def release_task_args(self, task_id: bytes) -> None:
        """The task is done with its arguments (finished, failed, or its lineage freed)."""
        with self._lock:
            for object_id in self._task_args.pop(task_id, ()):
                entry = self.entries.get(object_id)
                if entry is None:
                    continue
                entry.task_refs -= 1
                if entry.local_refs <= 0 and entry.task_refs <= 0:
                    self._schedule_free(object_id)

    def mark_escaped(self, object_id: bytes) -> bool:
        """Note that a ref to this object left the process; True if it is an owned one."""
        entry = self.entries.get(object_id)
        if entry is not None and entry.owned:
            entry.escaped = True
            return True
        return False

    def _schedule_free(self, object_id: bytes) -> None:
        self._to_free.append(object_id)
        if not self._free_scheduled:
            self._free_scheduled = True
            try:
                self._loop.call_soon_threadsafe(self._free_now)
            except RuntimeError:  # loop closed at shutdown
                pass

    # -- event loop only --

    def _free_now(self) -> None:
        with self._lock:
            self._free_scheduled = False
            ids, self._to_free = self._to_free, []
            freed = []
            for object_id in ids:
                entry = self.entries.get(object_id)
                if entry is None or entry.local_refs > 0 or entry.task_refs > 0:
                    continue
                if entry.escaped:
                    continue
                if entry.state == PENDING and entry.owned:
                    entry.dropped = True
                    continue
                del self.entries[object_id]
                freed.append((object_id, entry))
        if freed:
            self._free_callback(freed)

    def create_owned(self, object_id: bytes) -> ObjectEntry:
        with self._lock:
            entry = self.entries.get(object_id)
            if entry is None:
                entry = ObjectEntry(True, self.my_address)
                self.entries[object_id] = entry
            return entry

    def create_ready(self, object_id: bytes, location: dict) -> ObjectEntry:
        """A new owned object whose value is known already (``put``); callable from any
        thread: nobody can be waiting for an id that was just made."""
        entry = ObjectEntry(True, self.my_address)
        _record(entry, location)
        with self._lock:
            self.entries[object_id] = entry
        return entry

    def set_ready(self, object_id: bytes, location: dict) -> None:
        """Record an object's value or location and wake its waiters."""
        entry = self.entries.get(object_id)
        if entry is None:
            return
        _record(entry, location)
        waiters, entry.waiters = entry.waiters, None
        for fut in waiters or ():
            if not fut.done():
                fut.set_result(entry)
        if entry.dropped:
            with self._lock:
                if entry.local_refs <= 0 and entry.task_refs <= 0:
                    del self.entries[object_id]
                    self._free_callback([(object_id, entry)])

    def reset_pending(self, object_id: bytes) -> None:
        entry = self.entries.get(object_id)
        if entry is not None:
            entry.state = PENDING
            entry.inline = entry.node_id = entry.copies = None
            entry.is_error = False

    def add_waiter(self, object_ids: list[bytes], waiter: ReadyCounter) -> None:
        """Tell `waiter` as each of these objects becomes ready (see ReadyCounter)."""
        entries = self.entries
        for object_id in object_ids:
            entry = entries.get(object_id)
            if entry is None:
                waiter.set_result(None)
            elif entry.state == READY:
                waiter.set_result(entry)
            else:
                _enqueue(entry, waiter)

    def wait_ready(self, object_id: bytes) -> asyncio.Future:
        fut = self._loop.create_future()
        entry = self.entries.get(object_id)
        if entry is not None and entry.state == READY:
            fut.set_result(entry)
            return fut
        if entry is None:
            fut.set_result(None)
            return fut
        _enqueue(entry, fut)
        return fut
