"""Several real nodes on one machine (``cluster_utils.Cluster``): placement, spilling,
node affinity, objects across nodes, and nodes that go away.

Every node is its own node manager process on loopback, so "which node ran
this" is ``get_runtime_context().get_node_id()`` compared with the
``ClusterNode.node_id`` that ``add_node`` returned. Tasks that must overlap
meet at a barrier of files under ``tmp_path`` (all nodes share this machine's
file system). What tasks run refers only to the standard library, numpy and
raggio, as workers cannot import this module.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import raggio as ray
from raggio.test_utils import wait_until
from raggio.util.scheduling_strategies import NodeAffinitySchedulingStrategy

#: Each node's object store: room for a few 50 MB objects.
STORE_BYTES = 300 * 1024**2
#: A node id no node has (28 bytes, as node ids are).
UNKNOWN_NODE_ID = "ab" * 28


@ray.remote
def node_id():
    return ray.get_runtime_context().get_node_id()


@ray.remote
def sleepy_node_id(seconds):
    time.sleep(seconds)
    return ray.get_runtime_context().get_node_id()


@ray.remote
def meet(barrier_dir, name, expected, timeout_s=30.0):
    """Arrive at a barrier of files; return this node's id once ``expected`` tasks arrived."""
    open(os.path.join(barrier_dir, name), "w").close()
    deadline = time.monotonic() + timeout_s
    while len(os.listdir(barrier_dir)) < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {os.listdir(barrier_dir)} arrived at the barrier")
        time.sleep(0.02)
    return ray.get_runtime_context().get_node_id()


def wait_until_head_knows(node):
    """Wait until the head's node manager can place tasks on ``node``.

    ``add_node`` returns once the control store has the node; the other node
    managers learn of it from the control store's next broadcast, tens of
    milliseconds later (Ray's own tests sleep for this). Until then a task
    pinned there fails as unschedulable.
    """
    strategy = NodeAffinitySchedulingStrategy(node.node_id, soft=False)

    def placed():
        try:
            ref = node_id.options(scheduling_strategy=strategy).remote()
            return ray.get(ref, timeout=60) == node.node_id
        except ray.exceptions.TaskUnschedulableError:
            return False

    wait_until(placed, what=f"the head to know node {node.node_id}")


@pytest.fixture
def two_nodes(ray_start_cluster):
    """A one-CPU head and a one-CPU node with {"special": 1}; the driver is on the head."""
    cluster = ray_start_cluster
    cluster.add_node(num_cpus=1, object_store_memory=STORE_BYTES)
    special = cluster.add_node(num_cpus=1, resources={"special": 1},
                               object_store_memory=STORE_BYTES)
    ray.init(address=cluster.address)
    wait_until_head_knows(special)
    return cluster, special


def alive_by_id():
    return {n["NodeID"]: n["Alive"] for n in ray.nodes()}


# -- the cluster as the driver sees it --


@pytest.mark.parametrize("ray_start_cluster", [{"num_cpus": 1}], indirect=True)
def test_nodes_and_cluster_resources(ray_start_cluster):
    cluster = ray_start_cluster  # Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    head = cluster.head_node
    special = cluster.add_node(num_cpus=1, resources={"special": 1})
    ray.init(address=cluster.address)

    nodes = {n["NodeID"]: n for n in ray.nodes()}
    assert set(nodes) == {head.node_id, special.node_id}
    for node in nodes.values():
        assert node["Alive"] is True
        assert node["NodeManagerAddress"] == "127.0.0.1"
        assert node["Resources"]["CPU"] == 1
    assert nodes[special.node_id]["Resources"]["special"] == 1
    assert "special" not in nodes[head.node_id]["Resources"]

    total = ray.cluster_resources()
    assert total["CPU"] == 2
    assert total["special"] == 1
    # The driver runs on the head, and its tasks do too while the head has room.
    assert ray.get_runtime_context().get_node_id() == head.node_id
    assert ray.get(node_id.remote(), timeout=60) == head.node_id


def test_task_needing_custom_resource_runs_on_that_node(two_nodes):
    cluster, special = two_nodes
    refs = [node_id.options(resources={"special": 1}).remote() for _ in range(3)]
    assert ray.get(refs, timeout=60) == [special.node_id] * 3


def test_tasks_spill_to_other_node_when_local_is_busy(two_nodes):
    cluster, special = two_nodes
    ran_on = ray.get([sleepy_node_id.remote(0.5) for _ in range(4)], timeout=60)
    assert set(ran_on) == {cluster.head_node.node_id, special.node_id}


def test_actors_that_each_need_a_whole_node_all_start(ray_start_cluster):
    # Created at once, they are all sent where the views (a moment old) show room; a node
    # that filled up meanwhile must send the next one on, not keep it waiting for ever.
    cluster = ray_start_cluster
    nodes = [cluster.add_node(num_cpus=2) for _ in range(4)]
    ray.init(address=cluster.address)
    cluster.wait_for_nodes()

    @ray.remote(num_cpus=2)
    class Whole:
        def node(self):
            return ray.get_runtime_context().get_node_id()

    actors = [Whole.remote() for _ in nodes]
    placed = ray.get([actor.node.remote() for actor in actors], timeout=60)
    assert sorted(placed) == sorted(node.node_id for node in nodes)


