"""Node labels and label scheduling, as in Ray 2.60.

Nodes carry the labels they were started with plus Ray's ``ray.io/node-id``;
tasks and actors pick nodes with ``label_selector``, ``fallback_strategy``
or ``NodeLabelSchedulingStrategy``; a request no node's labels allow waits
(infeasible), with its reason, until such a node joins.
"""

import re

import pytest

import raggio as ray
from raggio.common.labels import parse_labels_flag
from raggio.common.resources import why_waiting
from raggio.test_utils import wait_until
from raggio.util.scheduling_strategies import (DoesNotExist, Exists, In,
                                               NodeLabelSchedulingStrategy, NotIn)
from raggio.util.state import list_nodes, list_tasks


@ray.remote(num_cpus=0.1)
def node_of_task():
    return ray.get_runtime_context().get_node_id()


@ray.remote(num_cpus=0.1)
class Where:
    def node(self):
        return ray.get_runtime_context().get_node_id()


def test_init_labels_show_in_nodes_and_the_runtime_context(shutdown_only):
    ray.init(num_cpus=1, labels={"gpu_type": "A100", "region": "us"})
    node = ray.nodes()[0]
    assert node["Labels"] == {"gpu_type": "A100", "region": "us",
                              "ray.io/node-id": node["NodeID"]}
    assert ray.get_runtime_context().get_node_labels()["region"] == "us"

    @ray.remote
    def labels_seen_by_a_task():
        return ray.get_runtime_context().get_node_labels()["gpu_type"]

    assert ray.get(labels_seen_by_a_task.remote()) == "A100"


def test_default_labels_from_the_environment(shutdown_only, monkeypatch):
    monkeypatch.setenv("RAY_NODE_MARKET_TYPE", "spot")
    monkeypatch.setenv("RAY_NODE_TYPE_NAME", "worker-group-1")
    monkeypatch.setenv("RAY_NODE_REGION", "us-central2")
    monkeypatch.setenv("RAY_NODE_ZONE", "us-central2-b")
    ray.init(num_cpus=1)
    labels = ray.nodes()[0]["Labels"]
    assert labels == {"ray.io/market-type": "spot", "ray.io/node-group": "worker-group-1",
                      "ray.io/availability-region": "us-central2",
                      "ray.io/availability-zone": "us-central2-b",
                      "ray.io/node-id": ray.nodes()[0]["NodeID"]}


def test_bad_init_labels(shutdown_only):
    with pytest.raises(ValueError, match="This is reserved for Ray defined labels"):
        ray.init(num_cpus=1, labels={"ray.io/node-id": "mine"})
    with pytest.raises(ValueError, match="Invalid label key value `not ok`"):
        ray.init(num_cpus=1, labels={"region": "not ok"})


def test_labels_cannot_be_given_when_joining_a_cluster(ray_start_cluster):
    ray_start_cluster.add_node(num_cpus=1)
    with pytest.raises(ValueError, match="labels must not be provided"):
        ray.init(address=ray_start_cluster.address, labels={"gpu_type": "A100"})


