"""Generator tasks: both ends of a stream of yielded values, as Ray's generators.

A task or actor method with ``num_returns="streaming"`` (the default for generator
functions) returns an ``ObjectRefGenerator`` at ``.remote()``; one with
``num_returns="dynamic"`` returns one ref whose value is a
``DynamicObjectRefGenerator``. Both run the same way on the worker:

- The worker's executor iterates the generator; ``ItemReporter`` stores each yielded
  value (inline, or in the arena as returns are) under ``object_id_bytes(task_id, i + 1)``
  (index 0 is the task's own return, the *completion* object) and sends it to the
  owner as ``generator_item`` over the connection the push came on, ahead of the reply.
  With ``_generator_backpressure_num_objects`` it pauses while that many items are
  unconsumed; the owner answers each item with ``generator_consumed``.
- The owner's ``GeneratorStreams`` (one per core worker, on its loop) turns each item into
  an owned, ready object and a ref in the stream's buffer, where ``next()`` finds it.
  Items arrive before the reply, so the completion object being ready (set by the
  submitter, as any return) ends the stream; an error there (the task raised, its worker
  died, it was cancelled) is what the last ``next()`` yields, as in Ray. A retried
  attempt sends its items again from 0; those already known are skipped.

Not owned here: submitting and retrying (``task_submitter``/``actor_submitter``, which
treat a generator task as a task with one return), running it (``task_executor``).
Simplification: the items of a dynamic generator are kept until the owner exits, as any
ref that escapes its owner (see docs/ARCHITECTURE.md, "Objects").
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import threading
import time
from typing import Any

from raggio.common.ids import object_id_bytes
from raggio.core.object_ref import ObjectRef
from raggio.core.object_table import READY
from raggio.core.serialization import serialize

STREAMING, DYNAMIC = "streaming", "dynamic"


class DynamicObjectRefGenerator:
    """The value of a ``num_returns="dynamic"`` task: an iterable of the refs it yielded."""

    def __init__(self, refs: list[ObjectRef]):
        self._refs = collections.deque(refs)

    def __iter__(self):
        while self._refs:
            yield self._refs.popleft()

    def __len__(self) -> int:
        return len(self._refs)


class _Stream:
    """Owner-side state of one streaming generator task (changed on the loop, read anywhere)."""

    __slots__ = ("spec", "task_id", "completion_id", "lock", "refs", "reported", "consumed",
                 "finished", "waiters", "dropped", "backpressure", "conn")

    def __init__(self, spec: dict, completion_id: bytes, backpressure: int):
        self.spec = spec  #: the lineage of its items (normal tasks), to rebuild a lost one
        self.task_id: bytes = spec["task_id"]
        self.completion_id = completion_id
        self.lock = threading.Lock()
        self.refs: collections.deque[ObjectRef] = collections.deque()  #: reported, not taken
        self.reported = 0  #: items known (the next index expected)
        self.consumed = 0  #: items taken by next()
        self.finished = False  #: the completion object is ready: no more items
        self.waiters: list = []  #: futures (asyncio of the loop, or concurrent) woken on change
        self.dropped = False  #: the ObjectRefGenerator is gone
        self.backpressure = backpressure
        self.conn = None  #: the connection the last item came on (its worker)

    def next_available(self) -> bool:
        return bool(self.refs) or self.finished

    def wake(self) -> None:
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class GeneratorStreams:
    """The owner's streams, by task id, and the ``generator_item`` op that feeds them."""

    def __init__(self, core):
        self.core = core
        self.streams: dict[bytes, _Stream] = {}

    def open(self, spec: dict, completion_ref: ObjectRef, options: dict) -> Any:
        """Prepare a generator task's spec before it is submitted (caller's thread); return
        what ``.remote()`` returns: an ObjectRefGenerator, or the ref of a dynamic one."""
        spec["owner_address"] = self.core.address
        if spec["num_returns"] == DYNAMIC:
            return completion_ref
        backpressure = options.get("_generator_backpressure_num_objects") or 0
        if backpressure > 0:
            spec["backpressure"] = backpressure
        stream = _Stream(spec, completion_ref._id, backpressure)
        self.streams[stream.task_id] = stream
        self.core.call_soon(self._watch_completion, stream)
        return ObjectRefGenerator(completion_ref, stream, self.core)

    def _watch_completion(self, stream: _Stream) -> None:
        self.core.refs.wait_ready(stream.completion_id).add_done_callback(
            lambda _f: self._finish(stream))

    def _finish(self, stream: _Stream) -> None:
        with stream.lock:
            stream.finished = True
            if stream.dropped:
                self.streams.pop(stream.task_id, None)
        stream.wake()

    def generator_item(self, conn, msg: list) -> None:
        """A worker yielded item ``index`` of task ``task_id``, stored at ``location``."""
        task_id, index, location, dynamic = msg
        object_id = object_id_bytes(task_id, index + 1)
        refs = self.core.refs
        if dynamic:
            spec = self.core.submitter.pending.get(task_id)  # None for an actor's method
            if object_id in refs.entries:
                self._known_again(object_id, location)
            else:
                entry = refs.create_ready(object_id, location)
                entry.escaped = True
                if spec is not None:
                    _keep_lineage(entry, spec)
            if spec is not None:
                spec["items_reported"] = max(spec.get("items_reported", 0), index + 1)
            return
        stream = self.streams.get(task_id)
        if stream is None or stream.dropped:
            if object_id in refs.entries:
                self._known_again(object_id, location)
            else:  # nobody will read it: free it at once
                refs.create_ready(object_id, location)
                ObjectRef(object_id, self.core.address)
            conn.notify("generator_consumed", [task_id, index + 1])  # no consumer to wait for
            return
        with stream.lock:
            stream.conn = conn
            duplicate = index < stream.reported
            if duplicate:  # a retried or rebuilding attempt sends what we have again
                self._known_again(object_id, location)
            else:
                entry = refs.create_ready(object_id, location)
                if "actor_id" not in stream.spec:
                    _keep_lineage(entry, stream.spec)
                    stream.spec["items_reported"] = index + 1
                stream.refs.append(ObjectRef(object_id, self.core.address))
                stream.reported = index + 1
            consumed = stream.consumed
        if stream.backpressure:
            conn.notify("generator_consumed", [task_id, consumed])
        if not duplicate:
            stream.wake()

    def drop(self, stream: _Stream) -> None:
        """Its ObjectRefGenerator is gone: free what nobody will read (loop thread)."""
        with stream.lock:
            stream.dropped = True
            refs, stream.refs = stream.refs, collections.deque()
            if stream.finished:
                self.streams.pop(stream.task_id, None)
        refs.clear()

    def consumed(self, stream: _Stream) -> None:
        """Tell the worker how far the consumer got (loop thread; backpressure only)."""
        if stream.conn is not None and not stream.conn.is_closed:
            stream.conn.notify("generator_consumed", [stream.task_id, stream.consumed])

    async def wait_changed(self, stream: _Stream) -> None:
        """Return once ``next()`` on this stream would not block (loop thread)."""
        while True:
            with stream.lock:
                if stream.next_available():
                    return
                fut = self.core.loop.create_future()
                stream.waiters.append(fut)
            await fut

    def _known_again(self, object_id: bytes, location: dict) -> None:
        """An item we know was stored again: by a rebuild (it was lost, or its copy was on
        a node that died: take the new copy) or by a retried attempt (a copy on another
        node is freed with the first)."""
        entry = self.core.refs.entries.get(object_id)
        if entry is None:
            return
        if entry.state != READY or entry.node_id in self.core.recovery.dead_nodes:
            self.core.refs.set_ready(object_id, location)
            return
        address = location.get("node_address")
        if address and address != entry.node_address:
            if entry.copies is None:
                entry.copies = set()
            entry.copies.add(address)


