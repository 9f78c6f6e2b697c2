"""The autoscaler end to end: a head with ``--autoscaling-config`` (``AutoscalingCluster``,
provider ``fake_multinode``) whose monitor adds nodes for pending work and removes idle ones.

Every test watches what a user would: nodes joining and leaving (``ray.nodes()``), work that
finishes, and what ``raggio status`` says.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import numpy as np
import pytest

import raggio as ray
from raggio.autoscaler.sdk import request_resources
from raggio.cluster_utils import AutoscalingCluster
from raggio.common.autoscaler_status import STATUS_KEY
from raggio.common.launch_failures import LAUNCH_FAILURES_KEY
from raggio.core import context
from raggio.test_utils import wait_until
from raggio.util.placement_group import placement_group
from metrics.metrics_scraping import samples, scrape, value  # tests/metrics/

pytestmark = pytest.mark.timeout(180)

CPU2 = {"resources": {"CPU": 2}, "node_config": {}, "min_workers": 0, "max_workers": 3}


@pytest.fixture
def autoscaling(shutdown_only):
    """Start an AutoscalingCluster (head without CPUs) and connect to it; shut it after."""
    started = []

    def start(worker_node_types: dict, **config) -> AutoscalingCluster:
        cluster = AutoscalingCluster(head_resources={"CPU": 0},
                                     worker_node_types=worker_node_types,
                                     **{"idle_timeout_minutes": 0.05, **config})
        cluster.start()
        started.append(cluster)
        ray.init(address=cluster.address)
        return cluster

    yield start
    ray.shutdown()
    for cluster in started:
        cluster.shutdown()


def alive_workers() -> int:
    return sum(1 for n in ray.nodes() if n["Alive"]) - 1


def rounds_past(seconds: float) -> None:
    """Wait until the autoscaler has run a round ``seconds`` from now (what it would do by
    then, it has done), and check that it is removing no node: a node being drained or
    released in the background is still alive meanwhile."""
    deadline = time.time() + seconds
    status = wait_until(
        lambda: (value := context.get_core().request("gcs", "kv_get", STATUS_KEY))
        and (status := json.loads(value))["time"] > deadline and status,
        timeout_s=seconds + 60, what=f"an autoscaler round {seconds} s from now")
    assert not [r for r in status["reasons"] if r.startswith("draining node")], status


def status_text(cluster: AutoscalingCluster) -> str:
    with open(cluster._head_info["token_path"]) as f:
        token = f.read().strip()
    env = dict(os.environ, RAGGIO_AUTH_TOKEN=token)
    return subprocess.run(["raggio", "status", "--address", cluster.address],
                          capture_output=True, text=True, env=env, timeout=60,
                          check=True).stdout


def test_a_burst_launches_nodes_within_max_workers_and_idle_ones_leave(autoscaling):
    autoscaling({"cpu2": dict(CPU2, min_workers=1)}, max_workers=2)
    wait_until(lambda: alive_workers() == 1, what="min_workers' one node")

    most = [0]
    done = threading.Event()

    def watch():
        while not done.is_set():
            most[0] = max(most[0], alive_workers())
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()

    @ray.remote(num_cpus=1)
    def work(i):
        time.sleep(2)
        return i

    try:
        assert ray.get([work.remote(i) for i in range(10)], timeout=120) == list(range(10))
    finally:
        done.set()
        watcher.join()
    assert most[0] == 2  # it grew for the burst, and never past max_workers
    # Idle past the timeout: back to min_workers, never below.
    wait_until(lambda: alive_workers() == 1, timeout_s=60, what="the idle node to leave")
    rounds_past(4)  # another idle timeout's worth: min_workers stay
    assert alive_workers() == 1


def test_a_task_no_node_fits_brings_a_node_that_runs_it(autoscaling):
    autoscaling({"cpu2": CPU2})
    assert alive_workers() == 0

    @ray.remote(num_cpus=1)
    def where():
        return ray.get_runtime_context().get_node_id()

    node_id = ray.get(where.remote(), timeout=60)
    [worker] = [n for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) > 0]
    assert node_id == worker["NodeID"] and worker["Labels"]["ray.io/node-group"] == "cpu2"


def test_request_resources_scales_up_and_its_withdrawal_down(autoscaling):
    autoscaling({"cpu2": CPU2})
    assert alive_workers() == 0
    request_resources(num_cpus=4)
    wait_until(lambda: alive_workers() == 2, timeout_s=60, what="two cpu2 nodes for 4 CPUs")
    rounds_past(4)  # idle past the timeout, but held by the request
    assert alive_workers() == 2
    families = wait_until(lambda: (f := autoscaler_metrics()) and value(
        f, "autoscaler_active_nodes", NodeType="cpu2") == 2 and f, what="the metrics")
    assert value(families, "autoscaler_running_workers_nodes") == 2
    assert value(families, "autoscaler_started_nodes_total") == 2
    assert value(families, "autoscaler_cluster_resources", resource="CPU") == 4
    request_resources()
    wait_until(lambda: alive_workers() == 0, timeout_s=60, what="the nodes to leave")
    wait_until(lambda: value(autoscaler_metrics(), "autoscaler_stopped_nodes_total") == 2,
               what="the metrics to count the nodes stopped")


def autoscaler_metrics() -> dict:
    """The head node's metrics: its autoscaler_* families come from the monitor's status."""
    [head] = [n for n in ray.nodes() if n["Alive"] and n["IsHead"]]
    text = scrape(head["MetricsExportPort"], context.get_core().token)
    families = samples(text)
    return families if "autoscaler_active_nodes" in families else {}


def test_a_placement_group_that_fits_no_node_launches_the_type_that_fits(autoscaling):
    autoscaling({"small": dict(CPU2, resources={"CPU": 1}),
                 "large": dict(CPU2, resources={"CPU": 4, "accelerator": 1})})
    group = placement_group([{"CPU": 3, "accelerator": 1}], strategy="STRICT_PACK")
    ray.get(group.ready(), timeout=60)
    groups = [n["Labels"].get("ray.io/node-group") for n in ray.nodes()
              if n["Alive"] and n["Resources"].get("CPU", 0) > 0]
    assert groups == ["large"]


def test_a_failing_node_type_is_retried_with_backoff_and_reported(autoscaling):
    cluster = autoscaling({"broken": dict(CPU2, min_workers=1,
                                          node_config={"fail_to_start": True})})

    def failures() -> list[dict]:
        value = context.get_core().request("gcs", "kv_get", LAUNCH_FAILURES_KEY)
        return json.loads(value) if value else []

    wait_until(lambda: len(failures()) >= 2, timeout_s=60, what="a second attempt")
    first, second = failures()[:2]
    assert first["node_type"] == "broken" and "fail_to_start" in first["error"]
    assert second["time"] - first["time"] >= 4  # it waited before trying again
    status = wait_until(lambda: (text := status_text(cluster)) and "its last launch failed"
                        in text.split("Autoscaler\n", 1)[1] and text,
                        timeout_s=30, what="raggio status to say why it waits")
    recent = status.split("Recent failures:\n", 1)[1]
    assert "broken: launching 1 failed" in recent, status
    assert "fail_to_start" in recent, status


def test_while_the_cheapest_type_backs_off_the_next_one_runs_the_work(autoscaling):
    autoscaling({"small": dict(CPU2, node_config={"fail_to_start": True}),
                 "large": {"resources": {"CPU": 4}, "node_config": {}, "min_workers": 0,
                           "max_workers": 1}})

    @ray.remote(num_cpus=1)
    def group() -> str:
        return ray.get_runtime_context().get_node_labels()["ray.io/node-group"]

    # "small" is cheaper and fails to start; once it backs off, "large" takes the task.
    assert ray.get(group.remote(), timeout=120) == "large"
    failures = json.loads(context.get_core().request("gcs", "kv_get", LAUNCH_FAILURES_KEY))
    assert {f["node_type"] for f in failures} == {"small"}


def test_a_lost_node_is_replaced_and_status_shows_the_autoscaler(autoscaling):
    cluster = autoscaling({"cpu2": dict(CPU2, min_workers=1, use_spot=True)})
    wait_until(lambda: alive_workers() == 1, what="min_workers' node")
    [worker] = [n for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) > 0]
    assert worker["Labels"]["ray.io/market-type"] == "spot"
    assert worker["Labels"]["ray.io/node-group"] == "cpu2"
    provider = cluster.node_provider()
    [node_id] = provider.non_terminated_nodes({})
    pid = provider._record(node_id)["pid"]
    os.kill(pid, signal.SIGTERM)  # as a reclaimed spot instance, after its short notice
    wait_until(lambda: [n["NodeID"] for n in ray.nodes() if n["Alive"]
                        and n["NodeID"] != worker["NodeID"]
                        and n["Resources"].get("CPU", 0) > 0],
               timeout_s=90, what="a replacement node")
    wait_until(lambda: "Cluster 'fake_multinode': 1 cpu2, 1 ray.head.default"
               in status_text(cluster).split("Autoscaler\n", 1)[1],
               what="raggio status to count the replacement")


def test_a_busy_share_that_stays_above_the_target_adds_a_node(autoscaling):
    autoscaling({"cpu2": dict(CPU2, min_workers=1, max_workers=2)}, idle_timeout_minutes=1,
                autoscaling_config={"target_utilization_fraction": 0.5,
                                    "scale_up_cooldown_s": 2})
    wait_until(lambda: alive_workers() == 1, what="min_workers' node")

    @ray.remote(num_cpus=1)
    def busy(seconds):
        time.sleep(seconds)

    # Both CPUs of the one node busy, nothing pending: only the utilisation policy adds a node.
    refs = [busy.remote(30) for _ in range(2)]
    wait_until(lambda: alive_workers() == 2, timeout_s=60,
               what="a node for the busy share above 0.5")
    assert ray.wait(refs, timeout=0)[0] == []  # while the work still runs
    ray.cancel(refs[0], force=True)
    ray.cancel(refs[1], force=True)


def test_an_idle_node_moves_its_objects_away_before_it_leaves(autoscaling):
    autoscaling({"cpu2": CPU2})

    @ray.remote(num_cpus=1, num_returns=2, max_retries=0)  # lost, it could not be rebuilt
    def make(n):
        return np.full(n, 7, dtype=np.uint8), ray.get_runtime_context().get_node_id()

    array, node = make.remote(4 << 20)
    made_on = ray.get(node, timeout=60)
    assert ray.wait([array], timeout=30)[0] == [array]  # not read here: its only copy is there
    # The node runs nothing: it is drained (the array moves to the head) and removed.
    wait_until(lambda: alive_workers() == 0, timeout_s=90, what="the idle node to leave")
    assert not [n for n in ray.nodes() if n["NodeID"] == made_on and n["Alive"]]
    value = ray.get(array, timeout=30)
    assert value.shape == (4 << 20,) and value.min() == value.max() == 7


def test_an_idle_node_that_would_lose_objects_stays_and_status_says_why(autoscaling):
    cluster = autoscaling({"cpu2": CPU2})

    @ray.remote(num_cpus=1)
    def put_there():
        return [ray.put(np.ones(1 << 20, dtype=np.uint8))]  # owned by the worker there

    [inner] = ray.get(put_there.remote(), timeout=60)
    kept = wait_until(lambda: "it refused to drain" in (text := status_text(cluster))
                      and text, timeout_s=60, what="raggio status to say why the node stays")
    assert "own objects whose refs they passed on" in kept.split("Autoscaler\n", 1)[1], kept
    assert alive_workers() == 1
    assert int(ray.get(inner, timeout=30).sum()) == 1 << 20
