"""Real faults on real processes: dead and hung nodes, lost objects, dead owners.

Each test says what the user sees: a result that still arrives (rebuilt or retried elsewhere)
or an error that says why not.
"""

import os
import signal
import sys
import time

import numpy as np
import psutil
import pytest

import raggio as ray
from raggio.test_utils import wait_until
from raggio.util.scheduling_strategies import NodeAffinitySchedulingStrategy


def two_nodes(cluster):
    cluster.add_node(num_cpus=1, object_store_memory=150 * 1024**2)
    second = cluster.add_node(num_cpus=1, object_store_memory=150 * 1024**2)
    ray.init(address=cluster.address)
    return second


def on(node, soft=True):
    return NodeAffinitySchedulingStrategy(node.node_id, soft=soft)


def on_the_head():
    """The driver's node, which tests never remove."""
    return NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)


@ray.remote
def make(value):
    return np.full(2_000_000, value)  # 16 MB: lives in the arena of the node that ran it


@ray.remote
def add_one(array):
    return array + 1


def test_lost_objects_are_rebuilt_from_lineage_recursively(ray_start_cluster):
    second = two_nodes(ray_start_cluster)
    first = make.options(scheduling_strategy=on(second)).remote(7)
    chained = add_one.options(scheduling_strategy=on(second)).remote(first)
    ray.wait([chained])
    ray_start_cluster.remove_node(second)
    # Both objects lived only on the removed node: the chain runs again on the head.
    assert ray.get(chained, timeout=60)[0] == 8
    assert ray.get(first, timeout=60)[0] == 7


def test_lost_object_without_retries_cannot_be_rebuilt(ray_start_cluster):
    second = two_nodes(ray_start_cluster)
    ref = make.options(max_retries=0, scheduling_strategy=on(second)).remote(1)
    ray.wait([ref])
    ray_start_cluster.remove_node(second)
    with pytest.raises(ray.exceptions.ObjectReconstructionFailedError,
                       match="max_retries=0"):
        ray.get(ref, timeout=60)


def test_objects_of_a_dead_owner_raise_owner_died(ray_start_cluster):
    second = two_nodes(ray_start_cluster)

    @ray.remote
    def put_and_return_ref():
        return [ray.put(np.ones(1_000_000))]  # owned by this worker, on the second node

    (inner,) = ray.get(put_and_return_ref.options(scheduling_strategy=on(second, False)).remote())
    ray_start_cluster.remove_node(second)
    with pytest.raises(ray.exceptions.OwnerDiedError):
        ray.get(inner, timeout=60)


def _freeze(node):
    processes = [psutil.Process(node.process.pid)]
    processes += processes[0].children(recursive=True)
    for proc in processes:
        proc.send_signal(signal.SIGSTOP)
    return processes


def test_a_hung_node_is_declared_dead_and_its_actor_restarts_elsewhere(ray_start_cluster):
    second = two_nodes(ray_start_cluster)

    @ray.remote(max_restarts=1, max_task_retries=-1)
    class Where:
        def node(self):
            return ray.get_runtime_context().get_node_id()

    actor = Where.options(scheduling_strategy=on(second)).remote()
    assert ray.get(actor.node.remote(), timeout=60) == second.node_id
    frozen = _freeze(second)
    try:
        # Health checks (3 pings unanswered for 5 s) notice it; the call fails over to the head.
        assert ray.get(actor.node.remote(), timeout=60) == ray_start_cluster.head_node.node_id
        alive = {n["NodeID"]: n["Alive"] for n in ray.nodes()}
        assert alive[second.node_id] is False
    finally:
        for proc in frozen:
            proc.send_signal(signal.SIGCONT)
    # Woken up, the node learns it was declared dead and exits instead of rejoining.
    wait_until(lambda: second.process.poll() is not None, what="the dead node to exit")


def test_a_task_on_a_hung_node_is_retried_elsewhere(ray_start_cluster, tmp_path):
    second = two_nodes(ray_start_cluster)
    started = tmp_path / "started"

    @ray.remote(max_retries=2)
    def slow_where(flag):
        import os
        import time as t
        if not os.path.exists(flag):
            open(flag, "w").close()
            t.sleep(600)  # the first attempt hangs with its node
        return ray.get_runtime_context().get_node_id()

    ref = slow_where.options(scheduling_strategy=on(second)).remote(str(started))
    wait_until(started.exists, what="the first attempt to start")
    frozen = _freeze(second)
    try:
        assert ray.get(ref, timeout=60) == ray_start_cluster.head_node.node_id
    finally:
        for proc in frozen:
            proc.send_signal(signal.SIGCONT)


def test_actor_on_a_dead_node_says_so(ray_start_cluster):
    second = two_nodes(ray_start_cluster)

    @ray.remote
    class Once:
        def ping(self):
            return "pong"

    actor = Once.options(scheduling_strategy=on(second)).remote()
    assert ray.get(actor.ping.remote(), timeout=60) == "pong"
    ray_start_cluster.remove_node(second)
    with pytest.raises(ray.exceptions.ActorDiedError, match="node .* died"):
        for _ in range(100):  # calls sent before the death is known may be retried once
            ray.get(actor.ping.remote(), timeout=60)
            time.sleep(0.1)