def test_spread_uses_both_nodes(ray_start_cluster, tmp_path):
    # Two CPUs a node: the default strategy would run both tasks on the head.
    cluster = ray_start_cluster
    cluster.add_node(num_cpus=2, object_store_memory=STORE_BYTES)
    other = cluster.add_node(num_cpus=2, object_store_memory=STORE_BYTES)
    ray.init(address=cluster.address)
    wait_until_head_knows(other)
    refs = [meet.options(scheduling_strategy="SPREAD").remote(str(tmp_path), str(i), 2)
            for i in range(2)]
    assert set(ray.get(refs, timeout=60)) == {cluster.head_node.node_id, other.node_id}


# -- node affinity --


def test_hard_node_affinity_pins_tasks(two_nodes):
    cluster, special = two_nodes
    for target in (special.node_id, cluster.head_node.node_id):
        strategy = NodeAffinitySchedulingStrategy(target, soft=False)
        refs = [node_id.options(scheduling_strategy=strategy).remote() for _ in range(3)]
        assert ray.get(refs, timeout=60) == [target] * 3


def test_hard_affinity_to_unknown_or_dead_node_fails(two_nodes):
    cluster, special = two_nodes
    unknown = NodeAffinitySchedulingStrategy(UNKNOWN_NODE_ID, soft=False)
    with pytest.raises(ray.exceptions.TaskUnschedulableError, match=UNKNOWN_NODE_ID):
        ray.get(node_id.options(scheduling_strategy=unknown).remote(), timeout=60)

    cluster.remove_node(special)
    cluster.wait_for_nodes()
    dead = NodeAffinitySchedulingStrategy(special.node_id, soft=False)
    with pytest.raises(ray.exceptions.TaskUnschedulableError, match=special.node_id):
        ray.get(node_id.options(scheduling_strategy=dead).remote(), timeout=60)
    assert ray.get(node_id.remote(), timeout=60) == cluster.head_node.node_id


def test_soft_affinity_to_unknown_node_runs_anyway(two_nodes):
    cluster, special = two_nodes
    strategy = NodeAffinitySchedulingStrategy(UNKNOWN_NODE_ID, soft=True)
    ran_on = ray.get(node_id.options(scheduling_strategy=strategy).remote(), timeout=60)
    assert ran_on in {cluster.head_node.node_id, special.node_id}


def test_actor_with_custom_resource_is_placed_on_that_node(two_nodes):
    cluster, special = two_nodes

    @ray.remote(resources={"special": 1})
    class Where:
        def node_id(self):
            return ray.get_runtime_context().get_node_id()

    actor = Where.remote()
    assert ray.get(actor.node_id.remote(), timeout=60) == special.node_id


# -- objects across nodes --


def test_large_object_from_other_node_is_fetched_by_driver(two_nodes):
    cluster, special = two_nodes

    @ray.remote(resources={"special": 1})
    def make(n):
        return np.arange(n, dtype=np.int64)

    n = 50 * 1024**2 // 8  # 50 MB
    array = ray.get(make.remote(n), timeout=60)
    assert array.shape == (n,)
    assert np.array_equal(array, np.arange(n, dtype=np.int64))


