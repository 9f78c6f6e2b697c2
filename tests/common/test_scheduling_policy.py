"""SchedulingPolicy, driven directly with plain cluster views (a policy class: no processes).

A view maps node id -> {"total", "available"}, as the node manager keeps it
from the control store's broadcasts; the local node's current availability
is passed on its own. Strategies are given in their wire form, made by
``scheduling_strategies.encode`` as the submitter makes them.
"""

import itertools

import pytest

from raggio.common.scheduling_policy import (FAIL, INFEASIBLE, LOCAL, QUEUE, SPILL,
                                             SchedulingPolicy)
from raggio.core.scheduling_strategies import (DoesNotExist, Exists, In,
                                               NodeAffinitySchedulingStrategy,
                                               NodeLabelSchedulingStrategy, NotIn, encode,
                                               label_constraints, resolve)

LOCAL_ID, A, B = b"\x01" * 28, b"\x02" * 28, b"\x03" * 28
UNKNOWN = b"\x09" * 28
CPU1 = {"CPU": 1.0}


def node(total: dict, available: dict | None = None, labels: dict | None = None) -> dict:
    return {"total": total, "available": dict(total) if available is None else available,
            "labels": labels or {}}


def view(**nodes) -> dict:
    """view(local=..., a=..., b=...) keyed by the node ids above."""
    ids = {"local": LOCAL_ID, "a": A, "b": B}
    return {ids[name]: info for name, info in nodes.items()}


def decide(request, strategy="DEFAULT", policy=None, **nodes):
    cluster = view(**nodes)
    policy = policy or SchedulingPolicy(LOCAL_ID)
    return policy.decide(request, strategy, cluster, cluster[LOCAL_ID]["available"])


def affinity(node_id: bytes, soft: bool):
    return encode(NodeAffinitySchedulingStrategy(node_id.hex(), soft=soft))


# -- DEFAULT (hybrid) --


def test_default_prefers_the_local_node_when_it_fits():
    decision = decide(CPU1, local=node({"CPU": 2.0}), a=node({"CPU": 8.0}))
    assert decision.kind == LOCAL


def test_default_spills_to_the_node_with_most_free_cpu_when_local_is_busy():
    decision = decide(CPU1, local=node({"CPU": 2.0}, {"CPU": 0.0}),
                      a=node({"CPU": 8.0}, {"CPU": 2.0}), b=node({"CPU": 8.0}, {"CPU": 5.0}))
    assert (decision.kind, decision.node_id) == (SPILL, B)


def test_default_skips_nodes_that_lack_a_custom_resource():
    decision = decide({"CPU": 1.0, "special": 1.0}, local=node({"CPU": 2.0}),
                      a=node({"CPU": 8.0}), b=node({"CPU": 1.0, "special": 1.0}))
    assert (decision.kind, decision.node_id) == (SPILL, B)


def test_default_queues_locally_when_nothing_fits_now_but_local_could():
    decision = decide({"CPU": 2.0}, local=node({"CPU": 2.0}, {"CPU": 1.0}),
                      a=node({"CPU": 4.0}, {"CPU": 1.0}))
    assert decision.kind == QUEUE


def test_default_spills_to_a_node_that_can_ever_fit_when_local_never_can():
    # Busy now, but the only node with a GPU at all.
    decision = decide({"GPU": 1.0}, local=node({"CPU": 2.0}),
                      a=node({"CPU": 2.0}), b=node({"CPU": 2.0, "GPU": 1.0}, {"CPU": 2.0}))
    assert (decision.kind, decision.node_id) == (SPILL, B)


def test_default_is_infeasible_when_no_node_can_ever_fit():
    decision = decide({"GPU": 1.0}, local=node({"CPU": 2.0}), a=node({"CPU": 8.0}))
    assert decision.kind == INFEASIBLE
    decision = decide({"CPU": 16.0}, local=node({"CPU": 2.0}), a=node({"CPU": 8.0}))
    assert decision.kind == INFEASIBLE


def test_a_request_for_nothing_runs_locally_even_on_a_busy_node():
    decision = decide({}, local=node({"CPU": 1.0}, {"CPU": 0.0}), a=node({"CPU": 8.0}))
    assert decision.kind == LOCAL


# -- SPREAD --


def where(decision) -> bytes:
    return LOCAL_ID if decision.kind == LOCAL else decision.node_id


