"""``raggio.util.as_completed`` and ``map_unordered``: results in the order they finish.

Ray's helpers (``ray.util.helpers``) over ``wait``: instead of ``get`` on
each ref in turn, wait for a batch of ``chunk_size`` ready refs and yield
those, so a slow task does not hold back the ones behind it.
``map_unordered`` also keeps at most ``backpressure_size`` tasks in flight.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Sequence

from raggio.core import api

DEFAULT_CHUNK_SIZE = 10
DEFAULT_BACKPRESSURE_SIZE = 100


def _next_batch(refs: list, chunk_size: int, yield_obj_refs: bool,
                wait_kwargs: dict) -> tuple[list, list]:
    """(the results, or refs, of a batch that is ready; the refs still pending)."""
    ready, pending = api.wait(refs, num_returns=min(chunk_size, len(refs)), **wait_kwargs)
    return (ready if yield_obj_refs else api.get(ready)), pending


def _check(chunk_size: int, wait_kwargs: dict) -> None:
    if chunk_size < 1:
        raise ValueError("`chunk_size` must be >= 1")
    if "num_returns" in wait_kwargs:
        raise ValueError("Use the `chunk_size` argument instead of `num_returns`.")


def as_completed(refs: Sequence, *, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 yield_obj_refs: bool = False, **kwargs) -> Iterator[Any]:
    """Yield the results of ``refs`` as batches of them become ready.

    Args:
        refs: object refs.
        chunk_size: how many ready refs to wait for at a time (``wait``'s num_returns).
        yield_obj_refs: yield the ready refs instead of their values.
        **kwargs: more arguments of ``wait`` (``timeout``, ``fetch_local``).

    Raises:
        ValueError: ``chunk_size`` below 1, or ``num_returns`` given.
    """
    _check(chunk_size, kwargs)
    pending = list(refs)
    while pending:
        results, pending = _next_batch(pending, chunk_size, yield_obj_refs, kwargs)
        yield from results


def map_unordered(fn, items: Iterable, *,
                  backpressure_size: int | None = DEFAULT_BACKPRESSURE_SIZE,
                  chunk_size: int = DEFAULT_CHUNK_SIZE, yield_obj_refs: bool = False,
                  **kwargs) -> Iterator[Any]:
    """Yield ``fn.remote(item)``'s results for each item, in the order they finish.

    Args:
        fn: a remote function of one argument.
        items: its arguments.
        backpressure_size: the most tasks in flight before waiting for a batch (None:
            no limit).
        chunk_size, yield_obj_refs, **kwargs: as ``as_completed``.

    Raises:
        ValueError: ``backpressure_size`` not positive, ``chunk_size`` below 1, or
            ``num_returns`` given.
    """
    if backpressure_size is not None and backpressure_size <= 0:
        raise ValueError("backpressure_size must be positive.")
    _check(chunk_size, kwargs)
    limit = float("inf") if backpressure_size is None else backpressure_size
    pending: list = []
    for item in items:
        pending.append(fn.remote(item))
        if len(pending) >= limit:
            results, pending = _next_batch(pending, chunk_size, yield_obj_refs, kwargs)
            yield from results
    yield from as_completed(pending, chunk_size=chunk_size, yield_obj_refs=yield_obj_refs,
                            **kwargs)
