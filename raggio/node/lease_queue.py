"""A node's pending lease requests, and what to do with each: no I/O.

``LeaseQueue.dispatch`` goes over the requests in order against the node's
free resources, the cluster view and the scheduling policy, and returns what
the node manager is to do: grant a request to an idle worker, start a worker,
send a request on (``spillback``), fail it, or schedule another look or a
warning for one that fits no node; every other request keeps waiting. The
manager applies the actions (replies, process starts, reports) in order.

The rules, beyond the policy's:

- A request waiting for a worker to start holds its share of the node, so that
  10 tasks on 2 CPUs start 2 workers (and spill to other nodes), not 10.
- A request decided LOCAL (``placed``) stays here: a worker may be starting for it.
- A request spilled here by another node is kept while it fits here, and sent
  on only to a node whose view shows room now (the views are a moment old: with
  "spill anywhere" four whole-node actors sent together bounced between nodes;
  with "never spill twice" two of them waited for ever beside empty nodes).
- A request that fits no node is reported once it has done so for
  ``INFEASIBLE_GRACE_S`` (a node may be joining that this view lacks yet).
- A node that is ``leaving`` (drained, ``node/draining.py``) runs nothing more:
  each request is decided as if this node were not in the view.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass
from typing import Callable

from raggio.common.resources import fits, take
from raggio.common.scheduling_policy import (FAIL, INFEASIBLE, LOCAL, QUEUE, SPILL, Decision,
                                             SchedulingPolicy)
from raggio.node.resources import uses_gpus

#: How long a request must fit no node before the submitter is warned; covers a node that
#: has joined but is not yet in this node's view of the cluster.
INFEASIBLE_GRACE_S = 1.0

# What the node manager is to do (``Action.kind``); "keep waiting" has no action.
GRANT = "grant"  #: give ``request`` the idle ``worker``
START_WORKER = "start_worker"  #: start a worker for ``request.runtime_env``
SPILLBACK = "spillback"  #: answer ``request`` with ``node_id``: ask that node
REFUSE = "refuse"  #: answer ``request`` with ``reason``: it can never run
RECHECK = "recheck"  #: ``request`` fits no node now: dispatch again in INFEASIBLE_GRACE_S
WARN_INFEASIBLE = "warn_infeasible"  #: tell ``request``'s holder it fits no node


@dataclass
class LeaseRequest:
    resources: dict
    runtime_env: dict
    job_id: int | None
    for_actor: str | None
    holder: object  #: the connection that asked
    future: asyncio.Future  #: its answer; done once answered or given up by the holder
    strategy: object = "DEFAULT"
    #: Sent here by another node: kept here while it fits, sent on only to a node that
    #: has room now (another request may have taken what this node had when it was sent).
    spilled: bool = False
    placed: bool = False  #: decided LOCAL (a worker may be starting for it): stays here
    env_key: bytes = b""
    infeasible: bool = False  #: reported as fitting no node
    infeasible_since: float | None = None


@dataclass
class Action:
    kind: str
    request: LeaseRequest
    worker: object = None  #: GRANT: the idle worker
    node_id: bytes | None = None  #: SPILLBACK: the node to ask
    reason: str | None = None  #: REFUSE: why


class LeaseQueue:
    """See the module docstring."""

    def __init__(self, policy: SchedulingPolicy):
        self.policy = policy
        self.pending: collections.deque[LeaseRequest] = collections.deque()
        self.leaving = False  #: the node is draining: send every request elsewhere

    def add(self, request: LeaseRequest) -> None:
        self.pending.append(request)

    def remove(self, which: Callable[[LeaseRequest], bool]) -> list[LeaseRequest]:
        """Take out the requests ``which`` picks; those still unanswered."""
        taken = [request for request in self.pending if which(request)]
        if taken:
            self.pending = collections.deque(r for r in self.pending if not which(r))
        return [request for request in taken if not request.future.done()]

    def dispatch(self, available: dict, view: dict[bytes, dict],
                 idle_workers: Callable[[bytes, bool, bool], list],
                 num_starting: Callable[[bytes], int], now: float) -> list[Action]:
        """What to do now, in order; the requests answered here leave the queue.

        Args:
            available: The node's free resources (not changed).
            view: The cluster view, this node included, as the policy reads it.
            idle_workers: ``WorkerPool.idle_workers(env_key, is_gpu, for_actor)``.
            num_starting: ``WorkerPool.num_starting(env_key)``: workers not yet registered
                (before this pass's START_WORKER actions are applied).
            now: ``time.monotonic()``.
        """
        actions: list[Action] = []
        if self.leaving:
            view = {node_id: node for node_id, node in view.items()
                    if node_id != self.policy.local_node_id}
        # What is free once the requests placed here so far have their workers.
        available = dict(available)
        granted: set[int] = set()  #: ids of the idle workers given out in this pass
        waiting_per_env: collections.Counter = collections.Counter()
        still_pending = collections.deque()
        for request in self.pending:
            if request.future.done():
                continue
            decision = self._decide(request, available, view)
            if decision.kind == SPILL:
                actions.append(Action(SPILLBACK, request, node_id=decision.node_id))
                continue
            if decision.kind == FAIL:
                actions.append(Action(REFUSE, request, reason=decision.reason))
                continue
            if decision.kind == INFEASIBLE:
                self._note_infeasible(request, now, actions)
            else:
                request.infeasible_since = None
            if decision.kind != LOCAL:
                still_pending.append(request)
                continue
            request.placed = True
            take(available, request.resources)
            worker = next((worker for worker in idle_workers(request.env_key,
                                                             uses_gpus(request.resources),
                                                             request.for_actor is not None)
                           if id(worker) not in granted), None)
            if worker is not None:
                granted.add(id(worker))
                actions.append(Action(GRANT, request, worker=worker))
                continue
            still_pending.append(request)
            # A worker each for the requests past those that the workers already starting
            # will take.
            waiting_per_env[request.env_key] += 1
            if waiting_per_env[request.env_key] > num_starting(request.env_key):
                actions.append(Action(START_WORKER, request))
        self.pending = still_pending
        return actions

    def _decide(self, request: LeaseRequest, available: dict, view: dict) -> Decision:
        if not self.leaving and (request.placed
                                 or (request.spilled and fits(available, request.resources))):
            return Decision(LOCAL if fits(available, request.resources) else QUEUE)
        decision = self.policy.decide(request.resources, request.strategy, view, available)
        if request.spilled and decision.kind == SPILL and not fits(
                view[decision.node_id]["available"], request.resources):
            return Decision(QUEUE)
        return decision

    @staticmethod
    def _note_infeasible(request: LeaseRequest, now: float, actions: list[Action]) -> None:
        """Warn once a request has fit no node for a while: a node may be joining."""
        if request.infeasible_since is None:
            request.infeasible_since = now
            actions.append(Action(RECHECK, request))
        elif not request.infeasible and now - request.infeasible_since >= INFEASIBLE_GRACE_S:
            request.infeasible = True
            actions.append(Action(WARN_INFEASIBLE, request))
