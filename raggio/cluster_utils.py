"""``Cluster`` and ``AutoscalingCluster``: several real nodes on one machine, for tests and
laptops (Ray's helpers).

Each node is its own node manager process with its own arena and session
directory, started from a ``NodeSpec`` (``node_spec.py``); the head also runs
the control store. Every process is tied to this one through its stdin, so
nothing outlives the Python process that made the cluster.
``init(address=cluster.address)`` (or ``cluster.connect()``) joins it as a
driver.

The head runs no dashboard unless asked
(``head_node_args={"include_dashboard": True, "dashboard_port": 0}``, or
just a ``dashboard_port``).
Departure: Ray's head tries one on 8265 by default and goes on without it
when the port is taken; here clusters of parallel tests would race for that
port, and each dashboard costs a process.

``AutoscalingCluster`` is a head given a cluster file of the ``fake_multinode``
provider: its autoscaler adds and removes worker nodes (node processes on this
machine, ``autoscaler/fake_multinode.py``) as the work asks. It runs in a
temp dir of its own, on free ports; join it with
``init(address=cluster.address)``.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

from raggio import cluster_file
from raggio.autoscaler.fake_multinode import HEAD_KEYS, FakeMultiNodeProvider
from raggio.common.labels import check_node_labels
from raggio.config import get_config, honoured_system_config
from raggio.launch import wait_ready
from raggio.node_spec import NodeSpec
from raggio.rpc import connect

#: Ray's flag for the platform where ``Cluster`` cannot run, which Ray's tests skip on:
#: Windows, as in Ray (raggio's nodes fork their workers from a zygote).
cluster_not_supported = os.name == "nt"


@dataclass
class ClusterNode:
    """One node of a ``Cluster``: its process and addresses."""

    process: subprocess.Popen
    node_id: str
    address: str  #: the node manager's address
    session_dir: str
    is_head: bool
    args: dict = field(default_factory=dict)

    @property
    def unique_id(self) -> str:
        return self.node_id

    @property
    def node_ip_address(self) -> str:
        return self.address.rpartition(":")[0]

    def alive(self) -> bool:
        return self.process.poll() is None


logger = logging.getLogger(__name__)

#: Ray's node arguments that are ``NodeSpec`` fields of the same name.
_NODE_ARGS = ("num_cpus", "num_gpus", "memory", "object_store_memory", "node_ip_address",
              "resources", "labels", "metrics_export_port")
#: The head's: its control store's port and ``_system_config``, and its dashboard (applied
#: in ``add_node``; a node that is not the head ignores them, as in Ray).
_HEAD_ARGS = ("port", "_system_config", "include_dashboard", "dashboard_host",
              "dashboard_port")
#: Accepted and not passed on: they have no raggio equivalent.
_IGNORED = {"min_worker_port", "max_worker_port", "enable_object_reconstruction", "redis_port"}


def _node_fields(args: dict) -> dict:
    """The ``NodeSpec`` fields of Ray's node arguments (None: the default).

    Raises:
        ValueError: an argument that is not one of Ray's node arguments.
    """
    unknown = [key for key in args
               if key not in _NODE_ARGS and key not in _HEAD_ARGS and key not in _IGNORED]
    if unknown:
        raise ValueError(f"Unknown node argument {unknown[0]!r}; supported: "
                         f"{sorted(_NODE_ARGS)}")
    return {key: value for key, value in args.items() if key in _NODE_ARGS and value is not None}


def _wants_dashboard(head_args: dict) -> bool:
    """include_dashboard=True, or a dashboard port or host given without it."""
    include = head_args.get("include_dashboard")
    if include is None:
        return head_args.get("dashboard_port") is not None or bool(
            head_args.get("dashboard_host"))
    return bool(include)


class Cluster:
    """A multi-node cluster on this machine. See the module docstring."""

    def __init__(self, initialize_head: bool = False, connect: bool = False,
                 head_node_args: dict | None = None, shutdown_at_exit: bool = True):
        self.head_node: ClusterNode | None = None
        self.worker_nodes: list[ClusterNode] = []
        self.address = ""
        #: The head's dashboard ("HOST:PORT", as Ray's), or None when it runs none.
        self.webui_url: str | None = None
        self._token = ""
        self._temp_dir = get_config().temp_dir
        #: The Config changes of the head's ``_system_config``, given to every node (Ray's
        #: system config is cluster-wide).
        self._system_config: dict = {}
        if initialize_head:
            self.add_node(**(head_node_args or {}))
            if connect:
                self.connect()

    @property
    def gcs_address(self) -> str:
        return self.address

    def list_all_nodes(self) -> list[ClusterNode]:
        return ([self.head_node] if self.head_node else []) + list(self.worker_nodes)

    def add_node(self, wait: bool = True, **node_args) -> ClusterNode:
        """Start a node (the head first); return once it has joined.

        ``node_args`` are Ray's: num_cpus, num_gpus, resources, memory,
        object_store_memory, node_ip_address, labels (``{"key": "value"}``),
        metrics_export_port; for the head
        also port, _system_config, include_dashboard (default: only if a dashboard port or
        host is given), dashboard_host and dashboard_port (None: 8265 or the next free one;
        0: any free one).

        Raises:
            ValueError: an unknown argument, or labels that are not valid.
        """
        if node_args.get("labels") is not None:
            check_node_labels(node_args["labels"])
        fields = dict(_node_fields(node_args), tied=True, temp_dir=self._temp_dir)
        if self.head_node is None:
            if node_args.get("_system_config"):
                # Keys with no raggio equivalent are skipped with a warning, as by init().
                self._system_config = honoured_system_config(node_args["_system_config"],
                                                             "Cluster")
            spec = NodeSpec(head=True, port=node_args.get("port", 0),
                            config=self._system_config, **fields)
            if _wants_dashboard(node_args):
                spec.set_dashboard(node_args.get("dashboard_host") or "127.0.0.1",
                                   node_args.get("dashboard_port"))
        else:
            spec = NodeSpec(gcs_address=self.address, token=self._token,
                            config=self._system_config, **fields)
        process = spec.start_process()
        ready = wait_ready(process, get_config().head_start_timeout_s, "raggio node")
        if self.head_node is None:
            self.address = ready["gcs_address"]
            self._token = ready["token"]
            self.webui_url = ready.get("dashboard_url", "").partition("://")[2] or None
            cluster_file.remember_token(self.address, self._token)
            node = ClusterNode(process, ready["node_id"], ready["node_address"],
                               ready["session_dir"], True, node_args)
            self.head_node = node
        else:
            node = ClusterNode(process, ready["node_id"], ready["node_address"],
                               ready["session_dir"], False, node_args)
            self.worker_nodes.append(node)
        if wait:
            self.wait_for_nodes()
        return node

    def remove_node(self, node: ClusterNode, allow_graceful: bool = True) -> None:
        """Stop a node's processes (gracefully: its node manager ends its workers)."""
        _stop_tied(node.process, allow_graceful)
        if node is self.head_node:
            self.head_node = None
        elif node in self.worker_nodes:
            self.worker_nodes.remove(node)

    def alive_node_ids(self) -> set[str]:
        nodes = self._query("get_nodes")
        return {n["node_id"].hex() for n in nodes if n["state"] == "ALIVE"}

    def wait_for_nodes(self, timeout: float = 30) -> None:
        """Wait until the control store sees exactly this cluster's live nodes."""
        expected = {n.node_id for n in self.list_all_nodes()}
        deadline = time.monotonic() + timeout
        while True:
            alive = self.alive_node_ids()
            if alive == expected:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"Timed out after {timeout} s waiting for nodes: "
                                   f"{len(alive)} alive, {len(expected)} expected.")
            time.sleep(0.05)

    def connect(self, namespace: str | None = None):
        import raggio
        return raggio.init(address=self.address, namespace=namespace)

    def shutdown(self) -> None:
        for node in reversed(self.list_all_nodes()):
            self.remove_node(node)

    def _query(self, op: str):
        async def query():
            conn = await connect(self.address, token=self._token, timeout_s=10)
            try:
                return await conn.call_with_timeout(op, None, 10)
            finally:
                conn.close()
        return asyncio.run(query())

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.shutdown()


