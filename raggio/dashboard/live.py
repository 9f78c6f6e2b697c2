"""Live updates for the web UI: server-sent events saying what changed in the cluster.

``GET /api/ui/events`` is an event stream (``text/event-stream``). Its events:

- ``changed``: ``{"topics": [...]}``, the tables that changed since the last one
  (``nodes``, ``actors``, ``jobs``, ``tasks``, ``placement_groups``); a page refetches
  what it shows when one of its topics is there.
- ``status``: ``{"available": bool, "message": str}``, whether the control store answers;
  sent on connecting and whenever it changes (the page shows a banner while it does not).

One ``Poller`` per dashboard process, not per client, asks the control store a few cheap
questions every ``POLL_PERIOD_S`` while at least one page listens, and none at all while
nobody does: the dashboard costs an idle cluster nothing. Each round compares fingerprints
of the tables with the last round's. A round that takes long (a big task history) spaces
the next ones out, so that watching never costs the control store more than about
1/``MAX_LOAD_FACTOR`` of its time.
"""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web

from raggio.dashboard.control_store import ControlStore, Unavailable
from raggio.dashboard.routing import STORE

logger = logging.getLogger(__name__)

POLL_PERIOD_S = 1.0
#: A round may take at most 1/this of the time between rounds.
MAX_LOAD_FACTOR = 20
#: How long one poll waits for the control store: shorter than a route's, so that the
#: banner comes up within seconds of the control store stopping.
POLL_TIMEOUT_S = 3.0
#: A comment line this often keeps proxies and the browser from closing an idle stream.
KEEPALIVE_S = 15.0
#: How long the browser waits before reconnecting a dropped stream (the SSE ``retry:``).
RECONNECT_MS = 2000
#: Events queued for a client that does not read them before it is dropped.
MAX_QUEUED = 100
TOPICS = ("nodes", "actors", "jobs", "placement_groups", "tasks")


def _fingerprints(nodes: list, actors: list, jobs: list, groups: dict, tasks: dict) -> dict:
    """A hashable summary per topic: it changes when what a page shows of it changes."""
    return {
        "nodes": tuple((n["node_id"], n["state"], tuple(sorted((n.get("available") or {})
                                                               .items())),
                        n.get("object_store_used", 0), len(n.get("demand") or ()))
                       for n in nodes),
        "actors": tuple((a["actor_id"], a["state"], a["num_restarts"], a["pid"])
                        for a in actors),
        "jobs": tuple((j["job_id"], j["is_dead"]) for j in jobs),
        "placement_groups": tuple((pg_id, g["state"], tuple(sorted(g["bundles_to_node_id"]
                                                                  .items())))
                                  for pg_id, g in sorted(groups.items())),
        "tasks": (tasks["total"], tasks["dropped"],
                  tuple(sorted(tasks["state_counts"].items()))),
    }


class Poller:
    """See the module docstring. ``subscribe()`` a queue of ``(event, data)`` pairs."""

    def __init__(self, store: ControlStore, period_s: float = POLL_PERIOD_S):
        self._store = store
        self._period_s = period_s
        self._queues: set[asyncio.Queue] = set()
        self._task: asyncio.Task | None = None
        self._fingerprints: dict = {}
        self.status = {"available": True, "message": ""}

    def subscribe(self) -> asyncio.Queue:
        """A queue of this client's events, starting with the current status."""
        queue: asyncio.Queue = asyncio.Queue(MAX_QUEUED)
        queue.put_nowait(("status", self.status))
        self._queues.add(queue)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self._queues.discard(queue)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def _publish(self, event: str, data: dict) -> None:
        for queue in self._queues:
            try:
                queue.put_nowait((event, data))
            except asyncio.QueueFull:  # a client behind: it refetches everything instead
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(("status", self.status))
                queue.put_nowait(("changed", {"topics": list(TOPICS)}))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queues:
            started = loop.time()
            answered = await self.poll_once()
            took = loop.time() - started
            # An unanswered round waited for its timeout: no reason to wait longer still.
            spacing = max(self._period_s, took * MAX_LOAD_FACTOR) if answered else 0.0
            await asyncio.sleep(max(self._period_s, spacing - took))

    async def poll_once(self) -> bool:
        """One round: ask, compare, publish what changed (and the status, if it did);
        whether the control store answered."""
        call = self._store.call
        try:
            replies = await asyncio.gather(
                call("get_nodes", None, POLL_TIMEOUT_S), call("list_actors", None, POLL_TIMEOUT_S),
                call("get_jobs", None, POLL_TIMEOUT_S),
                call("placement_group_table", None, POLL_TIMEOUT_S),
                call("task_page", {"limit": 0}, POLL_TIMEOUT_S))
        except Unavailable as exc:
            self._set_status(False, f"{str(exc).rstrip('.')}. The cluster may be restarting; "
                             "this page recovers when it is back.")
            return False
        self._set_status(True, "")
        fingerprints = _fingerprints(*replies)
        changed = [topic for topic, value in fingerprints.items()
                   if self._fingerprints.get(topic) != value]
        if self._fingerprints and changed:
            self._publish("changed", {"topics": changed})
        self._fingerprints = fingerprints
        return True

    def _set_status(self, available: bool, message: str) -> None:
        if available != self.status["available"]:
            logger.warning("the control store %s", "answers again" if available else
                           f"does not answer: {message}")
            self.status = {"available": available, "message": message}
            self._publish("status", self.status)
            if available:  # everything may have changed while it was away
                self._fingerprints = {}


#: The process's poller: ``request.app[POLLER]``.
POLLER = web.AppKey("poller", Poller)


async def poller_context(app: web.Application):
    """The app's cleanup context: one poller for the process, closed with the app."""
    app[POLLER] = Poller(app[STORE])
    yield
    await app[POLLER].close()


def _frame(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


async def events(request: web.Request) -> web.StreamResponse:
    poller = request.app[POLLER]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    queue = poller.subscribe()
    try:
        await response.write(f"retry: {RECONNECT_MS}\n\n".encode())
        while True:
            try:
                event, data = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except asyncio.TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            await response.write(_frame(event, data))
    except (ConnectionResetError, ConnectionError):
        pass  # the page was closed
    finally:
        poller.unsubscribe(queue)
    return response


def routes() -> list[web.RouteDef]:
    return [web.get("/api/ui/events", events)]
