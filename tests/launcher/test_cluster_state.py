"""`raggio merge-cluster-record`, which the head runs for `raggio up`: the records `up`
changed go into the head's record of the cluster, and what the head's autoscaler changed
meanwhile stays.

The head's side is the local provider on a launcher directory of the test's own, as the
head's autoscaler uses it; the command runs as `raggio up` runs it there, in a process of
its own."""

from __future__ import annotations

import json
import subprocess

from raggio.launcher.cluster_state import ClusterState
from raggio.launcher.local_provider import RUNNING, TERMINATED, LocalNodeProvider
from raggio.launcher.node_provider import (
    NODE_KIND_HEAD, NODE_KIND_WORKER, STATUS_UP_TO_DATE, TAG_RAY_NODE_KIND, TAG_RAY_NODE_STATUS)
from raggio.test_utils import env_for, run_cli

PROVIDER = {"type": "local", "head_ip": "10.0.0.1",
            "worker_ips": ["10.0.0.2", "10.0.0.3", "10.0.0.4"]}


def merge(tmp_path, record_file, *node_ids) -> subprocess.CompletedProcess:
    env = env_for(tmp_path / "raggio")
    env["RAGGIO_LAUNCHER_DIR"] = str(tmp_path / "head")
    return run_cli(tmp_path / "raggio", "merge-cluster-record", "--cluster-name=merged",
                   str(record_file), "--", *node_ids, env=env)


def head_provider(tmp_path) -> LocalNodeProvider:
    """The local provider as the head's autoscaler has it, on the test's launcher dir."""
    provider = LocalNodeProvider(PROVIDER, "merged")
    provider.state = ClusterState("merged", root=str(tmp_path / "head"))
    return provider


def test_the_head_keeps_its_autoscalers_changes_and_takes_ups(tmp_path):
    head = head_provider(tmp_path)
    head.create_node({}, {TAG_RAY_NODE_KIND: NODE_KIND_HEAD}, 1)
    head.create_node({}, {TAG_RAY_NODE_KIND: NODE_KIND_WORKER}, 2)  # .2 and .3
    up_copy = json.loads(open(head.state.path).read())  # what `up` took from the head

    # Meanwhile the head's autoscaler launches .4 and removes .3.
    head.create_node({}, {TAG_RAY_NODE_KIND: NODE_KIND_WORKER}, 1)
    head.terminate_node("10.0.0.3")
    # `up` set up .2: that record is the one it changed.
    up_copy["nodes"]["10.0.0.2"]["tags"][TAG_RAY_NODE_STATUS] = STATUS_UP_TO_DATE
    record_file = tmp_path / "state.json.from-up"
    record_file.write_text(json.dumps(up_copy))

    result = merge(tmp_path, record_file, "10.0.0.2")
    assert result.returncode == 0, result.stdout + result.stderr

    nodes = head.state.read()["nodes"]
    assert nodes["10.0.0.2"]["tags"][TAG_RAY_NODE_STATUS] == STATUS_UP_TO_DATE
    assert nodes["10.0.0.3"]["state"] == TERMINATED  # not brought back by up's old copy
    assert nodes["10.0.0.4"]["state"] == RUNNING  # not forgotten
    assert sorted(head.non_terminated_nodes({})) == ["10.0.0.1", "10.0.0.2", "10.0.0.4"]
    assert not record_file.exists()


def test_a_node_the_file_does_not_hold_is_named_and_nothing_is_written(tmp_path):
    head = head_provider(tmp_path)
    head.create_node({}, {TAG_RAY_NODE_KIND: NODE_KIND_HEAD}, 1)
    before = head.state.read()
    record_file = tmp_path / "state.json.from-up"
    record_file.write_text(json.dumps({"nodes": {}}))

    result = merge(tmp_path, record_file, "10.0.0.9")
    assert result.returncode != 0
    assert "has no record of node(s) ['10.0.0.9']" in result.stderr, result.stderr
    assert head.state.read() == before
