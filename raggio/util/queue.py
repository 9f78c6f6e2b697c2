"""``raggio.util.queue.Queue``: a first-in, first-out queue held by an actor, as Ray's.

Any task, actor or driver holding the ``Queue`` (it pickles as its actor
handle) puts and gets through the same asyncio actor, so producers and
consumers on different nodes share it. ``Empty`` and ``Full`` are raised as
plain exceptions, as ``queue.Queue`` raises them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from raggio.core import api


class Empty(Exception):
    """``get`` found the queue empty (without blocking, or until its timeout)."""


class Full(Exception):
    """``put`` found the queue full (without blocking, or until its timeout)."""


class Queue:
    """A queue shared through an actor.

    Args:
        maxsize: the most items it holds; 0 for no bound.
        actor_options: options for the queue's actor (``.options(**actor_options)``),
            e.g. ``{"num_cpus": 1}`` or a scheduling strategy.
    """

    def __init__(self, maxsize: int = 0, actor_options: dict | None = None) -> None:
        self.maxsize = maxsize
        self.actor = api.remote(_QueueActor).options(**(actor_options or {})).remote(maxsize)

    def __len__(self) -> int:
        return self.size()

    def size(self) -> int:
        """How many items the queue holds."""
        return api.get(self.actor.qsize.remote())

    def qsize(self) -> int:
        """How many items the queue holds."""
        return self.size()

    def empty(self) -> bool:
        return api.get(self.actor.empty.remote())

    def full(self) -> bool:
        return api.get(self.actor.full.remote())

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Add an item; if the queue is full and ``block``, wait up to ``timeout`` seconds
        (None: until there is room).

        Raises:
            Full: the queue is full (and stayed full until the timeout).
            ValueError: ``timeout`` is negative.
        """
        if not block:
            return self._call(self.actor.put_nowait.remote(item))
        _check_timeout(timeout)
        return self._call(self.actor.put.remote(item, timeout))

    async def put_async(self, item: Any, block: bool = True,
                        timeout: float | None = None) -> None:
        """``put`` for asyncio code: awaits instead of blocking the thread."""
        if not block:
            return await self._call_async(self.actor.put_nowait.remote(item))
        _check_timeout(timeout)
        return await self._call_async(self.actor.put.remote(item, timeout))

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Remove and return the oldest item; if the queue is empty and ``block``, wait up
        to ``timeout`` seconds (None: until there is one).

        Raises:
            Empty: the queue is empty (and stayed empty until the timeout).
            ValueError: ``timeout`` is negative.
        """
        if not block:
            return self._call(self.actor.get_nowait.remote())
        _check_timeout(timeout)
        return self._call(self.actor.get.remote(timeout))

    async def get_async(self, block: bool = True, timeout: float | None = None) -> Any:
        """``get`` for asyncio code: awaits instead of blocking the thread."""
        if not block:
            return await self._call_async(self.actor.get_nowait.remote())
        _check_timeout(timeout)
        return await self._call_async(self.actor.get.remote(timeout))

    def put_nowait(self, item: Any) -> None:
        """``put(item, block=False)``."""
        return self.put(item, block=False)

    def put_nowait_batch(self, items: Iterable) -> None:
        """Add all the items in order, or none of them.

        Raises:
            Full: they do not all fit.
            TypeError: ``items`` is not iterable.
        """
        if not isinstance(items, Iterable):
            raise TypeError("Argument 'items' must be an Iterable")
        self._call(self.actor.put_nowait_batch.remote(list(items)))

    def get_nowait(self) -> Any:
        """``get(block=False)``."""
        return self.get(block=False)

    def get_nowait_batch(self, num_items: int) -> list:
        """Remove and return the ``num_items`` oldest items, or none.

        Raises:
            Empty: the queue holds fewer.
            TypeError, ValueError: ``num_items`` is not a non-negative int.
        """
        if not isinstance(num_items, int):
            raise TypeError("Argument 'num_items' must be an int")
        if num_items < 0:
            raise ValueError("'num_items' must be nonnegative")
        return self._call(self.actor.get_nowait_batch.remote(num_items))

    def shutdown(self, force: bool = False, grace_period_s: int = 5) -> None:
        """End the queue's actor and release its resources.

        Args:
            force: kill the actor at once (calls in flight fail).
            grace_period_s: otherwise, how long to let the calls already sent finish
                before the actor is killed.
        """
        if self.actor is None:
            return
        if not force:
            # Calls run in the order sent: once this one answers, the earlier ones did.
            api.wait([self.actor.qsize.remote()], timeout=grace_period_s)
        api.kill(self.actor, no_restart=True)
        self.actor = None

    @staticmethod
    def _call(ref) -> Any:
        try:
            return api.get(ref)
        except (Empty, Full) as exc:  # the actor's error: raise it plain, as queue.Queue
            raise _plain(exc) from None

    @staticmethod
    async def _call_async(ref) -> Any:
        try:
            return await ref
        except (Empty, Full) as exc:
            raise _plain(exc) from None


def _plain(exc: Exception) -> Exception:
    """Empty or Full with the error's message, without the RayTaskError it also is."""
    return (Empty if isinstance(exc, Empty) else Full)(*exc.args)


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and timeout < 0:
        raise ValueError("'timeout' must be a non-negative number")


class _QueueActor:
    """The actor behind a Queue: an asyncio.Queue, so blocked puts and gets wait
    side by side without holding up the other calls."""

    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self.queue: asyncio.Queue = asyncio.Queue(maxsize)

    def qsize(self) -> int:
        return self.queue.qsize()

    def empty(self) -> bool:
        return self.queue.empty()

    def full(self) -> bool:
        return self.queue.full()

    async def put(self, item: Any, timeout: float | None = None) -> None:
        try:
            await asyncio.wait_for(self.queue.put(item), timeout)
        except asyncio.TimeoutError:
            raise Full from None

    async def get(self, timeout: float | None = None) -> Any:
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except asyncio.TimeoutError:
            raise Empty from None

    def put_nowait(self, item: Any) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            raise Full from None

    def put_nowait_batch(self, items: list) -> None:
        if self.maxsize > 0 and len(items) + self.qsize() > self.maxsize:
            raise Full(f"Cannot add {len(items)} items to queue of size {self.qsize()} "
                       f"and maxsize {self.maxsize}.")
        for item in items:
            self.queue.put_nowait(item)

    def get_nowait(self) -> Any:
        try:
            return self.queue.get_nowait()
        except asyncio.QueueEmpty:
            raise Empty from None

    def get_nowait_batch(self, num_items: int) -> list:
        if num_items > self.qsize():
            raise Empty(f"Cannot get {num_items} items from queue of size {self.qsize()}.")
        return [self.queue.get_nowait() for _ in range(num_items)]
