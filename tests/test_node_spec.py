"""``NodeSpec``: one definition of what starting a node takes (``raggio/node_spec.py``).

The spec's command line reads back to the same spec; its environment carries
the token and settings (never the command line); a process started from a
spec joins a cluster (with the node id its starter chose); and what a spec
leaves out the node takes from ``Config``.
"""

import dataclasses
import glob
import os
import signal
import socket
import subprocess
import sys

import psutil
import pytest

import raggio as ray
from raggio import cluster_file
from raggio.config import Config, get_config
from raggio.launch import wait_ready
from raggio.node_spec import FROM_STDIN, HEAD_MODULE, NODE_MODULE, NodeSpec
from raggio.test_utils import wait_until

SPECS = [
    NodeSpec(head=True),
    NodeSpec(head=True, tied=True, cluster_file=True, num_cpus=0, num_gpus=1.5,
             resources={"custom": 2, "odd name=x": 0.5}, labels={"region": "eu"},
             memory=10**9, object_store_memory=150 * 1024**2, port=6380,
             temp_dir="/tmp/a dir with spaces", node_ip_address="10.0.0.5"),
    NodeSpec(head=True, no_node=True, cluster_file=True, port=6379,
             storage="/tmp/x/raggio_control_store.sqlite", session_dir="/tmp/x/session_1"),
    NodeSpec(head=True, gcs_address=FROM_STDIN, num_cpus=2, session_dir="/tmp/x/session_1"),
    NodeSpec(gcs_address="10.0.0.5:6379", node_ip_address="10.0.0.6", num_cpus=1,
             labels={"ray.io/market-type": "spot"}, tied=True, node_id="ab" * 28),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: " ".join(spec.to_argv()[2:]))
def test_the_command_line_reads_back_to_the_same_spec(spec):
    argv = spec.to_argv()
    assert argv[:3] == [sys.executable, "-m", spec.module]
    assert NodeSpec.from_argv(argv[3:], spec.module) == spec


def test_a_head_runs_the_control_store_and_a_joining_node_the_node_manager():
    assert NodeSpec(head=True).module == HEAD_MODULE
    assert NodeSpec(head=True, gcs_address=FROM_STDIN).module == NODE_MODULE
    assert NodeSpec(gcs_address="127.0.0.1:6379").module == NODE_MODULE
    with pytest.raises(ValueError, match="gcs_address"):
        NodeSpec()
    with pytest.raises(ValueError, match="no_node"):
        NodeSpec(head=True, no_node=True, gcs_address="127.0.0.1:6379")


def test_a_chosen_node_id_is_a_node_ids_size_in_hex():
    for wrong in ("ab" * 27, "xy" * 28):
        with pytest.raises(ValueError, match="node_id is 28 bytes in hex"):
            NodeSpec(gcs_address="127.0.0.1:6379", node_id=wrong)


def test_the_token_and_settings_travel_in_the_environment_only():
    spec = NodeSpec(gcs_address="127.0.0.1:6379", token="s3cret",
                    config={"connect_timeout_s": 5.0, "prestart_workers": False},
                    env={"PYTHONPATH": "/code"})
    assert not any("s3cret" in arg for arg in spec.to_argv())  # `ps` shows argv to everyone
    env = spec.to_env({"UNRELATED": "1"})
    assert env["UNRELATED"] == "1" and env["PYTHONPATH"] == "/code"
    cfg = Config.from_env(env)
    assert (cfg.auth_token, cfg.connect_timeout_s, cfg.prestart_workers) == ("s3cret", 5.0, False)
    # The process reads them from its Config, not its flags.
    read_back = NodeSpec.from_argv(spec.to_argv()[3:])
    assert dataclasses.replace(spec, token="", config={}, env={}) == read_back