def test_large_object_put_on_driver_is_read_on_other_node(two_nodes):
    cluster, special = two_nodes

    @ray.remote(resources={"special": 1})
    def summarize(array):
        return (ray.get_runtime_context().get_node_id(), array.shape[0], int(array[-1]),
                int(array.sum()))

    n = 50 * 1024**2 // 8
    ref = ray.put(np.arange(n, dtype=np.int64))
    where, length, last, total = ray.get(summarize.remote(ref), timeout=60)
    assert where == special.node_id
    assert (length, last, total) == (n, n - 1, n * (n - 1) // 2)


# -- nodes that go away --


def test_removed_node_is_dead_and_its_running_task_is_retried(two_nodes, tmp_path):
    cluster, special = two_nodes
    started = tmp_path / "started"

    @ray.remote(max_retries=2)
    def slow_the_first_time(marker):
        if not os.path.exists(marker):
            open(marker, "w").close()
            time.sleep(120)
        return ray.get_runtime_context().get_node_id()

    strategy = NodeAffinitySchedulingStrategy(special.node_id, soft=True)
    ref = slow_the_first_time.options(scheduling_strategy=strategy).remote(str(started))
    wait_until(started.exists, what="the task to start on the special node")
    cluster.remove_node(special)

    assert ray.get(ref, timeout=60) == cluster.head_node.node_id
    assert alive_by_id() == {cluster.head_node.node_id: True, special.node_id: False}
    assert "special" not in ray.cluster_resources()


def test_actor_restarts_on_another_node_after_its_node_is_removed(two_nodes):
    cluster, special = two_nodes

    @ray.remote(max_restarts=1, max_task_retries=1)
    class Where:
        def node_id(self):
            return ray.get_runtime_context().get_node_id()

    strategy = NodeAffinitySchedulingStrategy(special.node_id, soft=True)
    actor = Where.options(scheduling_strategy=strategy).remote()
    assert ray.get(actor.node_id.remote(), timeout=60) == special.node_id

    cluster.remove_node(special)
    assert ray.get(actor.node_id.remote(), timeout=60) == cluster.head_node.node_id


# -- lease requests: waiting for resources, retrying unreachable nodes --


@pytest.fixture
def quick_to_give_up(ray_start_cluster):
    """``two_nodes`` whose workers give up a lease request after half a second of failed
    attempts (the driver keeps the default). Their submitters are tasks on the head."""
    cluster = ray_start_cluster
    cluster.add_node(num_cpus=1, object_store_memory=STORE_BYTES,
                     _system_config={"lease_retry_timeout_s": 0.5})
    special = cluster.add_node(num_cpus=1, resources={"special": 1},
                               object_store_memory=STORE_BYTES)
    ray.init(address=cluster.address)
    return cluster, special


@ray.remote(num_cpus=0)
def on_special(seconds_each):
    """From a task on the head: run ``sleepy_node_id`` on the special node, once for each
    of ``seconds_each`` at the same time; their node ids."""
    needs_special = sleepy_node_id.options(resources={"special": 1})
    return ray.get([needs_special.remote(seconds) for seconds in seconds_each])


def test_lease_waiting_for_resources_outlasts_the_retry_timeout(quick_to_give_up):
    """Only failed attempts count against the timeout: a request that a node holds until
    its resources are free waits for as long as that takes."""
    _, special = quick_to_give_up
    assert ray.get(on_special.remote([3.0, 0]), timeout=60) == [special.node_id] * 2


def test_lease_spilled_to_a_hung_node_fails_after_the_retry_timeout(quick_to_give_up):
    """A node that is in every view but does not answer: the request spilled there is
    retried until the retry timeout, then its task fails saying what it waited for."""
    _, special = quick_to_give_up
    os.kill(special.process.pid, signal.SIGSTOP)
    try:
        # It fails with this error, not the get's timeout: it gave up before the control
        # store declared the node dead (about 15 s of missed pings), which would have left
        # the task waiting for ever for a node with "special".
        with pytest.raises(ray.exceptions.RayError,
                           match=r"Gave up asking for a worker for a task needing .*special"):
            ray.get(on_special.remote([0]), timeout=60)
    finally:
        os.kill(special.process.pid, signal.SIGCONT)


def test_wait_for_nodes_after_add_and_remove(ray_start_cluster):
    cluster = ray_start_cluster
    head = cluster.add_node(num_cpus=1, object_store_memory=STORE_BYTES)
    ray.init(address=cluster.address)
    extra = [cluster.add_node(wait=False, num_cpus=1, object_store_memory=STORE_BYTES)
             for _ in range(2)]
    cluster.wait_for_nodes()
    ids = {head.node_id} | {n.node_id for n in extra}
    assert cluster.alive_node_ids() == ids
    assert alive_by_id() == dict.fromkeys(ids, True)
    assert ray.cluster_resources()["CPU"] == 3

    cluster.remove_node(extra[0])
    cluster.wait_for_nodes()
    assert cluster.alive_node_ids() == ids - {extra[0].node_id}
    assert alive_by_id()[extra[0].node_id] is False
    assert ray.cluster_resources()["CPU"] == 2
    assert ray.get(node_id.remote(), timeout=60) == head.node_id


# -- the harness itself --

_OWNER_SCRIPT = """
from raggio.cluster_utils import Cluster
cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1,
                                                        "object_store_memory": %d})
cluster.add_node(num_cpus=1, object_store_memory=%d)
# Exit without cluster.shutdown(), as a crashed test or a script that forgot would.
""" % (STORE_BYTES, STORE_BYTES)

#: Runs the owner script as a child subreaper, so that whatever the owner leaves behind is
#: re-parented here rather than to init; prints what still runs 10 s after the owner exited,
#: then kills it.
_SUBREAPER_SCRIPT = """
import ctypes, json, os, subprocess, sys, time
import psutil
PR_SET_CHILD_SUBREAPER = 36
assert ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
owner = subprocess.run([sys.executable, "-c", sys.argv[1]], timeout=60)
assert owner.returncode == 0, owner.returncode

def running():
    while True:  # reap the orphans that exited
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                break
        except ChildProcessError:
            break
    out = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.Error:
            pass
    return out

deadline = time.monotonic() + 10
while running() and time.monotonic() < deadline:
    time.sleep(0.05)
left = running()
print(json.dumps([" ".join(p.cmdline())[:100] for p in left]), flush=True)
for proc in left:
    proc.kill()
"""


def test_cluster_processes_exit_with_their_owner():
    """Cluster's promise: every node is tied to its owner, so nothing outlives it."""
    result = subprocess.run([sys.executable, "-c", _SUBREAPER_SCRIPT, _OWNER_SCRIPT],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    left = json.loads(result.stdout.splitlines()[-1])
    assert left == [], f"still running 10 s after the Cluster's owner exited: {left}"
