"""Fixtures of the dashboard's tests: a real two-node cluster whose head runs the dashboard.

``dashboard_cluster`` (one per module) starts a head with a dashboard on a free
port (its control store, head node and dashboard, as ``raggio start --head``
has them) and a second node, each a process tied to this one (``NodeSpec``,
as ``Cluster`` starts nodes), and yields a ``DashboardCluster``: the
addresses, the token, the head's process, and ``get``, an HTTP GET with the
token. ``own_dashboard_cluster`` is a one-node one for a test
that breaks its cluster. A test that needs a driver calls ``raggio.init(address=
cluster.gcs_address)`` and ``shutdown()`` (the ``driver`` fixture does).
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import psutil
import pytest

import raggio as ray
from raggio import cluster_file
from raggio.config import get_config
from raggio.launch import wait_ready
from raggio.node_spec import NodeSpec
from raggio.test_utils import wait_until

#: What each node gets: small, so that the tests run beside others on two cores.
NODE_ARGS = {"object_store_memory": 100 * 1024**2}
#: Straight to the dashboard, whatever proxy the environment names.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Answer:
    """An HTTP answer: its status, headers and body."""

    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class DashboardCluster:
    """A running cluster with a dashboard (see the module docstring)."""

    url: str
    gcs_address: str
    token: str
    head: subprocess.Popen
    nodes: list[subprocess.Popen] = field(default_factory=list)
    node_ids: list[str] = field(default_factory=list)

    def open(self, path: str, *, headers: dict | None = None, token: str | None = "",
             timeout_s: float = 30):
        """The response to a GET of ``path`` (to read as it comes), with the cluster token
        as a Bearer header (``token=None``: none; another string: that one), or with
        ``headers`` as given. Raises ``urllib.error.HTTPError`` for an error status."""
        if headers is None:
            token = self.token if token == "" else token
            headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return _OPENER.open(urllib.request.Request(self.url + path, headers=headers),
                            timeout=timeout_s)

    def get(self, path: str, **kwargs) -> Answer:
        """The whole answer to a GET of ``path`` (``open``'s arguments)."""
        try:
            with self.open(path, **kwargs) as response:
                return Answer(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, dict(exc.headers), exc.read())

    def data(self, path: str):
        """The ``data`` of a successful answer in Ray's envelope."""
        answer = self.get(path)
        assert answer.status == 200, (path, answer.status, answer.body[:500])
        body = answer.json()
        assert body["result"] is True and body["msg"] is not None
        return body["data"]

    def stop(self) -> None:
        for process in [*reversed(self.nodes), self.head]:
            process.stdin.close()  # tied: the node exits when its stdin closes
        for process in [*self.nodes, self.head]:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.stdout.close()


def _start(spec: NodeSpec) -> tuple[subprocess.Popen, dict]:
    process = spec.start_process()
    return process, wait_ready(process, get_config().head_start_timeout_s, "raggio node")


def start_dashboard_cluster(num_nodes: int = 2) -> DashboardCluster:
    """A head with a dashboard (2 CPUs) and ``num_nodes - 1`` more nodes (1 CPU each),
    once the dashboard answers."""
    head, ready = _start(NodeSpec(head=True, port=0, include_dashboard=True, dashboard_port=0,
                                  tied=True, num_cpus=2, **NODE_ARGS))
    cluster = DashboardCluster(ready["dashboard_url"], ready["gcs_address"], ready["token"],
                               head, node_ids=[ready["node_id"]])
    cluster_file.remember_token(cluster.gcs_address, cluster.token)
    try:
        for _ in range(num_nodes - 1):
            node, ready = _start(NodeSpec(gcs_address=cluster.gcs_address, token=cluster.token,
                                          tied=True, num_cpus=1, **NODE_ARGS))
            cluster.nodes.append(node)
            cluster.node_ids.append(ready["node_id"])

        def all_alive():  # the dashboard answers, and sees every node
            answer = cluster.get("/api/v0/nodes?filter_keys=state&filter_predicates=%3D"
                                 "&filter_values=ALIVE", timeout_s=5)
            return (answer.status == 200
                    and answer.json()["data"]["result"]["num_filtered"] == num_nodes)

        wait_until(all_alive, timeout_s=60, what="the dashboard and every node",
                   interval_s=0.1)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="module")
def dashboard_cluster(module_daemons):
    cluster = start_dashboard_cluster()
    # Workers the tests start run under these; the leak check blames no test for them.
    module_daemons.extend(psutil.Process(p.pid) for p in [cluster.head, *cluster.nodes])
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def own_dashboard_cluster():
    """A one-node cluster with a dashboard, for one test that may break it."""
    cluster = start_dashboard_cluster(num_nodes=1)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def driver(dashboard_cluster):
    """A driver connected to ``dashboard_cluster`` for one test."""
    ray.init(address=dashboard_cluster.gcs_address)
    try:
        yield dashboard_cluster
    finally:
        ray.shutdown()
