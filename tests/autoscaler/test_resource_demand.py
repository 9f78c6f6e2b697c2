"""The autoscaler's demand policy, driven directly with plain cluster views (pure: no processes).

Each table row is one cluster (node types, nodes, demand, limits) and what ``plan`` or
``idle_to_terminate`` must make of it. Nodes are the dicts the autoscaler's loop builds
from the control store and the provider; node types are the cluster file's ``NodeType``.
"""

from __future__ import annotations

import pytest

from raggio.autoscaler.resource_demand import idle_to_terminate, plan
from raggio.launcher.cluster_config import NodeType

GiB = 1024**3


def node_type(name: str, resources: dict, min_workers: int = 0, max_workers: int = 10) -> NodeType:
    return NodeType(name=name, node_config={}, resources=resources, labels={},
                    min_workers=min_workers, max_workers=max_workers)


def types(*node_types: NodeType) -> dict[str, NodeType]:
    return {t.name: t for t in node_types}


HEAD = node_type("head", {"CPU": 1}, max_workers=0)
CPU1 = node_type("cpu1", {"CPU": 1})
CPU2 = node_type("cpu2", {"CPU": 2})
CPU4 = node_type("cpu4", {"CPU": 4, "memory": 16 * GiB})
CPU8 = node_type("cpu8", {"CPU": 8, "memory": 32 * GiB})
GPU1 = node_type("gpu1", {"CPU": 1, "GPU": 1})
GPU4 = node_type("gpu4", {"CPU": 16, "GPU": 4})


def running(name: str, total: dict, available: dict | None = None, idle_s: float = 0,
            is_head: bool = False) -> dict:
    return {"node_type": name, "state": "running", "total": total,
            "available": dict(total) if available is None else available,
            "idle_s": idle_s, "is_head": is_head}


def launching(name: str) -> dict:
    return {"node_type": name, "state": "launching"}


def releasing(name: str) -> dict:
    """A worker the autoscaler is removing, which its provider still holds."""
    return {"node_type": name, "state": "releasing"}


def head(available_cpus: float = 0) -> dict:
    """The head, with no room left by default (so demand needs workers)."""
    return running("head", {"CPU": 1}, {"CPU": available_cpus}, is_head=True)


def busy_cpu4(free: float = 0) -> dict:
    return running("cpu4", {"CPU": 4, "memory": 16 * GiB}, {"CPU": free, "memory": 16 * GiB})


def idle_cpu4(idle_s: float) -> dict:
    return running("cpu4", {"CPU": 4, "memory": 16 * GiB}, idle_s=idle_s)


def strict_spread(n: int, shape: dict) -> dict:
    return {"bundles": [dict(shape) for _ in range(n)], "strategy": "STRICT_SPREAD"}