def test_spread_alternates_between_the_nodes_that_fit():
    policy = SchedulingPolicy(LOCAL_ID)
    cluster = view(local=node({"CPU": 4.0}), a=node({"CPU": 4.0}),
                   b=node({"CPU": 4.0}, {"CPU": 0.0}))  # b is busy: not a candidate
    decisions = [policy.decide(CPU1, "SPREAD", cluster, cluster[LOCAL_ID]["available"])
                 for _ in range(6)]
    assert {d.kind for d in decisions} <= {LOCAL, SPILL}
    targets = [where(d) for d in decisions]
    assert set(targets) == {LOCAL_ID, A}
    assert all(x != y for x, y in itertools.pairwise(targets)), targets


def test_spread_counts_local_availability_not_the_view():
    # The view's entry for this node may be stale; what is free here now decides.
    policy = SchedulingPolicy(LOCAL_ID)
    cluster = view(local=node({"CPU": 4.0}), a=node({"CPU": 4.0}))
    targets = {where(policy.decide(CPU1, "SPREAD", cluster, {"CPU": 0.0})) for _ in range(4)}
    assert targets == {A}


def test_spread_queues_like_default_when_nothing_fits_now():
    decision = decide(CPU1, "SPREAD", local=node({"CPU": 1.0}, {"CPU": 0.0}),
                      a=node({"CPU": 1.0}, {"CPU": 0.0}))
    assert decision.kind == QUEUE


# -- node affinity --


def test_hard_affinity_goes_to_that_node_even_when_it_is_busy():
    decision = decide(CPU1, affinity(A, soft=False), local=node({"CPU": 8.0}),
                      a=node({"CPU": 1.0}, {"CPU": 0.0}))
    assert (decision.kind, decision.node_id) == (SPILL, A)


def test_hard_affinity_to_the_local_node_runs_or_queues_here():
    strategy = affinity(LOCAL_ID, soft=False)
    assert decide(CPU1, strategy, local=node({"CPU": 1.0}), a=node({"CPU": 8.0})).kind == LOCAL
    busy = decide(CPU1, strategy, local=node({"CPU": 1.0}, {"CPU": 0.0}), a=node({"CPU": 8.0}))
    assert busy.kind == QUEUE


def test_hard_affinity_to_an_unknown_node_fails_with_a_reason():
    decision = decide(CPU1, affinity(UNKNOWN, soft=False), local=node({"CPU": 2.0}),
                      a=node({"CPU": 2.0}))
    assert decision.kind == FAIL
    assert UNKNOWN.hex() in decision.reason
    assert "not alive" in decision.reason


def test_hard_affinity_to_a_node_that_can_never_fit_fails():
    decision = decide({"GPU": 1.0}, affinity(A, soft=False), local=node({"CPU": 2.0}),
                      a=node({"CPU": 2.0}))
    assert decision.kind == FAIL
    assert A.hex() in decision.reason and "GPU" in decision.reason


def test_soft_affinity_to_an_unknown_node_falls_back_to_default():
    strategy = affinity(UNKNOWN, soft=True)
    assert decide(CPU1, strategy, local=node({"CPU": 2.0}), a=node({"CPU": 2.0})).kind == LOCAL
    busy = decide(CPU1, strategy, local=node({"CPU": 2.0}, {"CPU": 0.0}), a=node({"CPU": 2.0}))
    assert (busy.kind, busy.node_id) == (SPILL, A)


def test_soft_affinity_to_a_node_that_can_never_fit_falls_back_to_default():
    decision = decide({"GPU": 1.0}, affinity(A, soft=True), local=node({"CPU": 2.0}),
                      a=node({"CPU": 2.0}), b=node({"CPU": 2.0, "GPU": 1.0}))
    assert (decision.kind, decision.node_id) == (SPILL, B)


# -- labels (label_selector, fallback_strategy, NodeLabelSchedulingStrategy) --


def labelled(strategy=None, label_selector=None, fallback_strategy=None):
    """The wire strategy of a task with these options, as the submitter sends it."""
    constraints = label_constraints(strategy, label_selector, fallback_strategy)
    return resolve(strategy, CPU1, None, constraints)[1]


US, EU = {"region": "us"}, {"region": "eu", "gpu": "A100"}