def _stop_tied(process: subprocess.Popen, allow_graceful: bool = True) -> None:
    """Stop a tied node's process: close its stdin (gracefully: its node manager ends its
    workers), else, or after 10 s, kill it."""
    if allow_graceful:
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    else:
        process.kill()
    process.wait()


#: The head's node type in an ``AutoscalingCluster``'s cluster file (Ray's).
HEAD_NODE_TYPE = "ray.head.default"
#: What an ``AutoscalingCluster``'s cluster file says besides its node types (the settings
#: of Ray's fake_multinode example, which Ray's helper starts from); its keyword arguments
#: replace them.
_AUTOSCALING_DEFAULTS = {
    "cluster_name": "fake_multinode",
    "max_workers": 8,
    "upscaling_speed": 1.0,
    "idle_timeout_minutes": 0.1,
    "provider": {"type": "fake_multinode", "use_node_id_as_ip": True,
                 "disable_node_updaters": True, "disable_launch_config_check": True},
    "head_node_type": HEAD_NODE_TYPE,
    # Nothing runs over SSH on these nodes, and never Ray's default `ray stop`.
    "head_start_ray_commands": [],
    "worker_start_ray_commands": [],
}
#: The head's environment, which its autoscaler's monitor inherits: a round every second (as
#: Ray's helper sets it), so that tests see nodes come and go in seconds.
_AUTOSCALER_ENV = {"RAGGIO_AUTOSCALER_UPDATE_INTERVAL_S": "1"}
#: A node type's resources that are ``NodeSpec`` fields of their own.
_RESOURCE_FIELDS = {"CPU": "num_cpus", "GPU": "num_gpus", "memory": "memory",
                    "object_store_memory": "object_store_memory"}


