"""Asking node managers for a worker lease: follow spillbacks, retry when a node dies.

The core worker's task submitter (for a task shape) and the control store (for
an actor) both ask a node manager for a worker with ``request_worker_lease``.
The node answers with a grant, an ``error``, or a ``spillback`` to another node;
that node is asked next, told the request was ``spilled`` (it then grants the
lease if it fits, else sends it on only to a node with room now). A node that
goes away while it holds the request, or cannot be reached, sends the request
back to its caller's first choice. ``request_lease`` does that dance once for
both callers; they differ only in where they start and how they reach a node.

Why the time limit covers failures only: a node may hold a request for as long
as the cluster is busy (hours, on a full cluster), and a task or actor waiting
for resources must not fail, as in Ray. What can loop for ever is the retrying:
a node that spills to a node that has died, until its view of the cluster drops
that node; a node that fails every request. So ``retry_timeout_s`` bounds the
time spent between node answers: connecting to the node a spillback names and
the pause after each failure, added up over the request. The time a node holds
the request (the call is in flight) does not count, nor does waiting for any
node to exist at all (nothing fits then: the request waits, as for resources).
A node that stops answering without its connection closing is the health
checker's to find, not this module's.

No I/O of its own: it uses the connections its callers give it.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from raggio.exceptions import RpcError

#: How long to wait after a failed attempt (the dead node leaves the views meanwhile), and
#: between looks for a node to ask while there is none.
RETRY_DELAY_S = 0.1


async def request_lease(payload: dict, *,
                        pick: Callable[[], tuple[object | None, bool]],
                        reach: Callable[[dict], Awaitable[object]],
                        retry_timeout_s: float,
                        local_node: object = None) -> tuple[object, dict]:
    """Ask for a lease until a node grants it or refuses it for good.

    Args:
        payload: The ``request_worker_lease`` message, less ``spilled``.
        pick: The node to ask first, and again after a failure: ``(connection, spilled)``,
            ``spilled`` when the caller's policy placed the request there (the node then
            grants it if it fits); ``(None, False)`` while there is no node to ask.
        reach: The connection to the node a ``spillback`` reply names; raises RpcError
            if that node cannot be reached (it has left the cluster).
        retry_timeout_s: How long, added up, failed attempts may take (see the module
            docstring): the caller's ``Config.lease_retry_timeout_s``.
        local_node: A connection whose failure ends the request at once (a core worker
            cannot go on without its own node manager).

    Returns:
        The connection to the node that answered, and its answer: a grant, or ``{"error":
        reason}`` when the request can never be placed (the caller raises its own error).

    Raises:
        RpcError: ``local_node`` failed, or failed attempts took ``retry_timeout_s``.
    """
    loop = asyncio.get_running_loop()
    retrying_s = 0.0
    conn, spilled = None, False
    while True:
        if conn is None:
            conn, spilled = pick()
            if conn is None:
                await asyncio.sleep(RETRY_DELAY_S)
                continue
        try:
            reply = await conn.call("request_worker_lease", dict(payload, spilled=spilled))
        except RpcError as exc:
            if conn is local_node:
                raise
            failure = exc
        else:
            if "spillback" not in reply:
                return conn, reply
            started = loop.time()
            try:
                conn, spilled = await reach(reply), True
                failure = None
            except RpcError as exc:
                failure = exc
            retrying_s += loop.time() - started
            if failure is None:
                continue
        conn = None
        if retrying_s >= retry_timeout_s:
            raise RpcError(
                f"Gave up asking for a worker for {_what(payload)}: failed attempts to reach "
                f"a node manager that would hold the request took {retrying_s:.1f} s (last: "
                f"{failure}). Nodes may be leaving the cluster; "
                "RAGGIO_LEASE_RETRY_TIMEOUT_S sets how long to keep trying.")
        started = loop.time()
        await asyncio.sleep(RETRY_DELAY_S)  # let the dead node leave the views
        retrying_s += loop.time() - started


def _what(payload: dict) -> str:
    who = f"actor {payload['for_actor']}" if payload.get("for_actor") else "a task"
    return f"{who} needing {payload['resources']}"