def test_a_label_selector_skips_the_local_node_when_it_does_not_match():
    decision = decide(CPU1, labelled(label_selector={"region": "eu"}),
                      local=node({"CPU": 4.0}, labels=US), a=node({"CPU": 1.0}, labels=EU))
    assert (decision.kind, decision.node_id) == (SPILL, A)


@pytest.mark.parametrize("selector, expected", [
    ({"region": "us"}, LOCAL_ID), ({"region": "!us"}, A), ({"region": "in(eu, asia)"}, A),
    ({"region": "!in(us,asia)"}, A), ({"gpu": "A100", "region": "eu"}, A),
    ({"gpu": "!A100"}, LOCAL_ID),  # a missing label is "not A100"
])
def test_label_selector_operators(selector, expected):
    decision = decide(CPU1, labelled(label_selector=selector),
                      local=node({"CPU": 4.0}, labels=US), a=node({"CPU": 4.0}, labels=EU))
    assert where(decision) == expected


@pytest.mark.parametrize("hard, expected", [
    ({"gpu": Exists()}, A), ({"gpu": DoesNotExist()}, LOCAL_ID),
    ({"region": In("eu", "asia")}, A), ({"region": NotIn("eu")}, LOCAL_ID),
])
def test_node_label_strategy_operators(hard, expected):
    decision = decide(CPU1, labelled(NodeLabelSchedulingStrategy(hard)),
                      local=node({"CPU": 4.0}, labels=US), a=node({"CPU": 4.0}, labels=EU))
    assert where(decision) == expected


def test_unmatched_hard_labels_are_infeasible_with_a_reason():
    decision = decide(CPU1, labelled(label_selector={"region": "asia"}),
                      local=node({"CPU": 4.0}, labels=US), a=node({"CPU": 4.0}, labels=EU))
    assert decision.kind == INFEASIBLE
    assert "region in (asia)" in decision.reason


def test_a_matching_node_that_can_never_fit_does_not_count():
    decision = decide({"CPU": 8.0}, labelled(label_selector={"region": "eu"}),
                      local=node({"CPU": 16.0}, labels=US), a=node({"CPU": 4.0}, labels=EU))
    assert decision.kind == INFEASIBLE


def test_fallback_selectors_are_tried_in_order():
    strategy = labelled(label_selector={"region": "asia"},
                        fallback_strategy=[{"label_selector": {"region": "mars"}},
                                           {"label_selector": {"gpu": "A100"}},
                                           {"label_selector": {"region": "us"}}])
    decision = decide(CPU1, strategy, local=node({"CPU": 4.0}, labels=US),
                      a=node({"CPU": 4.0}, labels=EU))
    assert (decision.kind, decision.node_id) == (SPILL, A)


def test_soft_labels_prefer_a_matching_node_that_fits_now():
    strategy = labelled(NodeLabelSchedulingStrategy({}, soft={"gpu": Exists()}))
    decision = decide(CPU1, strategy, local=node({"CPU": 4.0}, labels=US),
                      a=node({"CPU": 4.0}, labels=EU))
    assert (decision.kind, decision.node_id) == (SPILL, A)
    busy = decide(CPU1, strategy, local=node({"CPU": 4.0}, labels=US),
                  a=node({"CPU": 4.0}, {"CPU": 0.0}, labels=EU))
    assert busy.kind == LOCAL  # the preferred node is full: any allowed node will do


def test_a_label_selector_keeps_a_busy_matching_node_queued_rather_than_elsewhere():
    decision = decide(CPU1, labelled(label_selector={"region": "us"}),
                      local=node({"CPU": 2.0}, {"CPU": 0.0}, labels=US),
                      a=node({"CPU": 8.0}, labels=EU))
    assert decision.kind == QUEUE


def test_spread_with_labels_only_uses_the_matching_nodes():
    policy = SchedulingPolicy(LOCAL_ID)
    constraints = label_constraints(None, {"region": "!us"}, None)
    strategy = resolve("SPREAD", CPU1, None, constraints)[1]
    chosen = {decide(CPU1, strategy, policy, local=node({"CPU": 4.0}, labels=US),
                     a=node({"CPU": 4.0}, labels=EU), b=node({"CPU": 4.0}, labels=EU)).node_id
              for _ in range(4)}
    assert chosen == {A, B}