def _keep_lineage(entry, spec: dict) -> None:
    """An item stored in an arena can be rebuilt by running its task again."""
    if entry.node_id is not None:
        entry.lineage = spec
        spec["stored_items"] = True  # see Recovery.keep_lineage


class ObjectRefGenerator:
    """The refs a streaming generator task yields, each as soon as the worker yields it.

    Iterate it (``for ref in gen``, ``next(gen)``, ``async for``); each ref's value is one
    yielded value. If the task fails, the refs yielded so far stay valid, the next one
    raises the task's error on ``get``, and iteration then stops. Made by ``.remote()``;
    it cannot be pickled.
    """

    def __init__(self, generator_ref: ObjectRef, stream: _Stream, core):
        self._generator_ref = generator_ref
        self._stream = stream
        self._core = core
        self._error_returned = False

    def __iter__(self) -> "ObjectRefGenerator":
        return self

    def __next__(self) -> ObjectRef:
        return self._next_sync()

    def __aiter__(self) -> "ObjectRefGenerator":
        return self

    async def __anext__(self) -> ObjectRef:
        return await self._next_async()

    def send(self, value):
        raise NotImplementedError("`gen.send` is not supported.")

    def throw(self, value):
        raise NotImplementedError("`gen.throw` is not supported.")

    def close(self):
        raise NotImplementedError("`gen.close` is not supported.")

    async def asend(self, value):
        raise NotImplementedError("`gen.asend` is not supported.")

    async def athrow(self, value):
        raise NotImplementedError("`gen.athrow` is not supported.")

    async def aclose(self):
        raise NotImplementedError("`gen.aclose` is not supported.")

    def completed(self) -> ObjectRef:
        """A ref that is ready when the task ends; ``get`` on it raises the task's error."""
        return self._generator_ref

    def next_ready(self) -> bool:
        """True if ``next()`` would return a ref at once (not StopIteration)."""
        stream = self._stream
        with stream.lock:
            if stream.refs:
                return True
            return stream.finished and self._has_error_to_return()

    def is_finished(self) -> bool:
        """True once the task has ended and every ref (and its error, if any) was taken."""
        stream = self._stream
        with stream.lock:
            return stream.finished and not stream.refs and not self._has_error_to_return()

    def _has_error_to_return(self) -> bool:
        if self._error_returned:
            return False
        entry = self._core.refs.entries.get(self._stream.completion_id)
        return entry is not None and entry.is_error

    def _next_sync(self, timeout_s: float | None = None) -> ObjectRef:
        """The next ref, waiting up to ``timeout_s`` (None or negative: no limit); returns
        ``ObjectRef.nil()`` if none came in time. Raises StopIteration at the end."""
        if not self._stream.next_available():
            fut = asyncio.run_coroutine_threadsafe(
                self._core.generators.wait_changed(self._stream), self._core.loop)
            timeout_s = None if timeout_s is None or timeout_s < 0 else timeout_s
            with self._core._blocked():
                try:
                    fut.result(timeout_s)
                except concurrent.futures.TimeoutError:
                    fut.cancel()
                    return ObjectRef.nil()
        ref = self._take()
        if ref is None:
            raise StopIteration
        return ref

    async def _next_async(self, timeout_s: float | None = None) -> ObjectRef:
        """As ``_next_sync``, awaiting on the caller's event loop."""
        if not self._stream.next_available():
            fut = asyncio.run_coroutine_threadsafe(
                self._core.generators.wait_changed(self._stream), self._core.loop)
            timeout_s = None if timeout_s is None or timeout_s < 0 else timeout_s
            try:
                await asyncio.wait_for(asyncio.wrap_future(fut), timeout_s)
            except asyncio.TimeoutError:
                return ObjectRef.nil()
        ref = self._take()
        if ref is None:
            raise StopAsyncIteration
        return ref

    def _take(self) -> ObjectRef | None:
        stream = self._stream
        with stream.lock:
            if stream.refs:
                stream.consumed += 1
                ref = stream.refs.popleft()
                if stream.backpressure:
                    self._core.call_soon(self._core.generators.consumed, stream)
                return ref
            if stream.finished and self._has_error_to_return():
                self._error_returned = True
                return self._generator_ref
        return None

    def __del__(self):
        # On the loop, not here: the collector may run this where a lock that dropping the
        # buffered refs takes is held.
        try:
            self._core.call_soon(self._core.generators.drop, self._stream)
        except (RuntimeError, AttributeError):  # the loop is closed: shutdown
            pass

    def __reduce__(self):
        raise TypeError("You cannot return or pass a generator to other task. "
                        "Serializing a ObjectRefGenerator is not allowed.")

    def __repr__(self):
        return f"ObjectRefGenerator({self._generator_ref.hex()})"