# Each row: the plan's arguments (node_types and nodes first), the launches it must make,
# and the reasons (substrings, each in some reason) it must give.
PLANS = [
    pytest.param(dict(node_types=types(HEAD, CPU4), nodes=[head(1)], demands=[{"CPU": 1}]),
                 {}, [], id="demand-fits-the-head"),
    pytest.param(dict(node_types=types(HEAD, CPU4), nodes=[head()], demands=[]),
                 {}, [], id="nothing-pending-launches-nothing"),
    pytest.param(dict(node_types=types(HEAD, CPU4), nodes=[head()], demands=[{"CPU": 1}] * 8),
                 {"cpu4": 2}, ["launching 2 x cpu4: 8 pending {CPU: 1} tasks/actors"],
                 id="demand-packs-onto-new-nodes"),
    pytest.param(dict(node_types=types(HEAD, CPU4), nodes=[head(), busy_cpu4(free=3)],
                      demands=[{"CPU": 1}] * 4),
                 {"cpu4": 1}, ["launching 1 x cpu4: 1 pending {CPU: 1} tasks/actors"],
                 id="demand-fills-existing-room-first"),
    pytest.param(dict(node_types=types(HEAD, CPU4), nodes=[head(), launching("cpu4")],
                      demands=[{"CPU": 1}] * 4),
                 {}, [], id="a-launching-node-counts-with-its-types-resources"),
    pytest.param(dict(node_types=types(HEAD, CPU4), nodes=[head()],
                      demands=[{"CPU": 3}, {"CPU": 1}, {"CPU": 0, "GPU": 0}]),
                 {"cpu4": 1},
                 ["launching 1 x cpu4: 1 pending {CPU: 3} and 1 pending {CPU: 1} tasks/actors"],
                 id="largest-first-packs-and-zero-asks-nothing"),
    pytest.param(dict(node_types=types(HEAD, CPU4, GPU4), nodes=[head()],
                      demands=[{"CPU": 1}] * 6 + [{"GPU": 1}] * 2),
                 {"gpu4": 1}, ["launching 1 x gpu4: 2 pending {GPU: 1} and 6 pending {CPU: 1} "
                               "tasks/actors"],
                 id="shapes-share-a-node-launched-for-another"),
    # The cheapest fitting type.
    pytest.param(dict(node_types=types(HEAD, CPU2, CPU8, GPU4), nodes=[head()],
                      demands=[{"CPU": 1}]),
                 {"cpu2": 1}, [], id="cheapest-type-for-a-small-shape"),
    pytest.param(dict(node_types=types(HEAD, CPU2, CPU8, GPU4), nodes=[head()],
                      demands=[{"CPU": 5}]),
                 {"cpu8": 1}, [], id="smallest-type-that-fits"),
    pytest.param(dict(node_types=types(HEAD, CPU2, CPU8, GPU4), nodes=[head()],
                      demands=[{"GPU": 1}]),
                 {"gpu4": 1}, [], id="only-a-gpu-type-fits-a-gpu-shape"),
    pytest.param(dict(node_types=types(HEAD, CPU8, GPU1), nodes=[head()], demands=[{"CPU": 1}]),
                 {"cpu8": 1}, [], id="a-gpu-type-is-dear-for-a-cpu-task"),
    pytest.param(dict(node_types=types(HEAD, node_type("b", {"CPU": 2}),
                                       node_type("a", {"CPU": 2})),
                      nodes=[head()], demands=[{"CPU": 1}]),
                 {"a": 1}, [], id="ties-go-by-name"),
    # min_workers.
    pytest.param(dict(node_types=types(HEAD, node_type("cpu4", {"CPU": 4}, min_workers=2)),
                      nodes=[head()]),
                 {"cpu4": 2}, ["launching 2 x cpu4: min_workers 2"], id="min-workers"),
    pytest.param(dict(node_types=types(HEAD, node_type("cpu4", {"CPU": 4}, min_workers=2)),
                      nodes=[head(), launching("cpu4")]),
                 {"cpu4": 1}, [], id="min-workers-counts-launching-nodes"),
    pytest.param(dict(node_types=types(HEAD, node_type("cpu1", {"CPU": 1}, min_workers=8)),
                      nodes=[head()], upscaling_speed=0),
                 {"cpu1": 8}, [], id="min-workers-pass-upscaling-speed"),
    pytest.param(dict(node_types=types(HEAD, node_type("cpu4", {"CPU": 4}, min_workers=1)),
                      nodes=[head()], demands=[{"CPU": 2}] * 2),
                 {"cpu4": 1}, ["launching 1 x cpu4: min_workers 1"],
                 id="demand-packs-onto-min-workers-nodes"),
    # A node being removed holds its slot, but is neither capacity nor one of min_workers.
    pytest.param(dict(node_types=types(HEAD, node_type("cpu4", {"CPU": 4}, min_workers=1,
                                                       max_workers=1)),
                      nodes=[head(), releasing("cpu4")], demands=[{"CPU": 1}]),
                 {}, ["not launching cpu4: max_workers 1 reached (1 of them being removed)"],
                 id="a-releasing-node-holds-its-slot-until-it-is-gone"),
    pytest.param(dict(node_types=types(HEAD, node_type("cpu4", {"CPU": 4}, min_workers=1,
                                                       max_workers=2)),
                      nodes=[head(), releasing("cpu4")]),
                 {"cpu4": 1}, ["launching 1 x cpu4: min_workers 1"],
                 id="a-releasing-node-is-replaced-where-the-limit-leaves-room"),
    pytest.param(dict(node_types=types(HEAD, CPU4), nodes=[head(), releasing("cpu4")],
                      demands=[{"CPU": 1}], max_workers=1),
                 {}, ["the cluster's max_workers 1 reached (1 of them being removed)"],
                 id="a-releasing-node-counts-toward-the-clusters-max-workers"),
    pytest.param(dict(node_types=types(HEAD, CPU4), nodes=[head(), releasing("cpu4")],
                      demands=[{"CPU": 4}]),
                 {"cpu4": 1}, [], id="a-releasing-node-is-no-capacity"),
    pytest.param(dict(node_types=types(node_type("head", {"CPU": 1}, min_workers=0,
                                                 max_workers=0)),
                      nodes=[head()], demands=[{"CPU": 1}]),
                 {}, [], id="the-heads-type-without-workers-never-launches"),
    # max_workers.
    pytest.param(dict(node_types=types(HEAD, node_type("cpu4", {"CPU": 4}, max_workers=3)),
                      nodes=[head(), busy_cpu4(), busy_cpu4()], demands=[{"CPU": 4}] * 8),
                 {"cpu4": 1}, ["not launching cpu4: max_workers 3 reached"],
                 id="a-types-max-workers"),
    pytest.param(dict(node_types=types(HEAD, node_type("cpu2", {"CPU": 2}, max_workers=1), CPU8),
                      nodes=[head(), running("cpu2", {"CPU": 2}, {"CPU": 0})],
                      demands=[{"CPU": 1}]),
                 {"cpu8": 1}, ["not launching cpu2: max_workers 1 reached"],
                 id="the-next-cheapest-type-when-one-is-full"),
    pytest.param(dict(node_types=types(HEAD, CPU4), nodes=[head(), busy_cpu4()],
                      demands=[{"CPU": 4}] * 3, max_workers=2),
                 {"cpu4": 1}, ["not launching more nodes: the cluster's max_workers 2 reached"],
                 id="the-clusters-max-workers-without-the-head"),
    pytest.param(dict(node_types=types(HEAD, node_type("cpu4", {"CPU": 4}, min_workers=3)),
                      nodes=[head()], max_workers=2),
                 {"cpu4": 2}, ["the cluster's max_workers 2 reached"],
                 id="min-workers-within-the-clusters-max-workers"),
    # upscaling_speed.
    pytest.param(dict(node_types=types(HEAD, node_type("cpu1", {"CPU": 1}, max_workers=100)),
                      nodes=[head()], demands=[{"CPU": 1}] * 20),
                 {"cpu1": 5},
                 ["launching 5 x cpu1: 20 pending {CPU: 1} tasks/actors",
                  "not launching 15 more cpu1 yet: upscaling_speed 1 allows 5 pending "
                  "launches of it at once"],
                 id="at-least-5-pending-launches"),
    pytest.param(dict(node_types=types(HEAD, node_type("cpu1", {"CPU": 1}, max_workers=100)),
                      nodes=[head()] + [running("cpu1", {"CPU": 1}, {"CPU": 0})] * 10
                      + [launching("cpu1")] * 3,
                      demands=[{"CPU": 1}] * 30, upscaling_speed=2),
                 {"cpu1": 17}, ["upscaling_speed 2 allows 20 pending launches of it at once "
                                "(3 launching)"],
                 id="upscaling-speed-times-running-nodes-less-those-launching"),
    pytest.param(dict(node_types=types(HEAD, node_type("cpu1", {"CPU": 1}, max_workers=100)),
                      nodes=[head()] + [running("cpu1", {"CPU": 1}, {"CPU": 0})] * 20
                      + [launching("cpu1")] * 10,
                      demands=[{"CPU": 1}] * 30, upscaling_speed=0.5),
                 {}, ["not launching 20 more cpu1 yet"],
                 id="no-launches-while-the-pending-ones-fill-the-cap"),
    pytest.param(dict(node_types=types(HEAD, node_type("cpu1", {"CPU": 1}, max_workers=100)),
                      nodes=[head()], resource_requests=[{"CPU": 1}] * 8,
                      demands=[{"CPU": 1}] * 12),
                 {"cpu1": 7}, ["launching 7 x cpu1: request_resources 7 x {CPU: 1}",
                               "not launching 5 more cpu1 yet"],
                 id="request-resources-pass-upscaling-speed-and-use-its-room"),
    # Infeasible shapes.
    pytest.param(dict(node_types=types(HEAD, CPU4), nodes=[head()],
                      demands=[{"GPU": 1}, {"GPU": 1}, {"CPU": 64}]),
                 {}, ["{GPU: 1} fits no node type", "{CPU: 64} fits no node type"],
                 id="infeasible-shapes"),
    pytest.param(dict(node_types=types(HEAD, node_type("gpu", {"GPU": 1}, max_workers=0)),
                      nodes=[head()], demands=[{"GPU": 1}]),
                 {}, ["{GPU: 1} fits no node type"],
                 id="a-type-with-no-workers-makes-nothing-feasible"),
    pytest.param(dict(node_types=types(node_type("head", {"CPU": 1}, max_workers=0), CPU4),
                      nodes=[running("head", {"CPU": 32}, {"CPU": 0}, is_head=True)],
                      demands=[{"CPU": 16}]),
                 {}, ["{CPU: 16} waits for room on a running node: no node type that may "
                      "launch fits it"],
                 id="a-shape-only-a-running-node-holds-waits-for-it"),
    pytest.param(dict(node_types=types(HEAD, CPU4), nodes=[head()],
                      demands=[{"CPU_group_0123abcd": 1, "bundle_group_0123abcd": 0.001}]),
                 {}, [], id="a-shape-in-a-group-waits-for-its-group"),
    # Placement groups.
    pytest.param(dict(node_types=types(HEAD, CPU2, GPU1), nodes=[head(), busy_cpu4(free=4)],
                      placement_groups=[strict_spread(3, {"GPU": 1})]),
                 {"gpu1": 3},
                 ["launching 3 x gpu1: placement group STRICT_SPREAD [3 x {GPU: 1}]"],
                 id="a-group-that-fits-no-node-launches-the-right-type"),
    pytest.param(dict(node_types=types(HEAD, CPU1), nodes=[head()],
                      placement_groups=[strict_spread(8, {"CPU": 1})], upscaling_speed=0),
                 {"cpu1": 8}, [], id="groups-pass-upscaling-speed"),
    pytest.param(dict(node_types=types(HEAD, CPU4),
                      nodes=[head(1), busy_cpu4(free=1), busy_cpu4(free=2)],
                      placement_groups=[strict_spread(4, {"CPU": 1})]),
                 {"cpu4": 1}, [], id="strict-spread-takes-distinct-existing-nodes-first"),
    pytest.param(dict(node_types=types(HEAD, node_type("gpu1", {"GPU": 1}, max_workers=2)),
                      nodes=[head()], placement_groups=[strict_spread(3, {"GPU": 1})]),
                 {}, ["not launching gpu1: max_workers 2 reached",
                      "placement group STRICT_SPREAD [3 x {GPU: 1}] waits"],
                 id="strict-spread-launches-all-its-nodes-or-none"),
    pytest.param(dict(node_types=types(HEAD, CPU1, node_type("gpu1", {"GPU": 1}, max_workers=2)),
                      nodes=[head()], placement_groups=[strict_spread(3, {"GPU": 1})],
                      demands=[{"CPU": 1}]),
                 {"cpu1": 1}, ["launching 1 x cpu1: 1 pending {CPU: 1} tasks/actors"],
                 id="a-group-that-waits-leaves-no-launches-behind"),
    pytest.param(dict(node_types=types(HEAD, CPU4), nodes=[head(), busy_cpu4(free=4)],
                      placement_groups=[{"bundles": [{"CPU": 1}] * 3, "strategy": "SPREAD"}]),
                 {}, [], id="spread-shares-a-node-rather-than-launch"),
    pytest.param(dict(node_types=types(HEAD, CPU2, CPU4), nodes=[head()],
                      placement_groups=[{"bundles": [{"CPU": 2}, {"CPU": 2}],
                                         "strategy": "STRICT_PACK"}]),
                 {"cpu4": 1}, ["placement group STRICT_PACK [{CPU: 4}]"],
                 id="strict-pack-needs-one-node-for-the-sum"),
    pytest.param(dict(node_types=types(HEAD, CPU4),
                      nodes=[head(), busy_cpu4(free=2), busy_cpu4(free=2)],
                      placement_groups=[{"bundles": [{"CPU": 2}, {"CPU": 2}],
                                         "strategy": "STRICT_PACK"}]),
                 {"cpu4": 1}, [], id="strict-pack-never-splits"),
    pytest.param(dict(node_types=types(HEAD, CPU4),
                      nodes=[head(), busy_cpu4(free=2), busy_cpu4(free=2)],
                      placement_groups=[{"bundles": [{"CPU": 2}, {"CPU": 2}],
                                         "strategy": "PACK"}]),
                 {}, [], id="pack-spreads-when-no-node-holds-it"),
    pytest.param(dict(node_types=types(HEAD, CPU2, CPU4), nodes=[head()],
                      placement_groups=[{"bundles": [{"CPU": 1}, {"CPU": 1}, {"CPU": 1}],
                                         "strategy": "PACK"}]),
                 {"cpu2": 2}, [], id="pack-greedily-onto-new-nodes"),
    pytest.param(dict(node_types=types(HEAD, CPU4), nodes=[head()],
                      placement_groups=[{"bundles": [{"CPU": 1}, {"GPU": 1}],
                                         "strategy": "PACK"}]),
                 {}, ["{GPU: 1} fits no node type"], id="a-group-with-an-infeasible-bundle"),
    pytest.param(dict(node_types=types(HEAD, node_type("cpu4", {"CPU": 4}, max_workers=1)),
                      nodes=[head()], demands=[{"CPU": 1}],
                      placement_groups=[{"bundles": [{"CPU": 4}], "strategy": "PACK"}]),
                 {"cpu4": 1}, ["launching 1 x cpu4: placement group PACK [{CPU: 4}]",
                               "not launching cpu4: max_workers 1 reached"],
                 id="groups-come-before-tasks"),
    # request_resources.
    pytest.param(dict(node_types=types(HEAD, CPU4), nodes=[head(), busy_cpu4()],
                      resource_requests=[{"CPU": 4}]),
                 {}, [], id="a-request-packs-onto-total-not-available"),
    pytest.param(dict(node_types=types(HEAD, CPU4), nodes=[head(), busy_cpu4()],
                      resource_requests=[{"CPU": 4}, {"CPU": 4}, {"CPU": 2}, {"CPU": 2}]),
                 {"cpu4": 2}, ["launching 2 x cpu4: request_resources {CPU: 4}, 2 x {CPU: 2}"],
                 id="a-request-launches-what-the-total-lacks"),
    pytest.param(dict(node_types=types(HEAD, CPU4), nodes=[head()],
                      resource_requests=[{"CPU": 4}], demands=[{"CPU": 1}] * 4),
                 {"cpu4": 1}, [], id="demand-packs-onto-nodes-a-request-launches"),
    pytest.param(dict(node_types=types(HEAD, CPU4), nodes=[head()],
                      resource_requests=[{"GPU": 2}]),
                 {}, ["{GPU: 2} fits no node type"], id="an-infeasible-request"),
    # target_utilization_fraction: scale up.
    pytest.param(dict(node_types=types(HEAD, CPU2, CPU8), nodes=[head(), busy_cpu4(free=1)],
                      target_utilization_fraction=0.5),
                 {"cpu8": 1},
                 ["launching 1 x cpu8: CPU 80% busy, above target_utilization_fraction 0.5"],
                 id="busy-share-above-target-adds-the-type-with-most-of-it"),
    pytest.param(dict(node_types=types(HEAD, CPU2), nodes=[head(), busy_cpu4()],
                      target_utilization_fraction=0.5),
                 {"cpu2": 3}, [], id="enough-nodes-to-bring-the-share-to-target"),
    pytest.param(dict(node_types=types(HEAD, CPU2), nodes=[head(), busy_cpu4(), launching("cpu2"),
                                                           launching("cpu2"), launching("cpu2")],
                      target_utilization_fraction=0.5),
                 {}, [], id="launching-nodes-count-toward-the-share"),
    pytest.param(dict(node_types=types(HEAD, CPU2), nodes=[head(1), busy_cpu4(free=1.5)],
                      target_utilization_fraction=0.5),
                 {}, [], id="busy-share-at-target-launches-nothing"),
    # A type whose last launch failed, backing off.
    pytest.param(dict(node_types=types(HEAD, CPU4, CPU8), nodes=[head()],
                      demands=[{"CPU": 4}], backing_off={"cpu4": 12}),
                 {"cpu8": 1}, ["launching 1 x cpu8: 1 pending {CPU: 4} tasks/actors",
                               "not launching cpu4 for 12 s more: its last launch failed"],
                 id="a-backing-off-type-gives-way-to-the-next-cheapest"),
    pytest.param(dict(node_types=types(HEAD, CPU4), nodes=[head()],
                      demands=[{"CPU": 4}], backing_off={"cpu4": 12}),
                 {}, ["not launching cpu4 for 12 s more: its last launch failed"],
                 id="a-backing-off-type-that-alone-fits-waits"),
    pytest.param(dict(node_types=types(HEAD, node_type("cpu4", {"CPU": 4}, min_workers=1)),
                      nodes=[head()], backing_off={"cpu4": 3}),
                 {}, ["not launching cpu4 for 3 s more: its last launch failed"],
                 id="min-workers-wait-for-the-back-off"),
]