def test_cluster_labels_and_label_scheduling(ray_start_cluster):
    cluster = ray_start_cluster
    us = cluster.add_node(num_cpus=1, labels={"region": "us"})
    eu = cluster.add_node(num_cpus=1, labels={"region": "eu", "gpu": "A100"})
    with pytest.raises(ValueError, match="Invalid label key name"):
        cluster.add_node(num_cpus=1, labels={"bad key": "x"})
    ray.init(address=cluster.address)
    by_region = {node["Labels"]["region"]: node["NodeID"] for node in ray.nodes()}
    for node in ray.nodes():
        assert node["Labels"]["ray.io/node-id"] == node["NodeID"]
    assert {node["node_id"]: node["labels"] for node in list_nodes(detail=True)}[
        by_region["eu"]] == {"region": "eu", "gpu": "A100", "ray.io/node-id": by_region["eu"]}
    us_id, eu_id = by_region["us"], by_region["eu"]
    assert us.node_id != eu.node_id

    def ran_on(**options):
        return ray.get(node_of_task.options(**options).remote(), timeout=30)

    # label_selector, with each of Ray's operators.
    assert ran_on(label_selector={"region": "eu"}) == eu_id
    assert ran_on(label_selector={"region": "!eu"}) == us_id
    assert ran_on(label_selector={"region": "in(asia, us)"}) == us_id
    assert ran_on(label_selector={"region": "!in(us,asia)", "gpu": "A100"}) == eu_id
    assert ran_on(label_selector={"ray.io/node-id": us_id}) == us_id
    # fallback_strategy: the first selector some node meets.
    assert ran_on(label_selector={"region": "asia"},
                  fallback_strategy=[{"label_selector": {"region": "mars"}},
                                     {"label_selector": {"gpu": "A100"}}]) == eu_id
    # NodeLabelSchedulingStrategy, for actors too.
    for hard, expected in [({"gpu": Exists()}, eu_id), ({"gpu": DoesNotExist()}, us_id),
                           ({"region": In("eu")}, eu_id), ({"region": NotIn("eu")}, us_id)]:
        actor = Where.options(scheduling_strategy=NodeLabelSchedulingStrategy(hard)).remote()
        assert ray.get(actor.node.remote(), timeout=30) == expected
    soft = Where.options(scheduling_strategy=NodeLabelSchedulingStrategy(
        {}, soft={"region": In("us")})).remote()
    assert ray.get(soft.node.remote(), timeout=30) == us_id
    assert ray.get(Where.options(label_selector={"region": "eu"}).remote().node.remote(),
                   timeout=30) == eu_id

    # No node has region=asia: the task and the actor wait, and say why.
    pending = node_of_task.options(label_selector={"region": "asia"}).remote()
    waiting_actor = Where.options(label_selector={"region": "asia"}).remote()
    ready, _ = ray.wait([pending], timeout=1)
    assert not ready

    def label_demands():
        return [demand for node in _node_records() for demand in node["demand"]
                if demand.get("labels")]

    demands = wait_until(lambda: len(label_demands()) == 2 and label_demands(),
                         what="the pending task and actor in the nodes' demand")
    assert {demand["for_actor"] for demand in demands} == {None, "Where"}
    reason = why_waiting({"CPU": 0.1}, _node_records(), demands[0]["labels"])
    assert "no node that could fit it has labels matching region in (asia)" in reason

    # The task history says so too.
    task = wait_until(lambda: [t for t in list_tasks(detail=True)
                               if t["task_id"] == pending.task_id().hex()
                               and t.get("pending_reason")], what="the pending task's reason")
    assert "region in (asia)" in task[0]["pending_reason"]

    # A node with the label joins: the task runs there.
    cluster.add_node(num_cpus=1, labels={"region": "asia"})
    asia_id = wait_until(lambda: {node["Labels"]["region"]: node["NodeID"]
                                  for node in ray.nodes()}.get("asia"))
    assert ray.get(pending, timeout=30) == asia_id
    assert ray.get(waiting_actor.node.remote(), timeout=30) == asia_id


def _node_records() -> list[dict]:
    """The control store's node records, with each node's pending demand."""
    from raggio.core import context
    return context.get_core().request("gcs", "get_nodes", None)


@pytest.mark.parametrize("text, expected", [
    ("", {}), ("region=", {"region": ""}), ("{}", {}),
    ("ray.io/accelerator-type=A100,region=us-west4",
     {"ray.io/accelerator-type": "A100", "region": "us-west4"}),
    ('"gpu_type=A100"', {"gpu_type": "A100"}),
    ('{"gpu_type": "A100", "region": "us"}', {"gpu_type": "A100", "region": "us"}),
])
def test_the_labels_flag(text, expected):
    assert parse_labels_flag(text) == expected


@pytest.mark.parametrize("text, message", [
    ("ray.io/accelerator-type=type=A100", "Label string is not a key-value pair."),
    ('{"gpu_type": 1}', "Label string is not a key-value pair."),
    ('{"ray.io/node-id": "111"}', "Label string is not a key-value pair."),
    ("-bad=1", "Invalid label key name `-bad`"),
    ("region=bad value", "Invalid label key value `bad value`"),
])
def test_bad_labels_flags(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_labels_flag(text)
