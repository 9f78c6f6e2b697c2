"""Submitting actor method calls: ordered, straight to the actor's worker.

Runs on the core worker's loop. Per actor, calls leave in submission order
(a call waits for its dependencies and holds back the ones behind it), over
one connection to the actor's worker. The actor's address comes from the
control store (``wait_actor``); when the connection drops, calls in flight
are retried up to ``max_task_retries`` on the restarted actor, or fail with
``ActorDiedError`` / ``RayActorError``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import pickle
from dataclasses import dataclass, field

from raggio.common.states import (ALIVE, DEAD, FAILED, FINISHED, PENDING_NODE_ASSIGNMENT,
                                  SUBMITTED_TO_WORKER)
from raggio.core.serialization import error_location
from raggio.core.task_events import error_summary
from raggio.core.task_submitter import resolve_dependencies
from raggio.exceptions import ActorDiedError, RayActorError, RpcError, TaskCancelledError

logger = logging.getLogger(__name__)


@dataclass
class ActorState:
    actor_id: bytes
    queue: collections.deque = field(default_factory=collections.deque)  #: specs not yet sent
    inflight: dict = field(default_factory=dict)  #: task_id -> spec
    conn: object = None
    where: int | None = None  #: its worker's number in the task history (see task_events)
    incarnation: int = 0
    connecting: bool = False
    dead_error: BaseException | None = None
    #: Calls in flight when the actor's connection dropped, with no retries left.
    lost_calls: list = field(default_factory=list)


class ActorSubmitter:
    """See the module docstring."""

    def __init__(self, core):
        self.core = core
        self.actors: dict[bytes, ActorState] = {}

    def submit(self, spec: dict) -> None:
        state = self.actors.get(spec["actor_id"])
        if state is None:
            state = self.actors[spec["actor_id"]] = ActorState(spec["actor_id"])
        spec["deps_ready"] = not any(arg[0] == "r" for arg in spec["args"])
        state.queue.append(spec)
        if not spec["deps_ready"]:
            self.core.spawn(self._resolve(state, spec))
        self._pump(state)

    def idle(self, actor_id: bytes) -> bool:
        """Whether no call to this actor is queued or in flight from this process."""
        state = self.actors.get(actor_id)
        return state is None or not (state.queue or state.inflight or state.lost_calls)

    def _after_call(self, state: ActorState) -> None:
        if not (state.queue or state.inflight or state.lost_calls):
            self.core.actor_handles.calls_done(state.actor_id)

    def cancel(self, task_id: bytes, force: bool, recursive: bool) -> bool:
        """Cancel an actor call, as Ray does; False if it is not pending here.

        One not sent yet fails with TaskCancelledError at once; for one sent, the actor's
        worker drops it if it has not started, cancels it if it runs on an async actor,
        and lets it finish on a plain or threaded actor; with ``recursive`` the tasks it
        submitted are cancelled too.

        Raises:
            ValueError: ``force`` (Ray cannot force-cancel actor calls; ``kill`` the actor).
        """
        for state in self.actors.values():
            queued = next((spec for spec in state.queue if spec["task_id"] == task_id), None)
            if queued is None and task_id not in state.inflight:
                continue
            if force:
                raise ValueError("force=True is not supported for actor tasks.")
            if queued is not None:
                state.queue.remove(queued)
                self._fail(queued, TaskCancelledError(task_id.hex()))
                self._after_call(state)
            elif state.conn is not None:
                state.conn.notify("cancel_task", {"task_id": task_id, "force": False,
                                                  "recursive": recursive})
            return True
        return False

    def cancel_children(self, parent_task_id: bytes) -> None:
        """Cancel the calls that the task ``parent_task_id`` submitted (a recursive cancel)."""
        for state in self.actors.values():
            for spec in [*state.queue, *state.inflight.values()]:
                if spec.get("parent_task_id") == parent_task_id:
                    self.cancel(spec["task_id"], False, recursive=True)

    async def _resolve(self, state: ActorState, spec: dict) -> None:
        await resolve_dependencies(self.core, spec)
        spec["deps_ready"] = True
        self.core.task_events.update(spec["task_id"], PENDING_NODE_ASSIGNMENT)
        self._pump(state)

    def _pump(self, state: ActorState) -> None:
        if state.dead_error is not None:
            while state.queue:
                self._fail(state.queue.popleft(), state.dead_error)
            self._after_call(state)
            return
        if state.conn is None or state.conn.is_closed:
            if not state.connecting:
                state.connecting = True
                self.core.spawn(self._connect(state))
            return
        while state.queue and state.queue[0]["deps_ready"]:
            spec = state.queue.popleft()
            state.inflight[spec["task_id"]] = spec
            self.core.task_events.update(spec["task_id"], SUBMITTED_TO_WORKER)
            fut = state.conn.call("push_task", spec)
            fut.add_done_callback(lambda f, spec=spec: self._on_reply(state, spec, f))

    async def _connect(self, state: ActorState) -> None:
        try:
            while True:
                info = await self.core.gcs.call("wait_actor", {
                    "actor_id": state.actor_id, "after_incarnation": state.incarnation,
                    "timeout_s": 60.0})
                if info["state"] == DEAD:
                    state.dead_error = death_error(info)
                    self._fail_lost_calls(state, state.dead_error)
                    break
                if info["state"] == ALIVE and info["incarnation"] > state.incarnation:
                    try:
                        conn = await self.core.peer(info["address"])
                    except RpcError:
                        await asyncio.sleep(0.05)
                        continue
                    self._fail_lost_calls(state, ActorDiedError(
                        f"The actor {state.actor_id.hex()} died while running this call and "
                        "was restarted; the call was not retried. Set max_task_retries to "
                        "retry calls on a restarted actor.", actor_id=state.actor_id.hex()))
                    state.conn = conn
                    state.where = self.core.task_events.where_id(
                        info["node_id"], info["worker_id"], info["pid"])
                    state.incarnation = info["incarnation"]
                    self.core.recovery.peer_nodes[info["address"]] = info["node_id"]
                    conn.close_callbacks.append(lambda c: self._on_lost(state, c))
                    break
        except RpcError as exc:
            state.dead_error = RayActorError(error_msg=
                f"Lost the control store while looking up actor {state.actor_id.hex()}: {exc}")
            self._fail_lost_calls(state, state.dead_error)
        finally:
            state.connecting = False
        self._pump(state)

    def _on_reply(self, state: ActorState, spec: dict, fut: asyncio.Future) -> None:
        failed = fut.cancelled() or fut.exception() is not None  # also marks it retrieved
        if state.inflight.pop(spec["task_id"], None) is None:
            return
        if failed:
            state.inflight[spec["task_id"]] = spec  # handled by _on_lost with the rest
            return
        reply = fut.result()
        self.core.task_events.ended(spec["task_id"], FAILED if reply.get("app_error") else FINISHED,
                                    reply.get("error"), reply.get("started"), state.where)
        for object_id, location in zip(spec["return_ids"], reply["returns"]):
            self.core.refs.set_ready(object_id, location)
        self.core.refs.release_task_args(spec["task_id"])
        if not (state.queue or state.inflight):
            self._after_call(state)

    def _on_lost(self, state: ActorState, conn) -> None:
        if state.conn is not conn:
            return
        state.conn = None
        retry = []
        for spec in sorted(state.inflight.values(), key=lambda s: s["seq"]):
            if spec["retries_left"] != 0:
                spec["retries_left"] -= 1
                self.core.task_events.next_attempt(spec, [
                    "ACTOR_DIED", "The actor's worker died while running this call; it is "
                    "retried on the restarted actor."], where=state.where)
                retry.append(spec)
            else:
                state.lost_calls.append(spec)  # failed once we know why the actor died
        state.inflight.clear()
        state.queue.extendleft(reversed(retry))
        self._pump(state)

    def _fail_lost_calls(self, state: ActorState, exc: BaseException) -> None:
        calls, state.lost_calls = state.lost_calls, []
        for spec in calls:
            self._fail(spec, exc)
        self._after_call(state)

    def _fail(self, spec: dict, exc: BaseException) -> None:
        self.core.task_events.ended(spec["task_id"], FAILED, error_summary(exc))
        location = error_location(exc)
        for object_id in spec["return_ids"]:
            self.core.refs.set_ready(object_id, location)
        self.core.refs.release_task_args(spec["task_id"])


def death_error(info: dict) -> BaseException:
    actor_id = info["actor_id"].hex() if info.get("actor_id") else None
    if info.get("creation_error"):
        try:
            return ActorDiedError(pickle.loads(info["creation_error"]), actor_id=actor_id)
        except Exception:
            pass
    return ActorDiedError(info.get("death_cause") or "The actor is dead.", actor_id=actor_id)