@pytest.mark.parametrize("arguments, launch, reasons", PLANS)
def test_plan(arguments, launch, reasons):
    result = plan(**{"max_workers": 100, **arguments})
    assert result.launch == launch, result.reasons
    for reason in reasons:
        assert any(reason in line for line in result.reasons), (reason, result.reasons)
    if not launch:
        assert not any(line.startswith("launching") for line in result.reasons)


def test_infeasible_lists_each_shape_once():
    result = plan(types(HEAD, CPU4), [head()], demands=[{"GPU": 1}] * 3 + [{"CPU": 64}],
                  resource_requests=[{"GPU": 1}], max_workers=10)
    assert result.infeasible == [{"GPU": 1.0}, {"CPU": 64.0}]  # the request's come first
    assert result.reasons == ["{GPU: 1} fits no node type", "{CPU: 64} fits no node type"]


@pytest.mark.parametrize("fraction", [0, -0.5, 1.5])
def test_target_utilization_fraction_is_a_share(fraction):
    with pytest.raises(ValueError, match="must be above 0 and at most 1"):
        plan(types(HEAD, CPU4), [head()], max_workers=10, target_utilization_fraction=fraction)


def test_an_unknown_strategy_is_named():
    with pytest.raises(ValueError, match="Unknown placement group strategy 'PACKED'"):
        plan(types(HEAD, CPU4), [head()], placement_groups=[{"bundles": [{"CPU": 1}],
                                                              "strategy": "PACKED"}],
             max_workers=10)


