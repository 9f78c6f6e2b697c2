"""Recording task state changes in a driver or worker, for the control store's task history.

The process that submits a task records what it sees of each attempt:
submitted and waiting for its arguments (``PENDING_ARGS_AVAIL``) or for a
worker (``PENDING_NODE_ASSIGNMENT``), pushed to a worker
(``SUBMITTED_TO_WORKER``), and ``FINISHED`` or ``FAILED`` with the error. The
worker's reply says when the attempt began ``RUNNING``; a worker also
reports, on its own, the attempts that have run for an interval, so a long
task shows as RUNNING while it runs. A retried task gets
a record per attempt, as in Ray.

Submission is the hot path, so an attempt is one flat list (``R_*`` in
``common/task_records.py``) that its events extend; what a task is (name,
type, resources) is stored once per function or actor method and referred
to by number. Every
``task_events_report_interval_s`` the loop sends the control store
(``add_task_events``) the attempts that ended, and those that changed and
are an interval old (most attempts end sooner: they are sent once). While
the control store is away, at most ``task_events_max_buffer`` ended attempts
wait; older ones are dropped and the drop is counted.
"""

from __future__ import annotations

import collections
import os
import threading
import time

from raggio.common.states import FAILED, PENDING_NODE_ASSIGNMENT, RUNNING
from raggio.common.task_records import R_ERROR, R_EVENTS, R_INFO, R_PARENT, R_SENT, R_WHERE

#: Ray's error_type of a failed task, by the exception that failed it.
_ERROR_TYPES = {
    "WorkerCrashedError": "WORKER_DIED", "OutOfMemoryError": "OUT_OF_MEMORY",
    "TaskCancelledError": "TASK_CANCELLED", "TaskUnschedulableError": "TASK_UNSCHEDULABLE_ERROR",
    "ActorDiedError": "ACTOR_DIED", "RayActorError": "ACTOR_DIED",
    "ActorUnavailableError": "ACTOR_UNAVAILABLE", "NodeDiedError": "NODE_DIED",
    "TaskPlacementGroupRemoved": "TASK_PLACEMENT_GROUP_REMOVED",
    "ObjectStoreFullError": "OBJECT_STORE_FULL", "RuntimeEnvSetupError": "RUNTIME_ENV_SETUP_FAILED",
}
#: Error messages are cut to this many characters (the whole error reaches ``get``).
MAX_ERROR_MESSAGE = 5000


def error_summary(exc: BaseException) -> list[str]:
    """``[error_type, message]`` of a failed attempt, in Ray's terms."""
    name = type(exc).__name__
    message = str(exc) if name.startswith("RayTaskError") else f"{name}: {exc}"
    return [_ERROR_TYPES.get(name, "TASK_EXECUTION_EXCEPTION"), message[:MAX_ERROR_MESSAGE]]


