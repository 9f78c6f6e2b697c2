"""Draining a node (the control store's ``drain_node``, which the autoscaler calls before it
removes a node): a busy node refuses, a drained one takes no more work, and its objects move
to another node, so that removing it loses nothing.

Real nodes of one ``Cluster``: a one-CPU head (where the driver runs) and a one-CPU node
with {"side": 1}, which each test drains.
"""

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import raggio as ray
from raggio.common.states import DRAIN_IDLE_TERMINATION
from raggio.core import context
from raggio.test_utils import wait_until
from raggio.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from raggio.util.state import list_nodes

from metrics.metrics_scraping import samples, scrape, value  # tests/metrics/

_RAGGIO = os.path.join(os.path.dirname(sys.executable), "raggio")
RAGGIO = [_RAGGIO] if os.path.exists(_RAGGIO) else [sys.executable, "-m", "raggio"]
STORE_BYTES = 200 * 1024**2
ARRAY_BYTES = 4 << 20


@pytest.fixture
def side(ray_start_cluster):
    cluster = ray_start_cluster
    cluster.add_node(num_cpus=1, object_store_memory=STORE_BYTES)
    node = cluster.add_node(num_cpus=1, resources={"side": 1}, object_store_memory=STORE_BYTES)
    ray.init(address=cluster.address)
    cluster.wait_for_nodes()
    return cluster, node


def drain(node) -> dict:
    return context.get_core().request("gcs", "drain_node", {
        "node_id": bytes.fromhex(node.node_id), "reason": DRAIN_IDLE_TERMINATION,
        "reason_message": "a test drains it", "deadline_s": 60})


def drained(node) -> dict:
    """Drain the node once it accepts: the driver keeps a finished task's lease a moment
    (``lease_linger_s``), and the node refuses while a lease is held."""
    deadline = time.monotonic() + 30
    while not (reply := drain(node))["is_accepted"]:
        assert time.monotonic() < deadline, f"the node still refuses to drain: {reply}"
        time.sleep(0.1)
    return reply


def store_used(node_id: str) -> int:
    nodes = context.get_core().request("gcs", "get_nodes", None)
    [found] = [n for n in nodes if n["node_id"].hex() == node_id]
    return found.get("object_store_used", 0)


@ray.remote(num_cpus=0, scheduling_strategy="SPREAD")
def spread_node_id():
    """Where it ran: SPREAD takes turns over the nodes that take work."""
    return ray.get_runtime_context().get_node_id()


@ray.remote(resources={"side": 1}, num_returns=2, max_retries=0)  # lost, it stays lost
def make_array(seconds=0.0):
    time.sleep(seconds)
    return np.full(ARRAY_BYTES, 7, dtype=np.uint8), ray.get_runtime_context().get_node_id()


def test_a_busy_node_refuses_and_a_drained_one_takes_no_more_work(side):
    cluster, node = side
    array, where = make_array.remote(3)
    wait_until(lambda: ray.available_resources().get("side", 0) == 0, what="the task to run")
    reply = drain(node)
    assert not reply["is_accepted"] and "lease" in reply["rejection_reason_message"], reply
    assert ray.get(where, timeout=60) == node.node_id
    reply = drained(node)
    assert reply["objects_moved"] == 1 and reply["bytes_moved"] >= ARRAY_BYTES
    [row] = [n for n in list_nodes() if n.node_id == node.node_id]
    assert row.state == "ALIVE" and row.state_message == "draining: a test drains it"
    # What could run there runs elsewhere (SPREAD would use both nodes); what needs it waits.
    assert set(ray.get([spread_node_id.remote() for _ in range(10)], timeout=60)) == {
        cluster.head_node.node_id}
    blocked, _ = make_array.remote()
    assert ray.wait([blocked], timeout=2)[0] == []
    ray.cancel(blocked)


def test_drained_objects_outlive_the_node_and_are_freed_with_their_refs(side):
    cluster, node = side
    head = cluster.head_node.node_id
    array, where = make_array.remote()
    assert ray.get(where, timeout=60) == node.node_id
    ray.wait([array], timeout=30)  # its location only: the only copy stays on the node

    drained(node)
    wait_until(lambda: store_used(head) >= ARRAY_BYTES, what="the head to report the array")
    cluster.remove_node(node)
    wait_until(lambda: not [n for n in ray.nodes() if n["NodeID"] == node.node_id
                            and n["Alive"]], what="the node to leave")
    value = ray.get(array, timeout=30)
    assert value.min() == value.max() == 7
    del value, array
    wait_until(lambda: store_used(head) == 0, what="the moved array to be freed")


def test_two_nodes_drained_at_once_hand_their_objects_to_a_third(side):
    # Neither may take the other's objects: both leave, and every object stays.
    cluster, node = side
    other = cluster.add_node(num_cpus=1, resources={"other": 1}, object_store_memory=STORE_BYTES)
    cluster.wait_for_nodes()
    arrays = [make_array.remote()[0] for _ in range(3)]
    arrays += [make_array.options(resources={"other": 1}).remote()[0] for _ in range(3)]
    assert len(ray.wait(arrays, num_returns=6, timeout=60, fetch_local=False)[0]) == 6
    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(drained, [node, other]))
    assert sum(reply["objects_moved"] for reply in replies) >= 6, replies  # some twice
    cluster.remove_node(node)
    cluster.remove_node(other)
    assert [int(a.sum()) for a in ray.get(arrays, timeout=60)] == [7 * ARRAY_BYTES] * 6