# target_utilization_fraction: scale down. Each row: the node types, the nodes, other plan
# arguments, and the indexes of the nodes ``Plan.drain`` must list, in its order.
DRAINS = [
    pytest.param(types(HEAD, CPU4), [head(1), busy_cpu4(free=2), idle_cpu4(10), idle_cpu4(100)],
                 {}, [3, 2], id="the-most-idle-first-while-the-share-stays-under"),
    pytest.param(types(HEAD, CPU4), [head(), busy_cpu4(free=1), idle_cpu4(10), idle_cpu4(100)],
                 {}, [3], id="not-past-the-target"),
    pytest.param(types(HEAD, node_type("cpu4", {"CPU": 4}, min_workers=2)),
                 [head(), busy_cpu4(free=2), idle_cpu4(10), idle_cpu4(100)],
                 {}, [3], id="never-below-min-workers"),
    pytest.param(types(HEAD, CPU4), [running("head", {"CPU": 4}, idle_s=50, is_head=True),
                                     idle_cpu4(10)],
                 {}, [1], id="never-the-head"),
    pytest.param(types(HEAD, CPU4), [head(), busy_cpu4(free=2), idle_cpu4(100)],
                 {"demands": [{"CPU": 3}]}, [], id="not-a-node-pending-demand-fits"),
    pytest.param(types(HEAD, CPU4), [head(), idle_cpu4(100)],
                 {"resource_requests": [{"CPU": 2}]}, [], id="not-a-node-a-request-holds"),
    pytest.param(types(HEAD, CPU4), [head(), busy_cpu4(), idle_cpu4(100)],
                 {"demands": [{"CPU": 4}] * 2}, [], id="not-while-launching"),
    pytest.param(types(HEAD, CPU4), [head(), busy_cpu4(), launching("cpu4")],
                 {}, [], id="not-a-launching-node"),
]


