"""``raggio.util.ActorPool``: spread work over a fixed set of actors, as Ray's.

A submission goes to an idle actor (or waits for one); the actor counts as
busy until the result of its call has been taken with ``get_next`` (in
submission order) or ``get_next_unordered`` (whichever is ready first).
Plain bookkeeping over ``raggio.wait``/``raggio.get``, on the caller's thread.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

from raggio.core import api
from raggio.exceptions import ActorDiedError

_TIMEOUT_MESSAGE = "Timed out waiting for result"


def _key(future):
    # A function may answer several refs (a list); a list cannot be a dict key.
    return tuple(future) if isinstance(future, list) else future


class ActorPool:
    """Runs ``fn(actor, value)`` calls on a pool of actors.

    Args:
        actors: the actor handles the pool uses.

    Example::

        pool = ActorPool([Doubler.remote(), Doubler.remote()])
        list(pool.map(lambda a, v: a.double.remote(v), [1, 2, 3, 4]))  # [2, 4, 6, 8]
    """

    def __init__(self, actors: list):
        self._idle_actors = list(actors)
        #: a submitted call's ref(s) -> (its submission index, the actor running it)
        self._future_to_actor: dict[Any, tuple[int, Any]] = {}
        self._index_to_future: dict[int, Any] = {}
        self._next_task_index = 0
        self._next_return_index = 0
        #: (fn, value) submissions waiting for an idle actor
        self._pending_submits: list[tuple[Callable, Any]] = []

    def map(self, fn: Callable, values: Iterable) -> Iterator:
        """Results of ``fn(actor, value)`` for each value, in order, as they finish.

        Results of earlier submissions not yet taken are dropped first.
        """
        self._drop_pending_results(self.get_next)
        for value in values:
            self.submit(fn, value)

        def results():
            while self.has_next():
                yield self.get_next()
        return results()

    def map_unordered(self, fn: Callable, values: Iterable) -> Iterator:
        """As ``map``, but each result as soon as it is ready, in any order."""
        self._drop_pending_results(self.get_next_unordered)
        for value in values:
            self.submit(fn, value)

        def results():
            while self.has_next():
                yield self.get_next_unordered()
        return results()

    def _drop_pending_results(self, get_next: Callable) -> None:
        while self.has_next():
            try:
                get_next(timeout=0, ignore_if_timedout=True)
            except TimeoutError:
                pass

    def submit(self, fn: Callable, value: Any) -> None:
        """Run ``fn(actor, value)`` (which returns a ref) on an idle actor, or once one is."""
        if not self._idle_actors:
            self._pending_submits.append((fn, value))
            return
        actor = self._idle_actors.pop()
        future = fn(actor, value)
        self._future_to_actor[_key(future)] = (self._next_task_index, actor)
        self._index_to_future[self._next_task_index] = future
        self._next_task_index += 1

    def has_next(self) -> bool:
        """Whether any submitted result has not been taken yet."""
        return bool(self._future_to_actor)

    def get_next(self, timeout: float | None = None, ignore_if_timedout: bool = False) -> Any:
        """The next result in submission order, waiting up to ``timeout`` seconds.

        Raises:
            StopIteration: nothing is pending.
            ValueError: ``get_next_unordered`` already took results out of order.
            TimeoutError: not ready in time (with ``ignore_if_timedout``, the call is
                dropped first and its actor made idle again).
        """
        if not self.has_next():
            raise StopIteration("No more results to get")
        if self._next_return_index >= self._next_task_index:
            raise ValueError("It is not allowed to call get_next() after "
                             "get_next_unordered().")
        future = self._index_to_future[self._next_return_index]
        timed_out = False
        if timeout is not None:
            ready, _ = api.wait(_as_list(future), num_returns=len(_as_list(future)),
                                timeout=timeout)
            if not ready:
                if not ignore_if_timedout:
                    raise TimeoutError(_TIMEOUT_MESSAGE)
                timed_out = True
        del self._index_to_future[self._next_return_index]
        self._next_return_index += 1
        _, actor = self._future_to_actor.pop(_key(future))
        if timed_out:
            self._return_actor(actor)
            raise TimeoutError(f"{_TIMEOUT_MESSAGE}. The task {future} has been ignored.")
        return self._take_result(future, actor)

    def get_next_unordered(self, timeout: float | None = None,
                           ignore_if_timedout: bool = False) -> Any:
        """Whichever pending result is ready first, waiting up to ``timeout`` seconds.

        Raises:
            StopIteration: nothing is pending.
            TimeoutError: none ready in time (with ``ignore_if_timedout``, one pending call
                is dropped first and its actor made idle again).
        """
        if not self.has_next():
            raise StopIteration("No more results to get")
        refs = {}
        for key in self._future_to_actor:
            for ref in (key if isinstance(key, tuple) else (key,)):
                refs[ref] = key
        ready, _ = api.wait(list(refs), num_returns=1, timeout=timeout)
        if ready:
            key = refs[ready[0]]
        elif ignore_if_timedout:
            key = next(iter(self._future_to_actor))
        else:
            raise TimeoutError(_TIMEOUT_MESSAGE)
        index, actor = self._future_to_actor.pop(key)
        future = self._index_to_future.pop(index)
        self._next_return_index = max(self._next_return_index, index + 1)
        if not ready:
            self._return_actor(actor)
            raise TimeoutError(f"{_TIMEOUT_MESSAGE}. The task {future} has been ignored.")
        return self._take_result(future, actor)

    def _take_result(self, future, actor) -> Any:
        alive = True
        try:
            return api.get(future)
        except ActorDiedError:
            alive = False  # a dead actor is not handed new work
            raise
        finally:
            self._return_actor(actor, alive)

    def _return_actor(self, actor, alive: bool = True) -> None:
        if alive:
            self._idle_actors.append(actor)
        if self._pending_submits and self._idle_actors:
            self.submit(*self._pending_submits.pop(0))

    def has_free(self) -> bool:
        """Whether an actor is idle and no submission waits for one."""
        return bool(self._idle_actors) and not self._pending_submits

    def pop_idle(self):
        """Take an idle actor out of the pool; None if none is free."""
        return self._idle_actors.pop() if self.has_free() else None

    def push(self, actor) -> None:
        """Add an actor to the pool (it may start on a waiting submission at once).

        Raises:
            ValueError: the actor is already in the pool.
        """
        busy = [busy_actor for _, busy_actor in self._future_to_actor.values()]
        if actor in self._idle_actors or actor in busy:
            raise ValueError("Actor already belongs to current ActorPool")
        self._return_actor(actor)


def _as_list(future) -> list:
    return list(future) if isinstance(future, list) else [future]