DRIVER_THAT_LEAVES_AN_OBJECT = """
import os, sys
import numpy as np
import raggio as ray
ray.init(address=sys.argv[1])

@ray.remote(resources={"side": 1})
def make():
    return np.ones(%d, dtype=np.uint8)

ref = make.remote()
ray.wait([ref], fetch_local=False)
os._exit(0)  # gone at once, its object still on the node
""" % ARRAY_BYTES


def test_an_object_whose_owner_is_gone_is_not_moved(side):
    cluster, node = side
    head = cluster.head_node.node_id
    env = dict(os.environ, RAGGIO_AUTH_TOKEN=context.get_core().token)
    subprocess.run([sys.executable, "-c", DRIVER_THAT_LEAVES_AN_OBJECT, cluster.address],
                   check=True, timeout=120, env=env)
    wait_until(lambda: store_used(node.node_id) >= ARRAY_BYTES, what="the node to report it")
    reply = drained(node)
    assert reply["objects_moved"] == 0, reply
    # Read live from the head's store (its reports to the control store come each second);
    # the copy it adopted is dropped by a one-way message, so it may take a moment.
    [head_node] = [n for n in ray.nodes() if n["NodeID"] == head]
    wait_until(lambda: value(samples(scrape(head_node["MetricsExportPort"],
                                            context.get_core().token)),
                             "ray_object_store_used_memory") == 0,
               what="the head to drop the copy it adopted")


def test_a_borrower_that_knew_the_old_place_reads_from_the_new_one(side):
    cluster, node = side

    @ray.remote(num_cpus=0)
    class Borrower:
        def hold(self, refs):
            self.ref = refs[0]
            ray.wait([self.ref], fetch_local=False)  # learns where it lives, reads nothing

        def total(self):
            return int(ray.get(self.ref).sum())

    borrower = Borrower.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        cluster.head_node.node_id, soft=False)).remote()
    array, where = make_array.remote()
    assert ray.get(where, timeout=60) == node.node_id
    ray.get(borrower.hold.remote([array]), timeout=60)
    drained(node)
    cluster.remove_node(node)
    assert ray.get(borrower.total.remote(), timeout=60) == 7 * ARRAY_BYTES


def test_a_node_whose_worker_owns_objects_others_hold_refuses(side):
    cluster, node = side

    @ray.remote(resources={"side": 1})
    def put_there():
        return [ray.put(np.zeros(ARRAY_BYTES, dtype=np.uint8))]

    [inner] = ray.get(put_there.remote(), timeout=60)
    reply = drain(node)
    assert not reply["is_accepted"]
    assert "own objects whose refs they passed on" in reply["rejection_reason_message"], reply
    assert ray.get(inner, timeout=30).size == ARRAY_BYTES
    # Refused, it takes work again.
    assert ray.get(make_array.remote()[1], timeout=60) == node.node_id
    # Once the job has ended nobody holds its refs: the node may go.
    ray.shutdown()
    ray.init(address=cluster.address)
    drained(node)


def drain_node_cli(cluster, *args) -> subprocess.CompletedProcess:
    env = dict(os.environ, RAGGIO_AUTH_TOKEN=context.get_core().token)
    return subprocess.run(RAGGIO + ["drain-node", "--address", cluster.address, *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_drain_node_for_preemption_lets_running_work_finish(side):
    cluster, node = side
    array, where = make_array.remote(3)
    wait_until(lambda: ray.available_resources().get("side", 0) == 0, what="the task to run")
    done = drain_node_cli(cluster, "--node-id", node.node_id,
                          "--reason", "DRAIN_NODE_REASON_PREEMPTION",
                          "--reason-message", "spot instance reclaimed")
    assert done.returncode == 0, done.stderr
    assert f"Node {node.node_id} is drained: it takes no more work" in done.stdout
    assert ray.get(where, timeout=60) == node.node_id  # what ran there finished
    assert set(ray.get([spread_node_id.remote() for _ in range(6)], timeout=60)) == {
        cluster.head_node.node_id}


def test_drain_node_names_a_bad_node_id_and_a_refusal(side):
    cluster, node = side
    bad = drain_node_cli(cluster, "--node-id", "abc", "--reason",
                         "DRAIN_NODE_REASON_IDLE_TERMINATION", "--reason-message", "x")
    assert bad.returncode != 0 and "not a node id" in bad.stderr
    assert "raggio list nodes" in bad.stderr
    array, where = make_array.remote(3)
    wait_until(lambda: ray.available_resources().get("side", 0) == 0, what="the task to run")
    refused = drain_node_cli(cluster, "--node-id", node.node_id, "--reason",
                             "DRAIN_NODE_REASON_IDLE_TERMINATION", "--reason-message", "x")
    assert refused.returncode == 1
    assert "The drain request was not accepted: 1 worker lease(s) in use" in refused.stderr
    ray.get(where, timeout=60)