@pytest.mark.parametrize("node_types, nodes, arguments, drained", DRAINS)
def test_plan_drains_below_the_target(node_types, nodes, arguments, drained):
    result = plan(node_types, nodes, max_workers=10, target_utilization_fraction=0.5,
                  **arguments)
    assert result.drain == [nodes[i] for i in drained], result.reasons
    if drained:
        assert f"may drain {len(drained)} x cpu4" in result.reasons[-1]


def test_no_drain_without_a_target():
    result = plan(types(HEAD, CPU4), [head(), idle_cpu4(1000)], max_workers=10)
    assert (result.launch, result.drain, result.reasons) == ({}, [], [])


# idle_to_terminate. Each row: node types, nodes, the timeout, the request_resources
# bundles, and the indexes of the nodes to terminate, in order.
IDLE = [
    pytest.param(types(HEAD, CPU4), [head(), idle_cpu4(30), idle_cpu4(90), idle_cpu4(60)],
                 45, [], [2, 3], id="idle-past-the-timeout-most-idle-first"),
    pytest.param(types(HEAD, node_type("cpu4", {"CPU": 4}, min_workers=2)),
                 [head(), idle_cpu4(300), idle_cpu4(100), idle_cpu4(200)],
                 60, [], [1], id="never-below-min-workers"),
    pytest.param(types(HEAD, node_type("cpu4", {"CPU": 4}, min_workers=1)),
                 [head(), busy_cpu4(), idle_cpu4(300)],
                 60, [], [2], id="busy-nodes-count-toward-min-workers"),
    pytest.param(types(HEAD, node_type("cpu4", {"CPU": 4}, min_workers=1)),
                 [head(), launching("cpu4"), idle_cpu4(300)],
                 60, [], [2], id="launching-nodes-count-toward-min-workers"),
    pytest.param(types(HEAD, CPU4), [running("head", {"CPU": 1}, idle_s=900, is_head=True),
                                     busy_cpu4(), launching("cpu4")],
                 0, [], [], id="never-the-head-a-busy-node-or-a-launching-one"),
    pytest.param(types(HEAD, node_type("cpu4", {"CPU": 4}, min_workers=1)),
                 [head(), releasing("cpu4"), idle_cpu4(300)],
                 60, [], [], id="releasing-nodes-do-not-count-toward-min-workers"),
    pytest.param(types(HEAD, CPU4), [head(), idle_cpu4(100), idle_cpu4(300), idle_cpu4(200)],
                 60, [{"CPU": 4}], [2, 3], id="a-request-keeps-the-least-idle-node"),
    pytest.param(types(HEAD, CPU4), [head(), idle_cpu4(100), idle_cpu4(300)],
                 60, [{"CPU": 2}], [2], id="a-request-of-less-than-a-node-keeps-one"),
    pytest.param(types(HEAD), [head(), running("gone", {"CPU": 2}, idle_s=100)],
                 60, [], [1], id="a-node-of-a-type-no-longer-in-the-file"),
]


@pytest.mark.parametrize("node_types, nodes, idle_timeout_s, requests, expected", IDLE)
def test_idle_to_terminate(node_types, nodes, idle_timeout_s, requests, expected):
    chosen = idle_to_terminate(nodes, node_types, idle_timeout_s, requests)
    assert chosen == [nodes[i] for i in expected]
