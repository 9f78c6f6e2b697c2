"""LeaseQueue, driven directly: requests in, actions out (a plain class: no processes).

The node's free resources, the cluster view (as in test_scheduling_policy) and
the worker pool's answers are passed in as plain values; the actions are what
the node manager would do with them.
"""

import asyncio

import pytest

from raggio.common.scheduling_policy import SchedulingPolicy
from raggio.core.scheduling_strategies import NodeAffinitySchedulingStrategy, encode
from raggio.node.lease_queue import (GRANT, INFEASIBLE_GRACE_S, RECHECK, REFUSE, SPILLBACK,
                                     START_WORKER, WARN_INFEASIBLE, LeaseQueue, LeaseRequest)

LOCAL_ID, A = b"\x01" * 28, b"\x02" * 28
UNKNOWN = b"\x09" * 28
CPU1 = {"CPU": 1.0}


@pytest.fixture
def loop():
    """A loop that only makes the requests' futures (it never runs)."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def node(cpus: float, free: float | None = None) -> dict:
    return {"total": {"CPU": cpus}, "available": {"CPU": cpus if free is None else free},
            "labels": {}}


def cluster(local: dict, a: dict | None = None) -> dict:
    return {LOCAL_ID: local, **({A: a} if a is not None else {})}


def request(loop, resources=CPU1, strategy="DEFAULT", spilled=False) -> LeaseRequest:
    return LeaseRequest(dict(resources), {}, 1, None, holder=None,
                        future=loop.create_future(), strategy=strategy, spilled=spilled)


def dispatch(queue, view, idle=(), starting=0, now=0.0):
    """One pass, the local node's free resources taken from the view, ``idle`` the idle
    workers and ``starting`` the workers starting, of any runtime env."""
    return queue.dispatch(view[LOCAL_ID]["available"], view,
                          lambda key, is_gpu, for_actor: list(idle), lambda key: starting, now)


def kinds(actions) -> list[str]:
    return [action.kind for action in actions]


def new_queue(*requests) -> LeaseQueue:
    queue = LeaseQueue(SchedulingPolicy(LOCAL_ID))
    for each in requests:
        queue.add(each)
    return queue


def test_a_request_that_fits_goes_to_an_idle_worker(loop):
    queue = new_queue(request(loop))
    [action] = dispatch(queue, cluster(node(2)), idle=["w1"])
    assert (action.kind, action.worker) == (GRANT, "w1")
    assert not queue.pending


def test_each_idle_worker_is_granted_once_then_workers_are_started(loop):
    queue = new_queue(*(request(loop) for _ in range(3)))
    actions = dispatch(queue, cluster(node(3)), idle=["w1", "w2"])
    assert [(a.kind, a.worker) for a in actions] == [(GRANT, "w1"), (GRANT, "w2"),
                                                     (START_WORKER, None)]
    assert len(queue.pending) == 1


def test_ten_tasks_on_two_cpus_start_two_workers_and_spill_the_rest(loop):
    requests = [request(loop) for _ in range(10)]
    queue = new_queue(*requests)
    actions = dispatch(queue, cluster(node(2), node(8)))
    assert kinds(actions).count(START_WORKER) == 2
    spilled = [a for a in actions if a.kind == SPILLBACK]
    assert [a.request for a in spilled] == requests[2:]
    assert {a.node_id for a in spilled} == {A}
    assert list(queue.pending) == requests[:2]


def test_workers_already_starting_are_counted(loop):
    queue = new_queue(request(loop), request(loop))
    assert kinds(dispatch(queue, cluster(node(2)), starting=1)) == [START_WORKER]
    assert len(queue.pending) == 2
    assert dispatch(queue, cluster(node(2)), starting=2) == []  # both still waiting


def test_a_placed_request_stays_here_when_the_node_fills_up(loop):
    placed = request(loop)
    queue = new_queue(placed)
    assert kinds(dispatch(queue, cluster(node(1)))) == [START_WORKER]
    # The CPU went to another lease meanwhile; the other node has room, but a worker may
    # be starting for this request here.
    assert dispatch(queue, cluster(node(1, free=0), node(4)), starting=1) == []
    assert list(queue.pending) == [placed]


def test_a_spilled_request_is_sent_on_only_to_a_node_with_room_now(loop):
    spilled = request(loop, {"CPU": 2.0}, spilled=True)
    queue = new_queue(spilled)
    # It no longer fits here, and the view shows no room elsewhere: it waits here.
    assert dispatch(queue, cluster(node(2, free=1), node(2, free=1))) == []
    assert list(queue.pending) == [spilled]
    [action] = dispatch(queue, cluster(node(2, free=1), node(2)))
    assert (action.kind, action.node_id) == (SPILLBACK, A)
    assert not queue.pending


def test_a_spilled_request_that_fits_is_granted_here(loop):
    queue = new_queue(request(loop, spilled=True))
    [action] = dispatch(queue, cluster(node(1), node(8)), idle=["w1"])
    assert (action.kind, action.worker) == (GRANT, "w1")


def test_a_request_that_fits_no_node_is_warned_of_after_the_grace_time(loop):
    huge = request(loop, {"CPU": 64.0})
    queue = new_queue(huge)
    view = cluster(node(2), node(2))
    assert kinds(dispatch(queue, view, now=10.0)) == [RECHECK]
    assert dispatch(queue, view, now=10.0 + INFEASIBLE_GRACE_S / 2) == []
    [action] = dispatch(queue, view, now=10.0 + INFEASIBLE_GRACE_S)
    assert (action.kind, action.request) == (WARN_INFEASIBLE, huge)
    assert huge.infeasible
    assert dispatch(queue, view, now=20.0) == []  # once
    assert list(queue.pending) == [huge]


def test_hard_affinity_to_an_unknown_node_is_refused(loop):
    strategy = encode(NodeAffinitySchedulingStrategy(UNKNOWN.hex(), soft=False))
    queue = new_queue(request(loop, strategy=strategy))
    [action] = dispatch(queue, cluster(node(2)))
    assert action.kind == REFUSE and UNKNOWN.hex() in action.reason
    assert not queue.pending


def test_a_request_its_holder_gave_up_is_dropped(loop):
    gone, kept = request(loop), request(loop)
    gone.future.cancel()
    queue = new_queue(gone, kept)
    assert kinds(dispatch(queue, cluster(node(2)))) == [START_WORKER]
    assert list(queue.pending) == [kept]


def test_remove_returns_the_unanswered_requests_it_takes(loop):
    answered, unanswered, other = request(loop), request(loop), request(loop, {"CPU": 2.0})
    answered.future.set_result({})
    queue = new_queue(answered, unanswered, other)
    assert queue.remove(lambda r: r.resources == CPU1) == [unanswered]
    assert list(queue.pending) == [other]


@pytest.mark.parametrize("resources, spilled", [(CPU1, False), (CPU1, True), ({}, True)])
def test_a_leaving_node_sends_even_what_fits_here_to_another_node(loop, resources, spilled):
    # Drained (node/draining.py): nothing more runs here, whatever it fits.
    queue = new_queue(request(loop, resources, spilled=spilled))
    queue.leaving = True
    actions = dispatch(queue, cluster(node(2), a=node(2)), idle=["w"])
    assert kinds(actions) == [SPILLBACK] and actions[0].node_id == A


def test_a_leaving_node_keeps_what_no_other_node_can_take(loop):
    queue = new_queue(request(loop, {"CPU": 4.0}))
    queue.leaving = True
    assert GRANT not in kinds(dispatch(queue, cluster(node(4), a=node(2)), idle=["w"]))
    assert len(queue.pending) == 1