class AutoscalingCluster:
    """A head whose autoscaler launches and removes workers on this machine (Ray's helper).

    Args:
        head_resources: The head's resources, e.g. ``{"CPU": 2}`` (the head node type's).
        worker_node_types: The worker node types, by name, as the cluster file's
            ``available_node_types`` writes them: ``{"cpu_node": {"resources": {"CPU": 4},
            "node_config": {}, "min_workers": 0, "max_workers": 2}}``.
        autoscaler_v2: Accepted for Ray's signature; raggio has one autoscaler.
        **config_kwargs: Top-level keys of the cluster file (``max_workers``,
            ``idle_timeout_minutes``, ``upscaling_speed``...), which replace those of
            ``_AUTOSCALING_DEFAULTS``.

    ``start()`` starts the head in a temp dir of its own (``temp_dir``), on free ports;
    ``init(address=cluster.address)`` joins it (``init("auto")`` only where
    RAGGIO_TEMP_DIR names ``temp_dir``). ``shutdown()`` stops the head, then every node
    its autoscaler started, by pid; it never runs ``raggio stop``. Departure: Ray's
    helper runs ``ray start --head`` and ``ray stop --force``, which stop every Ray process
    of the machine.
    """

    def __init__(self, head_resources: dict, worker_node_types: dict,
                 autoscaler_v2: bool = False, **config_kwargs):
        self._head_resources = dict(head_resources)
        #: The cluster file (Ray's shape), which ``start()`` gives the head.
        self.config: dict = dict(copy.deepcopy(_AUTOSCALING_DEFAULTS),
                           available_node_types={
                               **copy.deepcopy(worker_node_types),
                               HEAD_NODE_TYPE: {"resources": dict(head_resources),
                                                "node_config": {}, "max_workers": 0}},
                           **copy.deepcopy(config_kwargs))
        self.address = ""
        #: Where the cluster's sessions (and its cluster file) live, once started.
        self.temp_dir: str | None = None
        self._head: subprocess.Popen | None = None
        #: The head's ready line: its gcs_address, session_dir, token_path...
        self._head_info: dict = {}

    def start(self, _system_config: dict | None = None,
              override_env: dict | None = None) -> None:
        """Start the head with the cluster file; return once it is up.

        Args:
            _system_config: Ray's cluster-wide settings (the keys raggio honours), for the
                head and, through it, every node it launches.
            override_env: Environment variables of the head and the nodes it launches.

        Raises:
            RuntimeError: the cluster was started already.
            RaySystemError: the head did not start (its reason).
        """
        if self._head is not None:
            raise RuntimeError(f"This AutoscalingCluster runs already (head at "
                               f"{self.address}): call shutdown() before starting it again.")
        os.makedirs(get_config().temp_dir, exist_ok=True)
        self.temp_dir = tempfile.mkdtemp(prefix="autoscaling-", dir=get_config().temp_dir)
        config_path = os.path.join(self.temp_dir, "autoscaling_config.json")
        with open(config_path, "w") as file:
            json.dump(self.config, file)
        resources = dict(self._head_resources)
        fields = {name: resources.pop(key) for key, name in _RESOURCE_FIELDS.items()
                  if key in resources}
        spec = NodeSpec(head=True, tied=True, cluster_file=True, temp_dir=self.temp_dir,
                        autoscaling_config=config_path, resources=resources,
                        config=honoured_system_config(_system_config or {},
                                                      "AutoscalingCluster"),
                        env={**_AUTOSCALER_ENV, **(override_env or {})}, **fields)
        process = spec.start_process()
        try:
            ready = wait_ready(process, get_config().head_start_timeout_s, "raggio head")
        except BaseException:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            raise
        self._head, self._head_info = process, ready
        self.address = ready["gcs_address"]
        cluster_file.remember_token(self.address, ready["token"])

    def shutdown(self) -> None:
        """Stop the head (its autoscaler ends with it), then the nodes it launched; remove
        the temp dir."""
        if self._head is None:
            return
        _stop_tied(self._head)
        self._head = None
        self.node_provider().terminate_all()
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def node_provider(self) -> FakeMultiNodeProvider:
        """The provider of this cluster's workers, as its autoscaler sees it (what it
        launched: ``non_terminated_nodes({})``)."""
        provider_config = dict(self.config["provider"],
                               **{key: self._head_info[key] for key in HEAD_KEYS})
        return FakeMultiNodeProvider(provider_config, self.config["cluster_name"])