def wait(core, waitables: list, num_returns: int, timeout_s: float | None,
         fetch_local: bool) -> tuple[list, list]:
    """``raggio.wait`` over refs and generators: a generator is ready when ``next()`` on it
    would not block (Ray: its next ref is available)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        ready = [w for w in waitables if _is_ready(core, w)][:num_returns]
        remaining = None if deadline is None else deadline - time.monotonic()
        if len(ready) >= num_returns or (remaining is not None and remaining <= 0):
            break
        pending = [w for w in waitables if w not in ready]
        fut = asyncio.run_coroutine_threadsafe(_wait_any(core, pending), core.loop)
        try:
            fut.result(remaining)
        except concurrent.futures.TimeoutError:
            fut.cancel()
    chosen = set(map(id, ready))
    return ready, [w for w in waitables if id(w) not in chosen]


def _is_ready(core, waitable) -> bool:
    if isinstance(waitable, ObjectRefGenerator):
        return waitable._stream.next_available()
    entry = core.refs.entries.get(waitable._id)
    return entry is not None and entry.state == READY


async def _wait_any(core, pending: list) -> None:
    refs = [w for w in pending if isinstance(w, ObjectRef)]
    waits = [asyncio.ensure_future(core.generators.wait_changed(w._stream))
             for w in pending if isinstance(w, ObjectRefGenerator)]
    if refs:
        waits.append(asyncio.ensure_future(core._fetch_many(refs, 1)))
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for fut in waits:
            fut.cancel()


# -- the worker's side --

class ItemReporter:
    """One attempt of a generator task on the worker: store each yielded value, report it to
    the owner, and pause while ``backpressure`` items are unconsumed."""

    def __init__(self, core, spec: dict, conn):
        self.core = core
        self.conn = conn
        self.task_id: bytes = spec["task_id"]
        self.owner_address: str = spec["owner_address"]
        self.dynamic = spec["num_returns"] == DYNAMIC
        self.backpressure: int = spec.get("backpressure") or 0
        self.count = 0  #: items yielded so far
        self.consumed = 0  #: items the owner's consumer took, as last heard
        self._cond = threading.Condition()
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []

    def report(self, value: Any) -> None:
        try:
            serialized = serialize(value)
        except TypeError as exc:
            raise TypeError(f"Could not serialize item {self.count} yielded by a generator "
                            f"task: {exc}") from exc
        object_id = object_id_bytes(self.task_id, self.count + 1)
        self.report_location(self.core.store_serialized(object_id, serialized,
                                                        self.owner_address))

    def report_location(self, location: dict) -> None:
        """Send the next item, stored already (or an error value's inline form)."""
        self.core.call_soon(self.conn.notify, "generator_item",
                            [self.task_id, self.count, location, self.dynamic])
        self.count += 1

    def _full(self) -> bool:
        return (self.backpressure > 0 and self.count - self.consumed >= self.backpressure
                and not self.conn.is_closed)

    def wait_capacity(self) -> None:
        """Block while the owner has ``backpressure`` unconsumed items (interruptible)."""
        with self._cond:
            while self._full():
                self._cond.wait(1.0)  # wakes to notice a closed connection

    async def wait_capacity_async(self) -> None:
        while self._full():
            loop = asyncio.get_running_loop()
            fut = loop.create_future()
            with self._cond:
                if not self._full():
                    return
                self._async_waiters.append((loop, fut))
            try:
                await asyncio.wait_for(fut, 1.0)
            except asyncio.TimeoutError:
                pass

    def on_consumed(self, consumed: int) -> None:
        """The owner's consumer took ``consumed`` items (core loop thread)."""
        with self._cond:
            self.consumed = max(self.consumed, consumed)
            self._cond.notify_all()
            waiters, self._async_waiters = self._async_waiters, []
        for loop, fut in waiters:
            loop.call_soon_threadsafe(_resolve, fut)

    def completion_value(self, owner_address: str) -> Any:
        """The value of the task's own return: None, or the dynamic generator's refs."""
        if not self.dynamic:
            return None
        return DynamicObjectRefGenerator(
            [ObjectRef(object_id_bytes(self.task_id, index + 1), owner_address)
             for index in range(self.count)])


def _resolve(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)
