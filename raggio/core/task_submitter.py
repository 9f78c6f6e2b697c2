"""Submitting normal tasks: dependencies, worker leases, pushing, retries.

Runs on the core worker's loop. A task waits for the objects it depends on
(owned ones; small ready values are inlined into the spec), then joins the
queue of its shape (resources + runtime env). Each shape leases workers from
the local node manager, pushes tasks straight to them, reuses a lease while
the queue has work and returns it after ``lease_linger_s`` idle. A worker
that dies fails its task with WorkerCrashedError once ``max_retries`` is
spent; application errors are retried only with ``retry_exceptions``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import sys
from dataclasses import dataclass, field

import msgpack

from raggio.common.leasing import request_lease
from raggio.common.runtime_env import env_key
from raggio.common.states import FAILED, FINISHED, PENDING_NODE_ASSIGNMENT, SUBMITTED_TO_WORKER
from raggio.core.serialization import error_location
from raggio.core.task_events import error_summary
from raggio.exceptions import (OutOfMemoryError, RpcError, RuntimeEnvSetupError,
                               TaskCancelledError, TaskUnschedulableError, WorkerCrashedError)

logger = logging.getLogger(__name__)

#: How long a task whose worker died waits for its node to say why (see
#: ``_fail_once_the_node_spoke``); the node answers in a round trip unless it is gone too.
_WHY_WORKER_DIED_WAIT_S = 5.0


@dataclass
class LeasedWorker:
    lease_id: int
    conn: object  #: to the worker
    node: object  #: to the node manager that granted the lease
    worker_id: bytes
    where: int  #: the number of its [node id, worker id, pid] in the task history
    gpu_ids: list = field(default_factory=list)
    inflight: int = 0
    linger: asyncio.TimerHandle | None = None


@dataclass
class ShapeQueue:
    key: bytes
    resources: dict
    runtime_env: dict
    strategy: object
    tasks: collections.deque = field(default_factory=collections.deque)
    workers: list = field(default_factory=list)
    lease_requests: int = 0


class TaskSubmitter:
    """See the module docstring."""

    def __init__(self, core):
        self.core = core
        self.queues: dict[bytes, ShapeQueue] = {}
        self.inflight: dict[bytes, tuple[dict, LeasedWorker]] = {}  #: task_id -> (spec, worker)
        self.pending: dict[bytes, dict] = {}  #: every submitted task not finished yet
        #: Tasks waiting for their arguments: the coroutine that waits, to stop on cancel.
        self.resolving: dict[bytes, asyncio.Task] = {}
        self._warned_shapes: set[bytes] = set()
        #: Workers the memory monitor killed, with its message: their tasks fail with
        #: OutOfMemoryError, not WorkerCrashedError.
        self.oom_killed: dict[bytes, str] = {}

    # -- entry points (loop thread) --

    def submit(self, spec: dict) -> None:
        self.pending[spec["task_id"]] = spec
        deps = [arg for arg in spec["args"] if arg[0] == "r"]
        if deps:
            resolving = self.core.spawn(self._resolve_then_queue(spec))
            if resolving is not None:
                self.resolving[spec["task_id"]] = resolving
        else:
            self._queue(spec)

    async def _resolve_then_queue(self, spec: dict) -> None:
        try:
            await resolve_dependencies(self.core, spec)
        finally:
            self.resolving.pop(spec["task_id"], None)
        self.core.task_events.update(spec["task_id"], PENDING_NODE_ASSIGNMENT)
        self._queue(spec)

    def _queue(self, spec: dict) -> None:
        key = shape_key(spec)
        queue = self.queues.get(key)
        if queue is None:
            queue = self.queues[key] = ShapeQueue(key, spec["resources"], spec["runtime_env"],
                                                  spec["strategy"])
        queue.tasks.append(spec)
        self._pump(queue)

    def cancel(self, task_id: bytes, force: bool, recursive: bool) -> bool:
        """Cancel a task this process submitted; False if it is not pending here.

        One still waiting for its arguments or for a worker fails with TaskCancelledError
        at once and never runs; a running one is interrupted by its worker (``force``:
        the worker exits), which with ``recursive`` also cancels the tasks it submitted.
        A cancelled task is not retried.
        """
        spec = self.pending.get(task_id)
        if spec is None:
            return False
        spec["cancelled"] = True
        resolving = self.resolving.pop(task_id, None)
        if resolving is not None:
            resolving.cancel()
            self._finish_cancelled(spec)
            return True
        queue = self.queues.get(shape_key(spec))
        if queue is not None and spec in queue.tasks:
            queue.tasks.remove(spec)
            self._finish_cancelled(spec)
            return True
        inflight = self.inflight.get(task_id)
        if inflight is not None:
            inflight[1].conn.notify("cancel_task", {"task_id": task_id, "force": force,
                                                    "recursive": recursive})
        return True

    def cancel_children(self, parent_task_id: bytes, force: bool) -> None:
        """Cancel the tasks that the task ``parent_task_id`` submitted (a recursive cancel)."""
        for task_id, spec in list(self.pending.items()):
            if spec.get("parent_task_id") == parent_task_id:
                self.cancel(task_id, force, recursive=True)

    def infeasible_task(self, conn, msg: dict) -> None:
        key = msgpack.packb(sorted(msg["resources"].items()))
        if key in self._warned_shapes:
            return
        self._warned_shapes.add(key)
        nodes = "; ".join(
            str({k: v for k, v in total.items() if k in ("CPU", "GPU") or not (
                k.startswith("node:") or k in ("memory", "object_store_memory"))})
            for total in msg["node_totals"][:5])
        what = f"actor {msg['for_actor']}" if msg.get("for_actor") else "a task"
        print(f"Warning: {what} asks for {msg['resources']}, which no node in this cluster can "
              f"provide (its nodes have: {nodes}). It will stay pending until a node that fits "
              "it joins: lower its resource request, or add such a node (a cluster with an "
              "autoscaler launches one where a node type of its cluster file fits; `raggio "
              "status` says whether it does).", file=sys.stderr)

    # -- leases and pushing --

    def _pump(self, queue: ShapeQueue) -> None:
        for worker in queue.workers:
            if not queue.tasks:
                break
            if worker.inflight == 0:
                self._push(queue, worker, queue.tasks.popleft())
        wanted = min(len(queue.tasks), self.core.cfg.max_pending_lease_requests)
        while queue.lease_requests < wanted:
            queue.lease_requests += 1
            self.core.spawn(self._lease(queue))

    async def _lease(self, queue: ShapeQueue) -> None:
        try:
            node, grant = await self._request_lease(queue)
            if "error" in grant:
                queue.lease_requests -= 1
                self._fail_queue(queue, RuntimeEnvSetupError(grant["error"])
                                 if grant.get("runtime_env_setup_failed")
                                 else TaskUnschedulableError(grant["error"]))
                return
            conn = await self.core.peer(grant["address"])
        except RpcError as exc:
            queue.lease_requests -= 1
            self._fail_queue(queue, exc)
            return
        queue.lease_requests -= 1
        worker = LeasedWorker(grant["lease_id"], conn, node, grant["worker_id"],
                              self.core.task_events.where_id(grant["node_id"],
                                                             grant["worker_id"], grant["pid"]),
                              grant.get("gpu_ids", []))
        queue.workers.append(worker)
        conn.close_callbacks.append(lambda _c: self._worker_lost(queue, worker))
        self.core.recovery.peer_nodes[grant["address"]] = grant["node_id"]
        if queue.tasks:
            self._push(queue, worker, queue.tasks.popleft())
        else:
            self._idle(queue, worker)
        self._pump(queue)

    async def _request_lease(self, queue: ShapeQueue) -> tuple[object, dict]:
        """Ask the local node manager, then follow spillbacks to the node that has room.

        A node that goes away while we ask it (it was shutting down) sends us back to the
        local node manager, whose view will have dropped it; the local one going away
        fails the queue.
        """
        core = self.core
        return await request_lease(
            {"resources": queue.resources, "runtime_env": queue.runtime_env,
             "job_id": core.job_id, "strategy": queue.strategy},
            pick=lambda: (core.node, False), reach=lambda reply: core.peer(reply["spillback"]),
            retry_timeout_s=core.cfg.lease_retry_timeout_s, local_node=core.node)

    def _push(self, queue: ShapeQueue, worker: LeasedWorker, spec: dict) -> None:
        if worker.linger is not None:
            worker.linger.cancel()
            worker.linger = None
        worker.inflight += 1
        self.inflight[spec["task_id"]] = (spec, worker)
        self.core.task_events.update(spec["task_id"], SUBMITTED_TO_WORKER)
        spec["gpu_ids"] = worker.gpu_ids
        fut = worker.conn.call("push_task", spec)
        fut.add_done_callback(lambda f: self._on_reply(queue, worker, spec, f))

    def _on_reply(self, queue: ShapeQueue, worker: LeasedWorker, spec: dict,
                  fut: asyncio.Future) -> None:
        worker.inflight -= 1
        self.inflight.pop(spec["task_id"], None)
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            if worker.worker_id in self.oom_killed:
                self._on_worker_failure(queue, spec, exc, worker)
            else:
                self.core.spawn(self._fail_once_the_node_spoke(queue, spec, exc, worker))
            return
        reply = fut.result()
        events = self.core.task_events
        if not reply.get("app_error"):
            events.ended(spec["task_id"], FINISHED, None, reply.get("started"), worker.where)
            self._complete(spec, reply["returns"])
        elif (reply.get("retryable") and spec["retries_left"] != 0
                and not spec.get("cancelled")):
            spec["retries_left"] -= 1
            events.next_attempt(spec, reply.get("error"), reply.get("started"), worker.where)
            queue.tasks.appendleft(spec)
        else:
            events.ended(spec["task_id"], FAILED, reply.get("error"), reply.get("started"),
                         worker.where)
            self._complete(spec, reply["returns"])
        if worker in queue.workers:
            if queue.tasks:
                self._push(queue, worker, queue.tasks.popleft())
            else:
                self._idle(queue, worker)

    def _idle(self, queue: ShapeQueue, worker: LeasedWorker) -> None:
        worker.linger = self.core.loop.call_later(
            self.core.cfg.lease_linger_s, self._return_lease, queue, worker)

    def _return_lease(self, queue: ShapeQueue, worker: LeasedWorker) -> None:
        worker.linger = None
        if worker.inflight or worker not in queue.workers:
            return
        queue.workers.remove(worker)
        worker.node.notify("return_worker_lease", {"lease_id": worker.lease_id})

    def _worker_lost(self, queue: ShapeQueue, worker: LeasedWorker) -> None:
        if worker in queue.workers:
            queue.workers.remove(worker)
        if worker.linger is not None:
            worker.linger.cancel()
        self._pump(queue)

    def worker_oom_killed(self, conn, msg: dict) -> None:
        self.oom_killed[msg["worker_id"]] = msg["message"]

    async def _fail_once_the_node_spoke(self, queue: ShapeQueue, spec: dict,
                                        exc: BaseException, worker: LeasedWorker) -> None:
        """Learn why a worker died before failing or retrying its task.

        The memory monitor's ``worker_oom_killed`` notice comes on the node's connection and
        the worker's death on the worker's: either may be read first. The node sends its
        notice before it kills, so one round trip to the node brings any such notice in."""
        try:
            await asyncio.wait_for(worker.node.call("ping"), _WHY_WORKER_DIED_WAIT_S)
        except Exception:  # noqa: BLE001 - a node that is gone or silent says nothing more
            pass
        self._on_worker_failure(queue, spec, exc, worker)

    def _on_worker_failure(self, queue: ShapeQueue, spec: dict, exc: BaseException,
                           worker: LeasedWorker | None = None) -> None:
        oom_message = self.oom_killed.pop(worker.worker_id, None) if worker else None
        if spec.get("cancelled"):
            self._finish_cancelled(spec)
        elif spec["retries_left"] != 0:
            spec["retries_left"] -= 1
            logger.debug("retrying task %s after its worker died: %s", spec["name"], exc)
            self.core.task_events.next_attempt(spec, error_summary(
                OutOfMemoryError(oom_message) if oom_message else WorkerCrashedError()),
                where=worker.where if worker else None)
            queue.tasks.appendleft(spec)
            self._pump(queue)
        elif oom_message is not None:
            self._complete_error(spec, OutOfMemoryError(
                f"Task {spec['name']} failed: {oom_message}"))
        else:
            self._complete_error(spec, WorkerCrashedError())

    def _fail_queue(self, queue: ShapeQueue, exc: BaseException) -> None:
        while queue.tasks:
            self._complete_error(queue.tasks.popleft(), exc)

    # -- results --

    def _complete(self, spec: dict, returns: list[dict]) -> None:
        self.pending.pop(spec["task_id"], None)
        for object_id, location in zip(spec["return_ids"], returns):
            self.core.refs.set_ready(object_id, location)
        if "rebuild_items" in spec:
            self.core.recovery.rerun_ended(spec, returns[0])
        if not self.core.recovery.keep_lineage(spec) or spec["retries_left"] == 0:
            self.core.refs.release_task_args(spec["task_id"])  # it will never run again

    def resubmit(self, spec: dict) -> None:
        """Run a finished task again, to rebuild its lost returns (see reconstruction.py)."""
        spec.pop("cancelled", None)
        self.pending[spec["task_id"]] = spec
        spec["attempt"] = spec.get("attempt", 0) + 1
        self.core.task_events.submitted(spec["task_id"], spec["attempt"], None,
                                        PENDING_NODE_ASSIGNMENT)
        self._queue(spec)

    def _complete_error(self, spec: dict, exc: BaseException) -> None:
        self.core.task_events.ended(spec["task_id"], FAILED, error_summary(exc))
        location = error_location(exc)
        self._complete(spec, [location] * len(spec["return_ids"]))

    def _finish_cancelled(self, spec: dict) -> None:
        self._complete_error(spec, TaskCancelledError(spec["task_id"].hex()))



def shape_key(spec: dict) -> bytes:
    return msgpack.packb([sorted(spec["resources"].items()), env_key(spec["runtime_env"]),
                          spec["strategy"]])


async def resolve_dependencies(core, spec: dict) -> None:
    """Wait for owned arguments; inline the small ready ones into the spec."""
    args = spec["args"]
    for index, arg in enumerate(args):
        if arg[0] != "r":
            continue
        object_id = arg[1]
        entry = core.refs.entries.get(object_id)
        if entry is None or not entry.owned:
            continue
        entry = await core.refs.wait_ready(object_id)
        if entry is not None and entry.inline is not None and not entry.is_error:
            args[index] = ["v", entry.inline]
