"""Waiting for an ``asyncio.Event`` with a time limit, in loops that are stopped by cancel.

``asyncio.wait_for(event.wait(), t)`` on Python 3.10 and 3.11 can swallow a
cancel that arrives in the loop iteration where the event is set: the
waiter returns normally, and a ``while True`` loop around it runs on, so
the ``close()`` that cancelled it and awaits it never returns (seen: a
control store stopped while nodes re-registered after its restart hung in
its placement-group loop). ``asyncio.wait`` lets the cancel through.
"""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout_s: float | None) -> bool:
    """Wait until ``event`` is set or ``timeout_s`` passed (None: no limit); True if set."""
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait([waiter], timeout=timeout_s)
    finally:
        waiter.cancel()
    return event.is_set()
