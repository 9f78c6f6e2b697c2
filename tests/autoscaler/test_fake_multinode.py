"""The fake_multinode provider and AutoscalingCluster, driven directly as the autoscaler drives
them: nodes it launches are real node processes that join the head with their type's
resources and labels, leave when terminated, outlive the process that started them (even one
killed mid-launch, whose nodes the next provider finds), and are stopped, with the head, by
``AutoscalingCluster.shutdown()``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

import raggio as ray
from raggio.autoscaler.fake_multinode import FakeMultiNodeProvider
from raggio.cluster_utils import HEAD_NODE_TYPE, AutoscalingCluster
from raggio.core import context
from raggio.exceptions import ClusterConfigError, ClusterLaunchError
from raggio.launcher import cluster_config
from raggio.launcher.node_provider import (NODE_KIND_WORKER, STATUS_UP_TO_DATE,
                                           TAG_RAY_NODE_KIND, TAG_RAY_NODE_STATUS,
                                           TAG_RAY_USER_NODE_TYPE, NodeProvider,
                                           get_node_provider)
from raggio.test_utils import wait_for_condition, wait_until

WORKER_TYPES = {"cpu2": {"resources": {"CPU": 2, "custom": 1}, "labels": {"zone": "a"},
                         "node_config": {}, "min_workers": 0, "max_workers": 3}}
#: What the autoscaler passes for one cpu2 node.
CPU2 = dict(node_config={}, tags={TAG_RAY_USER_NODE_TYPE: "cpu2"},
            resources={"CPU": 2, "custom": 1}, labels={"zone": "a"})
#: A process that launches one cpu2 node as a (restarted) autoscaler would: argv[1] the
#: provider config, argv[2] the cluster name.
LAUNCH_ONE = (
    "import json, sys\n"
    "from raggio.autoscaler.fake_multinode import FakeMultiNodeProvider\n"
    "provider = FakeMultiNodeProvider(json.loads(sys.argv[1]), sys.argv[2])\n"
    "provider.create_node_with_resources_and_labels(\n"
    "    {}, {'ray-user-node-type': 'cpu2'}, 1, {'CPU': 2}, {})\n")


@pytest.fixture(scope="module")
def cluster(module_daemons):
    # Idle nodes stay (an hour's timeout): the tests launch and end nodes themselves.
    cluster = AutoscalingCluster(head_resources={"CPU": 1}, worker_node_types=WORKER_TYPES,
                                 idle_timeout_minutes=60)
    cluster.start()
    module_daemons.append(psutil.Process(cluster._head.pid))
    yield cluster
    cluster.shutdown()


@pytest.fixture
def provider(cluster, shutdown_only):
    provider = cluster.node_provider()
    ray.init(address=cluster.address)
    yield provider
    provider.terminate_all()


def launch(provider, count: int = 1, **changes) -> list[str]:
    before = set(provider.non_terminated_nodes({}))
    args = dict(CPU2, **changes)
    provider.create_node_with_resources_and_labels(count=count, **args)
    return sorted(set(provider.non_terminated_nodes({})) - before)


def alive_nodes() -> dict[str, dict]:
    return {node["NodeID"]: node for node in ray.nodes() if node["Alive"]}


def launch_one_command(provider) -> list[str]:
    return [sys.executable, "-c", LAUNCH_ONE, json.dumps(provider.provider_config),
            provider.cluster_name]


def started_node(nodes: dict[str, dict]) -> str | None:
    """The id of a node whose process is recorded while its launch is unfinished."""
    return next((node_id for node_id, record in nodes.items()
                 if record["state"] == "launching" and "pid" in record), None)


def stop_mid_launch(provider, starter: subprocess.Popen) -> str:
    """SIGSTOP a process launching a node once the node's process is recorded, holding the
    record's lock until it has stopped, so that it cannot have recorded the node as ready
    (it does that under the lock, after the pid); return the node's id."""
    def stopped() -> str | None:
        with provider.state.update() as document:
            node_id = started_node(document["nodes"])
            if node_id is not None:
                starter.send_signal(signal.SIGSTOP)
                wait_until(lambda: psutil.Process(starter.pid).status() ==
                           psutil.STATUS_STOPPED, what="the starter to stop")
            return node_id
    return wait_until(stopped, timeout_s=60, what="the node's process to be recorded")