def test_defaults_are_configs():
    assert NodeSpec(head=True).temp_dir == get_config().temp_dir
    # A flag left out is the spec's default in the started process too.
    assert NodeSpec.from_argv(["--head"]) == NodeSpec(head=True)
    assert NodeSpec(head=True, temp_dir=get_config().temp_dir).to_argv()[3:] == [
        "--head", "--temp-dir", get_config().temp_dir]


def test_a_process_refuses_a_spec_it_does_not_run():
    result = subprocess.run([sys.executable, "-m", NODE_MODULE, "--num-cpus", "1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "gcs_address='HOST:PORT'" in result.stderr
    result = subprocess.run([sys.executable, "-m", HEAD_MODULE, "--gcs-address", "x:1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"runs as python -m {NODE_MODULE}" in result.stderr


def test_a_node_started_from_a_spec_joins_the_cluster(ray_start_cluster):
    cluster = ray_start_cluster
    cluster.add_node(num_cpus=1, object_store_memory=100 * 1024**2)
    spec = NodeSpec(gcs_address=cluster.address, token=cluster_file.known_token(cluster.address),
                    tied=True, num_cpus=3, resources={"spec_made": 1}, labels={"made": "spec"},
                    object_store_memory=100 * 1024**2, node_id="5e" * 28)
    process = spec.start_process()
    try:
        ready = wait_ready(process, 60, "node from a spec")
        assert ready["node_id"] == spec.node_id  # the id its starter chose
        wait_until(lambda: ready["node_id"] in cluster.alive_node_ids(), timeout_s=30,
                   what="the control store to have the node")
        ray.init(address=cluster.address)
        node = next(n for n in ray.nodes() if n["NodeID"] == ready["node_id"])
        assert node["Resources"]["CPU"] == 3.0 and node["Resources"]["spec_made"] == 1.0
        assert node["Labels"]["made"] == "spec"
        ray.shutdown()
    finally:
        process.stdin.close()  # tied: it exits when its owner's pipe closes
        process.wait(timeout=30)
        process.stdout.close()
    assert process.returncode == 0
    wait_until(lambda: ready["node_id"] not in cluster.alive_node_ids(), timeout_s=30,
               what="the control store to see the node gone")


def test_a_node_sizes_its_store_by_configs_fraction(ray_start_cluster):
    # _system_config may name raggio's own settings; Cluster gives the head's to every node.
    cluster = ray_start_cluster
    cluster.add_node(num_cpus=1, _system_config={"object_store_fraction": 0.001})
    worker = cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address)
    expected = int(psutil.virtual_memory().total * 0.001)
    stores = {n["NodeID"]: n["Resources"]["object_store_memory"] for n in ray.nodes()}
    assert stores == {cluster.head_node.node_id: expected, worker.node_id: expected}


def test_a_node_stopped_while_it_starts_leaves_no_arena(tmp_path):
    """SIGTERM before the node has joined (an autoscaler giving up on it) ends it cleanly."""
    with socket.socket() as unanswered:  # bound, never listening: the node keeps trying
        unanswered.bind(("127.0.0.1", 0))
        spec = NodeSpec(gcs_address=f"127.0.0.1:{unanswered.getsockname()[1]}", token="t",
                        node_ip_address="127.0.0.1", temp_dir=str(tmp_path),
                        object_store_memory=64 * 1024**2, num_cpus=1,
                        config={"connect_timeout_s": 120})
        process = spec.start_process(stderr=subprocess.PIPE)
        try:
            # /dev/shm/raggio-<its session (a directory in tmp_path)>-<node>.arena
            arena = wait_until(lambda: [path for session in os.listdir(tmp_path)
                                        if session.startswith("session_2")
                                        for path in glob.glob(f"/dev/shm/raggio-{session}-*")],
                               timeout_s=60, what="the node's arena")
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 128 + signal.SIGTERM
        finally:
            process.kill()
            process.wait()
        assert "stopped while starting" in process.stderr.read().decode()
        assert not [path for path in arena if os.path.exists(path)]