def test_actor_death_names_the_exit_code_or_signal(ray_start_regular):
    import os

    @ray.remote
    class Fragile:
        def pid(self):
            return os.getpid()

        def exit_with(self, code):
            os._exit(code)

    exiting = Fragile.remote()
    ray.get(exiting.pid.remote())
    exiting.exit_with.remote(3)
    with pytest.raises(ray.exceptions.ActorDiedError, match="exited with exit code 3"):
        for _ in range(100):
            ray.get(exiting.pid.remote(), timeout=60)
            time.sleep(0.1)

    killed = Fragile.remote()
    os.kill(ray.get(killed.pid.remote()), signal.SIGKILL)
    with pytest.raises(ray.exceptions.ActorDiedError, match="exited with signal SIGKILL"):
        for _ in range(100):
            ray.get(killed.pid.remote(), timeout=60)
            time.sleep(0.1)


def test_the_memory_monitor_fails_tasks_and_actors_with_the_reason(shutdown_only, monkeypatch):
    # A threshold of 0 makes every node "short of memory": the monitor kills whatever runs.
    monkeypatch.setenv("RAGGIO_MEMORY_USAGE_THRESHOLD", "0.0")
    ray.init(num_cpus=1)

    @ray.remote(max_retries=1)
    def busy():
        time.sleep(30)

    with pytest.raises(ray.exceptions.OutOfMemoryError, match="ran low on memory"):
        ray.get(busy.remote(), timeout=60)

    @ray.remote
    class Busy:
        def work(self):
            time.sleep(30)

    with pytest.raises(ray.exceptions.ActorDiedError, match="ran out of memory"):
        ray.get(Busy.remote().work.remote(), timeout=60)


def test_lost_values_of_a_generator_are_rebuilt(ray_start_cluster):
    second = two_nodes(ray_start_cluster)

    @ray.remote
    def arrays(n):
        for i in range(n):
            yield np.full(2_000_000, i)  # each lives in the second node's arena

    refs = list(arrays.options(scheduling_strategy=on(second)).remote(3))
    ray.wait(refs, num_returns=3)
    ray_start_cluster.remove_node(second)
    # The generator runs again on the head; each lost value comes back from that run.
    assert [int(ray.get(ref, timeout=60)[0]) for ref in refs] == [0, 1, 2]


def test_lost_values_of_a_dynamic_generator_are_rebuilt(ray_start_cluster):
    second = two_nodes(ray_start_cluster)

    @ray.remote(num_returns="dynamic")
    def arrays(n):
        for i in range(n):
            yield np.full(2_000_000, i)

    refs = list(ray.get(arrays.options(scheduling_strategy=on(second)).remote(4)))
    ray_start_cluster.remove_node(second)
    # One run again on the head rebuilds every value: the first read starts it, the others
    # wait for it rather than each running the task once more (max_retries is 3).
    assert [int(ray.get(ref, timeout=60)[0]) for ref in refs] == [0, 1, 2, 3]


@ray.remote
class Flag:
    """A switch the test flips between a generator's first run and the run that rebuilds it;
    made with ``on_the_head()``, so that removing the second node does not take it away."""

    def __init__(self):
        self.value = False

    def set(self):
        self.value = True

    def get(self):
        return self.value


def test_a_generator_yielding_fewer_values_when_rebuilt_fails_the_missing(ray_start_cluster):
    second = two_nodes(ray_start_cluster)
    flag = Flag.options(scheduling_strategy=on_the_head()).remote()

    @ray.remote(num_returns="dynamic")
    def arrays(flag):
        count = 2 if ray.get(flag.get.remote()) else 3  # fewer on the second run
        for i in range(count):
            yield np.full(2_000_000, i)

    refs = list(ray.get(arrays.options(scheduling_strategy=on(second)).remote(flag)))
    ray.get(flag.set.remote())
    ray_start_cluster.remove_node(second)
    assert [int(ray.get(ref, timeout=60)[0]) for ref in refs[:2]] == [0, 1]
    with pytest.raises(ray.exceptions.RayTaskError, match="yielded 2 values, where its first "
                                                          "run yielded 3") as info:
        ray.get(refs[2], timeout=60)
    assert isinstance(info.value, ray.exceptions.StreamingGeneratorReplayInconsistentError)


def test_a_generator_whose_worker_dies_when_rebuilt_fails_with_worker_crashed(
        ray_start_cluster):
    second = two_nodes(ray_start_cluster)
    flag = Flag.options(scheduling_strategy=on_the_head()).remote()

    @ray.remote(num_returns="dynamic", max_retries=1)
    def arrays(flag):
        for i in range(3):
            yield np.full(2_000_000, i)
            if ray.get(flag.get.remote()):
                sys.exit(1)  # every run after the first dies after one value

    refs = list(ray.get(arrays.options(scheduling_strategy=on(second)).remote(flag)))
    ray.get(flag.set.remote())
    ray_start_cluster.remove_node(second)
    assert int(ray.get(refs[0], timeout=60)[0]) == 0  # yielded again before the exit
    with pytest.raises(ray.exceptions.WorkerCrashedError):  # lost with the node, not rebuilt
        ray.get(refs[2], timeout=60)


def test_get_with_a_timeout_does_not_wait_out_a_rebuild(ray_start_cluster, tmp_path):
    second = two_nodes(ray_start_cluster)
    marker = str(tmp_path / "ran")

    @ray.remote
    def slow_to_rebuild(path):
        if os.path.exists(path):
            time.sleep(30)  # the run that rebuilds it
        open(path, "w").close()
        return np.full(2_000_000, 1)

    ref = slow_to_rebuild.options(scheduling_strategy=on(second)).remote(marker)
    ray.wait([ref])
    ray_start_cluster.remove_node(second)
    # The get gives up at its timeout, while the rebuild (30 s) is still running.
    with pytest.raises(ray.exceptions.GetTimeoutError, match="being rebuilt"):
        ray.get(ref, timeout=2)