def test_cluster_file_is_rays_fake_multinode_with_the_types():
    cluster = AutoscalingCluster(head_resources={"CPU": 2, "GPU": 0},
                                 worker_node_types=WORKER_TYPES, max_workers=5,
                                 upscaling_speed=2.0)
    config = cluster_config.parse(json.dumps(cluster.config), "AutoscalingCluster")
    assert config.provider["type"] == "fake_multinode"
    assert config.head_node_type == HEAD_NODE_TYPE
    assert config.node_types[HEAD_NODE_TYPE].resources == {"CPU": 2, "GPU": 0}
    assert config.node_types[HEAD_NODE_TYPE].max_workers == 0
    assert config.node_types["cpu2"].labels == {"zone": "a"}
    assert config.max_workers == 5 and config.upscaling_speed == 2.0
    assert config.idle_timeout_minutes == 0.1  # Ray's helper's default
    assert config.start_commands_for(is_head=False) == []


def test_provider_needs_the_heads_address():
    with pytest.raises(ClusterConfigError, match="gcs_address, session_dir, token_path"):
        get_node_provider({"type": "fake_multinode"}, "fake")


def test_head_has_its_resources_and_keeps_the_cluster_file(provider, cluster):
    assert ray.cluster_resources()["CPU"] == 1
    stored = context.get_core().request("gcs", "kv_get", cluster_config.CONFIG_KEY)
    assert json.loads(stored)["available_node_types"]["cpu2"]["max_workers"] == 3


def test_launched_nodes_join_with_their_types_resources_and_labels(provider):
    node_ids = launch(provider, count=2)
    assert len(node_ids) == 2
    nodes = alive_nodes()
    for node_id in node_ids:
        assert nodes[node_id]["Resources"]["CPU"] == 2
        assert nodes[node_id]["Resources"]["custom"] == 1
        assert nodes[node_id]["Resources"].get("GPU", 0) == 0
        assert nodes[node_id]["Labels"]["zone"] == "a"
        assert not nodes[node_id]["IsHead"]
        tags = provider.node_tags(node_id)
        assert tags[TAG_RAY_USER_NODE_TYPE] == "cpu2"
        assert tags[TAG_RAY_NODE_KIND] == NODE_KIND_WORKER
        assert tags[TAG_RAY_NODE_STATUS] == STATUS_UP_TO_DATE
        assert provider.is_running(node_id) and not provider.is_terminated(node_id)
        assert provider.internal_ip(node_id) == nodes[node_id]["NodeManagerAddress"]
    assert ray.cluster_resources()["CPU"] == 1 + 2 * 2
    assert provider.non_terminated_nodes({TAG_RAY_USER_NODE_TYPE: "cpu2"}) == node_ids
    assert provider.non_terminated_nodes({TAG_RAY_USER_NODE_TYPE: "gpu"}) == []
    # The autoscaler's one listing says what the per-node calls say.
    described = provider.describe_nodes({TAG_RAY_USER_NODE_TYPE: "cpu2"})
    assert described == NodeProvider.describe_nodes(provider, {TAG_RAY_USER_NODE_TYPE: "cpu2"})
    assert [(n.node_id, n.cluster_node_id) for n in described] == [(i, i) for i in node_ids]

    @ray.remote(resources={"custom": 1})
    def where():
        return ray.get_runtime_context().get_node_id()

    assert ray.get(where.remote()) in node_ids


def test_terminated_node_leaves_the_cluster(provider):
    node_id, other = launch(provider, count=2)
    pid = provider.state.read()["nodes"][node_id]["pid"]
    provider.terminate_node(node_id)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert provider.is_terminated(node_id)
    assert provider.non_terminated_nodes({}) == [other]
    wait_for_condition(lambda: node_id not in alive_nodes())
    assert other in alive_nodes()


def test_a_node_ended_from_outside_is_no_longer_listed(provider):
    [node_id] = launch(provider)
    # As `raggio stop` ends it (SIGKILL would leave its arena in /dev/shm).
    os.kill(provider.state.read()["nodes"][node_id]["pid"], signal.SIGTERM)
    wait_for_condition(lambda: provider.non_terminated_nodes({}) == [])
    assert provider.is_terminated(node_id)


def test_a_node_that_cannot_start_is_reported_and_not_kept(provider):
    records = provider.state.read()["nodes"]
    with pytest.raises(ClusterLaunchError, match=r"1 of 1 node\(s\) of type 'cpu2' did not "
                                                 r"start: .*OVERRIDE_RESOURCES.*\(log: "):
        launch(provider, resources={"CPU": -1})
    assert provider.non_terminated_nodes({}) == []
    assert provider.state.read()["nodes"] == records


