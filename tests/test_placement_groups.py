"""Placement groups on a real two-node cluster, as a Ray user drives them."""

import os

import pytest

import raggio as ray
from raggio.cluster_utils import Cluster
from raggio.util import (get_current_placement_group, get_placement_group, placement_group,
                         placement_group_table, remove_placement_group)
from raggio.util.scheduling_strategies import PlacementGroupSchedulingStrategy


@pytest.fixture
def two_nodes():
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    cluster.add_node(num_cpus=2)
    ray.init(address=cluster.address)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@ray.remote
def node_of_task():
    return ray.get_runtime_context().get_node_id()


def _bundle_nodes(pg):
    table = placement_group_table(pg)
    return [table["bundles_to_node_id"][i] for i in sorted(table["bundles_to_node_id"])]


def test_strict_spread_puts_each_bundle_on_its_own_node(two_nodes):
    pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="STRICT_SPREAD")
    assert ray.get(pg.ready(), timeout=30) == pg
    assert placement_group_table(pg)["state"] == "CREATED"
    nodes = _bundle_nodes(pg)
    assert len(set(nodes)) == 2
    ran_on = ray.get([node_of_task.options(
        scheduling_strategy=PlacementGroupSchedulingStrategy(pg, i)).remote() for i in range(2)])
    assert ran_on == nodes
    remove_placement_group(pg)


def test_reserved_resources_leave_the_pool_and_come_back(two_nodes):
    pg = placement_group([{"CPU": 2}], strategy="STRICT_PACK")
    assert pg.wait(30)
    assert ray.available_resources().get("CPU", 0) == 2
    remove_placement_group(pg)
    assert ray.available_resources().get("CPU", 0) == 4
    assert placement_group_table(pg)["state"] == "REMOVED"


def test_an_infeasible_group_stays_pending_with_a_reason(two_nodes):
    pg = placement_group([{"CPU": 1}] * 3, strategy="STRICT_SPREAD")
    assert not pg.wait(1)
    table = placement_group_table(pg)
    assert table["state"] == "PENDING"
    assert "3 different nodes" in table["pending_reason"]
    ready, _ = ray.wait([pg.ready()], timeout=0.5)
    assert ready == []
    remove_placement_group(pg)


def test_pack_actor_and_child_tasks_captured(two_nodes):
    pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="STRICT_PACK", name="packed")
    assert pg.wait(30)
    assert get_placement_group("packed") == pg
    (node,) = set(_bundle_nodes(pg))

    @ray.remote
    class Where:
        def node(self):
            return ray.get_runtime_context().get_node_id()

    actor = Where.options(scheduling_strategy=PlacementGroupSchedulingStrategy(pg, 0)).remote()
    assert ray.get(actor.node.remote(), timeout=30) == node

    @ray.remote
    def parent():
        return ray.get(node_of_task.remote())

    captured = parent.options(scheduling_strategy=PlacementGroupSchedulingStrategy(
        pg, 1, placement_group_capture_child_tasks=True)).remote()
    assert ray.get(captured, timeout=30) == node
    ray.kill(actor)
    remove_placement_group(pg)


def test_bad_arguments_are_value_errors(two_nodes):
    with pytest.raises(ValueError, match="non-empty list"):
        placement_group([])
    with pytest.raises(ValueError, match="strategy"):
        placement_group([{"CPU": 1}], strategy="SOMETIMES")
    with pytest.raises(ValueError, match="empty"):
        placement_group([{}])
    pg = placement_group([{"CPU": 1}])
    with pytest.raises(ValueError, match="bundle index 5 is invalid"):
        node_of_task.options(scheduling_strategy=PlacementGroupSchedulingStrategy(pg, 5)).remote()
    remove_placement_group(pg)


def test_a_gpu_task_in_a_bundle_gets_the_bundle_s_gpu(shutdown_only):
    ray.init(num_cpus=2, num_gpus=2)
    group = placement_group([{"CPU": 1, "GPU": 1}, {"CPU": 1, "GPU": 1}])
    ray.get(group.ready(), timeout=30)

    @ray.remote(num_gpus=1, num_cpus=1)
    def gpus():
        return ray.get_gpu_ids(), os.environ.get("CUDA_VISIBLE_DEVICES")

    seen = [ray.get(gpus.options(scheduling_strategy=PlacementGroupSchedulingStrategy(
        group, placement_group_bundle_index=index)).remote(), timeout=30) for index in (0, 1)]
    assert sorted(ids[0] for ids, _ in seen) == [0, 1]
    assert all(visible == str(ids[0]) for ids, visible in seen)
    remove_placement_group(group)
    ray.get(gpus.remote(), timeout=30)  # the group's GPUs are the node's again


def test_a_gpu_task_in_a_bundle_does_not_reuse_a_cpu_task_s_worker(shutdown_only):
    ray.init(num_cpus=1, num_gpus=1)

    @ray.remote(num_cpus=1)
    def pid():
        return os.getpid()

    cpu_pid = ray.get(pid.remote(), timeout=30)
    group = placement_group([{"CPU": 1, "GPU": 1}])
    ray.get(group.ready(), timeout=30)  # so the CPU task's worker is idle again
    gpu_pid = ray.get(pid.options(num_gpus=1, scheduling_strategy=PlacementGroupSchedulingStrategy(
        group, placement_group_bundle_index=0)).remote(), timeout=30)
    assert gpu_pid != cpu_pid  # as Ray: a worker that ran CPU tasks never runs a GPU one


def test_a_task_in_a_group_knows_it_without_capturing_its_children(shutdown_only):
    ray.init(num_cpus=2)
    group = placement_group([{"CPU": 1}])
    ray.get(group.ready(), timeout=30)

    @ray.remote(num_cpus=0)
    def child():
        return get_current_placement_group()

    @ray.remote(num_cpus=1)
    def parent():
        mine = get_current_placement_group()
        return mine.id, ray.get(child.remote())

    mine, childs = ray.get(parent.options(scheduling_strategy=PlacementGroupSchedulingStrategy(
        group)).remote(), timeout=30)
    assert mine == group.id and childs is None  # not captured: the child runs outside
    assert get_current_placement_group() is None  # the driver