class TaskEvents:
    """This process's task records; see the module docstring."""

    def __init__(self, core):
        self._core = core
        self.enabled = core.cfg.task_events_report_interval_s > 0
        self._open: dict[bytes, list] = {}  #: task id -> its current attempt's record
        self._ended: collections.deque = collections.deque(
            maxlen=core.cfg.task_events_max_buffer)
        self._dropped = 0
        self._infos = _Table()  #: what each task is
        self._wheres = _Table()  #: the workers that ran them
        self._running: dict[bytes, list] = {}  #: attempts running here: [attempt, start, reported]

    def start(self) -> None:
        """Send what was recorded every interval (loop thread, once connected)."""
        if self.enabled:
            self._core.loop.call_later(self._core.cfg.task_events_report_interval_s, self._tick)
            self._core.gcs.on_reconnect.append(self._resend_infos)

    async def _resend_infos(self) -> None:
        self._infos.sent = self._wheres.sent = 0  # a restarted control store has none of them

    def info_id(self, key, make) -> int:
        """The number of the info ``make()`` builds, built once per ``key`` (any thread)."""
        return self._infos.number(key, make)

    def where_id(self, node_id: bytes, worker_id: bytes, pid: int) -> int:
        """The number of a worker's ``[node id, worker id, pid]``."""
        return self._wheres.number(worker_id, lambda: [node_id, worker_id, pid])

    # -- the submitter's side --

    def submitted(self, task_id: bytes, attempt: int, info_id: int | None, state: int,
                  parent: bytes | None = None, arg_ids: list | None = None) -> None:
        """A new attempt, waiting for its arguments or for a worker (any thread)."""
        if self.enabled:
            self._open[task_id] = [task_id, attempt, info_id, parent, arg_ids, None, None, 0,
                                   state, time.time()]

    def update(self, task_id: bytes, state: int) -> None:
        record = self._open.get(task_id)
        if record is not None:
            record += (state, time.time())

    def ended(self, task_id: bytes, state: int, error: list | None = None,
              started: float | None = None, where: int | None = None) -> None:
        """The attempt finished or failed; ``started`` (from the worker's reply) and ``where``
        (``where_id``) say when and where it ran."""
        record = self._open.pop(task_id, None)
        if record is None:
            return
        if started is not None:
            record += (RUNNING, started)
        if where is not None:
            record[R_WHERE] = where
        record += (state, time.time())
        record[R_ERROR] = error
        if len(self._ended) == self._ended.maxlen:
            self._dropped += 1  # the deque drops its oldest to take this one
        self._ended.append(record)

    def next_attempt(self, spec: dict, error: list, started: float | None = None,
                     where: int | None = None) -> None:
        """End the task's current attempt as failed with ``error`` and open the next one,
        waiting for a worker; ``spec["attempt"]`` (which its worker reports) counts on."""
        record = self._open.get(spec["task_id"])
        self.ended(spec["task_id"], FAILED, error, started, where)
        spec["attempt"] = spec.get("attempt", 0) + 1
        self.submitted(spec["task_id"], spec["attempt"], record and record[R_INFO],
                       PENDING_NODE_ASSIGNMENT, record and record[R_PARENT])

    # -- the worker's side --

    def running(self, task_id: bytes, attempt: int) -> float:
        """An attempt starts here (any thread); the start time goes back in the reply."""
        now = time.time()
        if self.enabled:
            self._running[task_id] = [attempt, now, False]
        return now

    def done_running(self, task_id: bytes) -> None:
        self._running.pop(task_id, None)

    # -- sending --

    def _tick(self) -> None:
        try:
            self.flush()
        finally:
            if not self._core.gcs.is_closed:
                self._core.loop.call_later(self._core.cfg.task_events_report_interval_s,
                                           self._tick)

    def flush(self) -> None:
        """Send the control store what changed since the last time (loop thread)."""
        gcs = self._core.gcs
        if not self.enabled or gcs is None or not gcs.connected:
            return  # kept (up to the buffer's size) until it is back
        ended = self._ended
        records = [ended.popleft() for _ in range(len(ended))]
        # An attempt still open goes once it is an interval old, so the many that end within
        # an interval of their submission are sent once, ended.
        settled = time.time() - self._core.cfg.task_events_report_interval_s
        for record in list(self._open.values()):
            if record[R_SENT] != len(record) and record[R_EVENTS + 1] < settled:
                record[R_SENT] = len(record)
                records.append(record)
        running = []
        for task_id, entry in list(self._running.items()):
            if not entry[2] and entry[1] < settled:
                entry[2] = True
                running.append([task_id, entry[0], entry[1]])
        infos, wheres = self._infos, self._wheres
        if not (records or running or self._dropped or infos.unsent() or wheres.unsent()):
            return
        gcs.notify("add_task_events", {
            "tasks": records, "running": running, "infos": infos.unsent(),
            "infos_from": infos.sent, "wheres": wheres.unsent(), "wheres_from": wheres.sent,
            "dropped": self._dropped,
            "where": [self._core.node_id, self._core.worker_id, os.getpid()]})
        infos.sent, wheres.sent = len(infos.values), len(wheres.values)
        self._dropped = 0


class _Table:
    """Values numbered in the order they were first asked for; the control store is sent
    the new ones with each report."""

    def __init__(self):
        self.values: list = []
        self._numbers: dict = {}
        self._lock = threading.Lock()  #: for a new key: user threads may ask at once
        self.sent = 0  #: how many the control store has

    def number(self, key, make) -> int:
        found = self._numbers.get(key)
        if found is None:
            with self._lock:
                found = self._numbers.get(key)
                if found is None:
                    self.values.append(make())
                    found = self._numbers[key] = len(self.values) - 1
        return found

    def unsent(self) -> list:
        return self.values[self.sent:]