def test_fail_to_start_fails_every_launch_of_the_type(provider):
    records = provider.state.read()["nodes"]
    with pytest.raises(ClusterLaunchError, match="fail_to_start"):
        launch(provider, node_config={"fail_to_start": True})
    assert provider.state.read()["nodes"] == records


def test_nodes_outlive_the_process_that_started_them(provider):
    """A restarted autoscaler finds the nodes the last one launched, and can end them."""
    subprocess.run(launch_one_command(provider), check=True, timeout=120)
    [node_id] = provider.non_terminated_nodes({})
    assert node_id in alive_nodes()
    provider.terminate_node(node_id)
    wait_for_condition(lambda: node_id not in alive_nodes())


def test_a_node_whose_starter_died_mid_launch_is_found_and_ended(provider):
    """An autoscaler killed while its node starts: the node is not listed while its starter
    lives (that autoscaler counts it); once the starter is gone it is, with the id it joins
    with, so the next autoscaler matches it and can end it."""
    starter = subprocess.Popen(launch_one_command(provider))
    try:
        node_id = stop_mid_launch(provider, starter)
        assert provider.non_terminated_nodes({}) == []
        assert not provider.is_running(node_id) and not provider.is_terminated(node_id)
    finally:
        starter.kill()
        starter.wait()
    assert provider.non_terminated_nodes({}) == [node_id]
    assert provider.node_tags(node_id)[TAG_RAY_USER_NODE_TYPE] == "cpu2"
    wait_for_condition(lambda: node_id in alive_nodes(), timeout=60)
    assert provider.cluster_node_id(node_id) == node_id
    assert provider.internal_ip(node_id) == alive_nodes()[node_id]["NodeManagerAddress"]
    assert provider.is_running(node_id)
    provider.terminate_node(node_id)
    assert provider.non_terminated_nodes({}) == [] and provider.is_terminated(node_id)
    wait_for_condition(lambda: node_id not in alive_nodes())


def test_a_node_this_provider_is_launching_is_not_listed(provider, monkeypatch):
    """Its autoscaler counts it as its own launch until create_node returns."""
    monkeypatch.setenv("RAGGIO_CONNECT_TIMEOUT_S", "10")  # how long the node tries the head
    with socket.socket() as unanswered:  # bound, never listening: the node cannot join
        unanswered.bind(("127.0.0.1", 0))
        launching = FakeMultiNodeProvider(
            dict(provider.provider_config,
                 gcs_address=f"127.0.0.1:{unanswered.getsockname()[1]}"),
            provider.cluster_name)
        with ThreadPoolExecutor(1) as executor:
            launched = executor.submit(launch, launching)
            node_id = wait_until(lambda: started_node(launching.state.read()["nodes"]),
                                 timeout_s=60, what="the node's process to be recorded")
            assert launching.non_terminated_nodes({}) == []
            assert launching.state.read()["nodes"][node_id]["state"] == "launching"  # still
            with pytest.raises(ClusterLaunchError, match="Could not reach"):
                launched.result(timeout=120)
    assert node_id not in launching.state.read()["nodes"]


def test_shutdown_stops_the_head_and_every_launched_node():
    cluster = AutoscalingCluster(head_resources={"CPU": 1}, worker_node_types=WORKER_TYPES,
                                 idle_timeout_minutes=60)
    cluster.start()
    head = psutil.Process(cluster._head.pid)
    provider = cluster.node_provider()
    provider.create_node_with_resources_and_labels(count=1, **CPU2)
    [node_id] = provider.non_terminated_nodes({})
    node = psutil.Process(provider.state.read()["nodes"][node_id]["pid"])
    cluster.shutdown()
    assert not head.is_running() and not node.is_running()
    assert not os.path.exists(cluster.temp_dir)


def test_a_node_whose_starter_died_before_recording_its_pid_is_found(provider):
    """The starter died between starting the node and recording its pid: the node is found
    by the id it was started with."""
    starter = subprocess.Popen(launch_one_command(provider))
    try:
        node_id = stop_mid_launch(provider, starter)
    finally:
        starter.kill()
        starter.wait()
    with provider.state.update() as document:  # as if the pid had never been written
        record = document["nodes"][node_id]
        pid = record.pop("pid")
        del record["create_time"]
    assert provider.non_terminated_nodes({}) == [node_id]
    assert provider.state.read()["nodes"][node_id]["pid"] == pid
    provider.terminate_node(node_id)
    assert provider.non_terminated_nodes({}) == []
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
