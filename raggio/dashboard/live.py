"""Live updates for the web UI: server-sent events saying what changed in the cluster.

``GET /api/ui/events`` is an event stream (``text/event-stream``). Its events:

- ``changed``: ``{"topics": [...]}``, the tables that changed since the last one
  (``nodes``, ``actors``, ``jobs``, ``tasks``, ``placement_groups``), or ``metrics``
  when the metric history (``metrics_history.py``) has a new round; a page refetches
  what it shows when one of its topics is there.
- ``status``: ``{"available": bool, "message": str}``, whether the control store answers;
  sent on connecting and whenever it changes (the page shows a banner while it does not).

One ``Poller`` per dashboard process, not per client, asks the control store for its
change counters (``table_versions``, a few numbers whatever the cluster's size) every
``POLL_PERIOD_S`` while at least one page listens, and nothing at all while nobody does:
the dashboard costs an idle cluster nothing. A topic changed when its counter did (all of
them when the control store restarted). A round that fails otherwise than by the control
store not answering is logged, and the next one runs as usual.
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
#: How long one poll waits for the control store: shorter than a route's, so that the
#: banner comes up within seconds of the control store stopping.
POLL_TIMEOUT_S = 3.0
#: A comment line this often keeps proxies and the browser from closing an idle stream.
KEEPALIVE_S = 15.0
#: How long the browser waits before reconnecting a dropped stream (the SSE ``retry:``).
RECONNECT_MS = 2000
#: Events queued for a client that does not read them before it is dropped.
MAX_QUEUED = 100
TOPICS = ("nodes", "actors", "jobs", "placement_groups", "tasks", "autoscaler")


class Poller:
    """See the module docstring. ``subscribe()`` a queue of ``(event, data)`` pairs."""

    def __init__(self, store: ControlStore, period_s: float = POLL_PERIOD_S):
        self._store = store
        self._period_s = period_s
        self._queues: set[asyncio.Queue] = set()
        self._task: asyncio.Task | None = None
        #: The last answer of ``table_versions``; empty until the first.
        self._versions: dict = {}
        self._failing = False  #: whether the last round failed (it was logged then)
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
            await asyncio.gather(self._task, return_exceptions=True)

    def announce(self, topics) -> None:
        """Tell the pages listening that ``topics`` changed: news that is not in the
        control store's counters (a new round of the metric history)."""
        self._publish("changed", {"topics": list(topics)})

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
        while self._queues:
            try:
                await self.poll_once()
                self._failing = False
            except Exception:  # a bug, or a reply it cannot read: the pages keep their stream
                if not self._failing:
                    logger.exception("a round of live updates failed; the next ones go on "
                                     "(logged again once one succeeds)")
                self._failing = True
            await asyncio.sleep(self._period_s)

    async def poll_once(self) -> bool:
        """One round: ask, compare, publish what changed (and the status, if it did);
        whether the control store answered."""
        try:
            versions = await self._store.call("table_versions", None, POLL_TIMEOUT_S)
        except Unavailable as exc:
            self._set_status(False, f"{str(exc).rstrip('.')}. The cluster may be restarting; "
                             "this page recovers when it is back.")
            return False
        self._set_status(True, "")
        if self._versions.get("epoch") != versions["epoch"]:  # the first round, or a restart
            changed = list(TOPICS) if self._versions else []
        else:
            changed = [topic for topic in TOPICS if self._versions[topic] != versions[topic]]
        if changed:
            self._publish("changed", {"topics": changed})
        self._versions = versions
        return True

    def _set_status(self, available: bool, message: str) -> None:
        if available != self.status["available"]:
            logger.warning("the control store %s", "answers again" if available else
                           f"does not answer: {message}")
            self.status = {"available": available, "message": message}
            self._publish("status", self.status)


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
