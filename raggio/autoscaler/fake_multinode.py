"""The ``fake_multinode`` provider (Ray's name): nodes that are node-manager processes on this
machine, for laptops and tests of the autoscaler.

A cluster file with ``provider: {type: fake_multinode}`` is given to a head
(``raggio start --head --autoscaling-config=FILE``, or ``AutoscalingCluster``);
the head's autoscaler then "launches" a worker by starting ``python -m
raggio.node.main`` here, joined to that head with the node type's resources
and labels. Nothing runs over SSH: the node runs raggio as soon as it exists
(Ray's ``disable_node_updaters: true``, which such files set).

- Node ids are the nodes' own: the provider chooses a node's id (hex) and gives
  it to the node (``NodeSpec.node_id``), which joins the control store with it,
  so the autoscaler matches the two by id. A node is recorded under its id
  before it starts (launching), with its starter (the process launching it),
  and is listed once it has joined (launching returns then; until then the
  autoscaler counts it as its own pending launch). A launching node whose
  starter is gone (an autoscaler killed mid-launch) is listed at once: the next
  autoscaler matches it by id once it joins, or removes it if it never does. The
  head is not the provider's (``raggio start --head`` started it): the
  provider's nodes are workers.
- ``provider_config`` takes, besides ``type``, the head's ``gcs_address``,
  ``session_dir`` and ``token_path`` (``HEAD_KEYS``: the keys of the head's ready
  line), which the head's autoscaler adds; Ray's other keys
  (``use_node_id_as_ip``, ``disable_node_updaters``,
  ``disable_launch_config_check``) are accepted and change nothing here.
- The record of the nodes lives in the head's session directory
  (``fake_multinode/<cluster_name>/state.json``, a ``ClusterState`` under its
  lock), so a restarted autoscaler finds its nodes, and each node's stderr in
  ``logs/`` beside it. A node is started in its own session (a Ctrl-C or the
  death of the process that started it does not end it) and untied, so it
  outlives a restarted autoscaler; ``raggio stop`` ends it as any node.
  ``terminate_node`` ends only a process this record holds, by pid (and start
  time, so a reused pid is never signalled): SIGTERM, then SIGKILL after
  ``TERMINATE_GRACE_S``.
- ``node_config`` is empty for real nodes. ``{"fail_to_start": true}`` makes
  every launch of the type fail (``ClusterLaunchError``, as a cloud refusing an
  instance), for tests of the autoscaler's retries and failure reports.

Not owned here: deciding what to launch or remove (``resource_demand.py``,
``autoscaler.py``), the NodeProvider interface (``launcher/node_provider.py``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess

import psutil

from raggio.common import process_identity
from raggio.common.ids import NodeID
from raggio.config import get_config
from raggio.exceptions import ClusterConfigError, ClusterLaunchError, RaySystemError
from raggio.launch import wait_ready
from raggio.launcher.cluster_state import ClusterState
from raggio.launcher.node_provider import (NODE_KIND_WORKER, STATUS_UP_TO_DATE,
                                           TAG_RAGGIO_MARKET_TYPE,
                                           TAG_RAY_NODE_KIND, TAG_RAY_NODE_NAME,
                                           TAG_RAY_NODE_STATUS, TAG_RAY_USER_NODE_TYPE,
                                           NodeProvider, ProviderNode)
from raggio.node_spec import NodeSpec

#: The keys of the head's ready line that ``provider_config`` must carry.
HEAD_KEYS = ("gcs_address", "session_dir", "token_path")
#: How long a terminated node gets to end its workers and remove its arena after SIGTERM
#: before SIGKILL (which leaves the arena): generous, for a loaded machine.
TERMINATE_GRACE_S = 30.0

# A record's states: started and not yet ready, ready, ended.
LAUNCHING = "launching"
RUNNING = "running"
TERMINATED = "terminated"


class FakeMultiNodeProvider(NodeProvider):
    """Workers that are node processes on this machine. See the module docstring."""

    node_updaters = False  #: a node runs raggio as soon as it exists

    gcs_address: str
    session_dir: str  #: the head's
    token_path: str
    state: ClusterState

    def __init__(self, provider_config: dict, cluster_name: str) -> None:
        super().__init__(provider_config, cluster_name)
        missing = [key for key in HEAD_KEYS if not provider_config.get(key)]
        if missing:
            raise ClusterConfigError(
                f"The fake_multinode provider needs the head's {', '.join(missing)} in its "
                "provider config: start the cluster with `raggio start --head "
                "--autoscaling-config=FILE` (or AutoscalingCluster), whose autoscaler adds them.")
        self.gcs_address = provider_config["gcs_address"]
        self.session_dir = provider_config["session_dir"]
        self.token_path = provider_config["token_path"]
        self.state = ClusterState(cluster_name, root=os.path.join(self.session_dir,
                                                                  "fake_multinode"))
        #: The processes this object started, so that it reaps them when they end.
        self._children: dict[int, subprocess.Popen] = {}
        #: This process, as the starter of the nodes it launches.
        self._starter = _identity(os.getpid())

    # -- what the provider has

    def non_terminated_nodes(self, tag_filters: dict[str, str]) -> list[str]:
        return [node.node_id for node in self.describe_nodes(tag_filters)]

    def describe_nodes(self, tag_filters: dict[str, str]) -> list[ProviderNode]:
        """The nodes that joined, and those whose launch was left unfinished by a starter
        that is gone (not the ones a live process is launching: its autoscaler counts
        them); a listed node whose process is gone is marked terminated."""
        self._reap()
        with self.state.update() as document:
            nodes = document["nodes"]
            for node_id, record in nodes.items():
                if not _listed(record):
                    continue
                if "pid" not in record:
                    # Its starter died between starting it and recording its pid.
                    record.update(_find_node_process(node_id) or {})
                if _process(record) is None:
                    record["state"] = TERMINATED  # it died (or `raggio stop` ended it)
            return [ProviderNode(node_id, dict(record["tags"]), record["node_ip"], node_id)
                    for node_id, record in nodes.items()
                    if _listed(record)
                    and all(record["tags"].get(k) == v for k, v in tag_filters.items())]

    def is_running(self, node_id: str) -> bool:
        record = self._record(node_id)
        return _listed(record) and _process(record) is not None

    def is_terminated(self, node_id: str) -> bool:
        record = self._record(node_id)
        return record.get("state", TERMINATED) == TERMINATED or _process(record) is None

    def node_tags(self, node_id: str) -> dict[str, str]:
        return dict(self._record(node_id).get("tags", {}))

    def external_ip(self, node_id: str) -> str:
        return self.internal_ip(node_id)

    def internal_ip(self, node_id: str) -> str:
        return self._record(node_id)["node_ip"]

    def cluster_node_id(self, node_id: str) -> str:
        return node_id  # the provider's ids are the nodes' own (it chose them)

    def set_node_tags(self, node_id: str, tags: dict[str, str]) -> None:
        with self.state.update() as document:
            document["nodes"][node_id]["tags"].update(tags)

    # -- launching

    def create_node_with_resources_and_labels(self, node_config: dict, tags: dict[str, str],
                                              count: int, resources: dict[str, float],
                                              labels: dict[str, str]) -> None:
        """Start ``count`` nodes with ``resources`` and ``labels`` (a node type's), tagged
        ``tags``; return once each has joined the head.

        Resources the type does not give are the node's defaults, except CPU and GPU, which
        are 0 (as in Ray's fake_multinode).

        Raises:
            ClusterLaunchError: a node did not start (its reason, and its log), or the
                type's node_config says ``fail_to_start``. The nodes that did start stay.
        """
        node_type = tags.get(TAG_RAY_USER_NODE_TYPE, "?")
        if node_config.get("fail_to_start"):
            raise ClusterLaunchError(
                f"Node type {node_type!r} did not launch: its node_config sets fail_to_start "
                "(a fake_multinode setting for tests); remove it to launch real nodes.")
        with open(self.token_path) as file:
            token = file.read().strip()
        spec = NodeSpec(gcs_address=self.gcs_address, token=token,
                        node_ip_address=self.gcs_address.rpartition(":")[0],
                        labels=dict(labels), temp_dir=os.path.dirname(self.session_dir),
                        config={"override_resources": json.dumps(
                                    {"CPU": 0, "GPU": 0, **resources}),
                                # its ray.io/node-group and market-type labels, as Ray's
                                "node_type_name": node_type,
                                "node_market_type": tags.get(TAG_RAGGIO_MARKET_TYPE,
                                                             "on-demand")})
        started = [self._start(spec, tags) for _ in range(count)]
        failures = [failure for node_id, process, log_path in started
                    if (failure := self._wait_joined(node_id, process, log_path)) is not None]
        if failures:
            raise ClusterLaunchError(
                f"{len(failures)} of {count} node(s) of type {node_type!r} did not start: "
                f"{failures[0]}")

    def _start(self, spec: NodeSpec, tags: dict[str, str]) -> tuple[str, subprocess.Popen, str]:
        """Start one node's process, recorded as launching under the id it will join with
        (so that it is stopped with the cluster, and found by the next autoscaler, even if
        its starter dies before it is ready)."""
        node_id = NodeID.from_random().hex()
        log_path = self.state.log_path(f"node-{node_id}")
        with self.state.update() as document:
            document["nodes"][node_id] = {
                "state": LAUNCHING, "starter": self._starter, "node_ip": spec.node_ip_address,
                "log": log_path, "tags": dict(tags, **{TAG_RAY_NODE_KIND: NODE_KIND_WORKER,
                                                       TAG_RAY_NODE_NAME: node_id})}
        with open(log_path, "ab") as log:
            process = dataclasses.replace(spec, node_id=node_id).start_process(
                stderr=log, start_new_session=True)
        self._children[process.pid] = process
        with self.state.update() as document:
            document["nodes"][node_id].update(_identity(process.pid))
        return node_id, process, log_path

    def _wait_joined(self, node_id: str, process: subprocess.Popen,
                     log_path: str) -> str | None:
        """Wait for a started node's ready line and record it as running; on failure, drop
        its record and say why."""
        try:
            ready = wait_ready(process, get_config().head_start_timeout_s, "fake_multinode node")
        except RaySystemError as exc:
            with self.state.update() as document:
                document["nodes"].pop(node_id, None)
            self._children.pop(process.pid, None)
            return f"{exc.client_exc} (log: {log_path})"
        process.stdout.close()
        with self.state.update() as document:
            record = document["nodes"][node_id]
            if record["state"] == LAUNCHING:  # not terminated meanwhile
                record["tags"][TAG_RAY_NODE_STATUS] = STATUS_UP_TO_DATE
                record.update(state=RUNNING, node_session_dir=ready["session_dir"])
        return None

    # -- terminating

    def terminate_node(self, node_id: str) -> None:
        self.terminate_nodes([node_id])

    def terminate_nodes(self, node_ids: list[str]) -> None:
        """End the nodes' processes: SIGTERM to all, then SIGKILL to those still running
        after ``TERMINATE_GRACE_S``."""
        wanted = set(node_ids)
        with self.state.update() as document:
            records = [record for node_id, record in document["nodes"].items()
                       if node_id in wanted and record["state"] != TERMINATED]
            for record in records:
                record["state"] = TERMINATED
        self._stop([process for record in records
                    if (process := _process(record)) is not None])

    def terminate_all(self) -> None:
        """End every process this provider started, ready or still launching (a cluster's
        shutdown, after its autoscaler has stopped)."""
        with self.state.update() as document:
            records = [record for record in document["nodes"].values()
                       if record["state"] != TERMINATED]
            for record in records:
                record["state"] = TERMINATED
        self._stop([process for record in records
                    if (process := _process(record)) is not None])

    def _stop(self, processes: list[psutil.Process]) -> None:
        for process in processes:
            _signal(process, signal.SIGTERM)
        _, alive = psutil.wait_procs(processes, timeout=TERMINATE_GRACE_S)
        for process in alive:
            _signal(process, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=TERMINATE_GRACE_S)
        self._reap()

    def _reap(self) -> None:
        """Collect the exit status of this object's children that ended (no zombies)."""
        for pid, child in list(self._children.items()):
            if child.poll() is not None:
                del self._children[pid]

    def _record(self, node_id: str) -> dict:
        return self.state.read()["nodes"].get(node_id, {})


def _identity(pid: int) -> dict:
    """What tells this process apart from a later one that reuses its pid."""
    return {"pid": pid, "create_time": process_identity.start_time(pid)}


def _find_node_process(node_id: str) -> dict | None:
    """The identity of the node process started with ``--node-id node_id``, if it runs."""
    for process in psutil.process_iter(["pid", "cmdline", "create_time"]):
        if node_id in (process.info["cmdline"] or ()):
            return {"pid": process.info["pid"], "create_time": process.info["create_time"]}
    return None


def _listed(record: dict) -> bool:
    """Whether a record is one of the provider's nodes: it joined, or its launch was left
    unfinished by a starter that is gone (a launch in a live process is that process's)."""
    state = record.get("state")
    return state == RUNNING or (state == LAUNCHING and _process(record["starter"]) is None)


def _process(record: dict) -> psutil.Process | None:
    """The process that ``record`` identifies (a node's, or its starter's: pid and start
    time) if it still runs."""
    if "pid" not in record:
        return None
    return process_identity.find(record["pid"], record["create_time"])


def _signal(process: psutil.Process, signum: int) -> None:
    try:
        process.send_signal(signum)
    except psutil.NoSuchProcess:
        pass
