"""Every node's Prometheus endpoint: Ray's families and labels, the token, the port flag."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

import raggio as ray
from raggio.cluster_utils import Cluster
from raggio.common.metric_records import RAY_FAMILIES
from raggio.exceptions import RaySystemError
from raggio.test_utils import wait_until
from metrics_scraping import samples, scrape, value


def test_every_node_exports_its_own_figures_under_rays_names(two_nodes):
    nodes = {n["NodeID"]: n for n in ray.nodes()}
    assert len(nodes) == 2
    token = two_nodes._token
    for node_id, node in nodes.items():
        assert node["MetricsExportPort"] > 0
        families = samples(scrape(node["MetricsExportPort"], token))
        labels = {"NodeId": node_id, "ip": "127.0.0.1"}
        assert value(families, "ray_node_cpu_count", **labels) >= 1
        assert value(families, "ray_node_mem_total", **labels) > 0
        assert value(families, "ray_object_store_memory", Location="MMAP_SHM") >= 0
        assert value(families, "ray_object_store_available_memory") == 80 * 1024**2
        assert value(families, "ray_resources", Name="CPU", State="AVAILABLE") == 1
        assert {s.labels["Component"] for s in families["ray_component_rss_mb"]} >= {
            "raylet", "raggio::zygote"}
        assert "raggio_lease_queue_length" in families
        # The control store's figures come from the head only, so they are not summed twice.
        assert ("ray_cluster_active_nodes" in families) == node["IsHead"]
    other = next(n for n in nodes.values() if "other" in n["Resources"])
    families = samples(scrape(other["MetricsExportPort"], token))
    assert value(families, "ray_resources", Name="other", State="AVAILABLE") == 1


def test_the_head_counts_nodes_tasks_actors_and_rpcs(two_nodes):
    @ray.remote
    def square(x):
        return x * x

    @ray.remote
    def fails():
        raise ValueError("on purpose")

    @ray.remote
    class Keeper:
        def ping(self):
            return "pong"

    assert ray.get([square.remote(i) for i in range(6)]) == [i * i for i in range(6)]
    with pytest.raises(ray.exceptions.RayTaskError):
        ray.get(fails.options(max_retries=0).remote())
    keeper = Keeper.remote()
    assert ray.get(keeper.ping.remote()) == "pong"
    head = next(n for n in ray.nodes() if n["IsHead"])

    def counted():
        families = samples(scrape(head["MetricsExportPort"], two_nodes._token))
        tasks = {(s.labels["Name"], s.labels["State"]): s.value for s in families["ray_tasks"]}
        return (tasks.get(("square", "FINISHED")) == 6 and tasks.get(("fails", "FAILED")) == 1
                and families)
    families = wait_until(counted, timeout_s=30, what="ray_tasks to count the tasks")
    assert value(families, "ray_cluster_active_nodes") == 2
    assert value(families, "ray_actors", Name="Keeper", State="ALIVE") == 1
    assert value(families, "ray_running_jobs") >= 1
    # Readers (the dashboard) tell raggio's families from an application's by this list.
    assert {name for name in families if name.startswith("ray_")} == RAY_FAMILIES
    latency = {s.labels["Method"] for s in families["raggio_control_store_rpc_latency_seconds"]
               if s.name.endswith("_count")}
    assert {"register_node", "get_nodes", "create_actor"} <= latency


def test_the_endpoint_asks_for_the_token(two_nodes):
    port = ray.nodes()[0]["MetricsExportPort"]
    for token in (None, "not-the-token"):
        with pytest.raises(urllib.error.HTTPError) as error:
            scrape(port, token)
        assert error.value.code == 401
        assert b"Bearer" in error.value.read()


def test_a_taken_metrics_port_fails_the_node_and_names_the_flag():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    cluster = Cluster()
    try:
        with pytest.raises(RaySystemError, match="--metrics-export-port"):
            cluster.add_node(num_cpus=1, metrics_export_port=taken.getsockname()[1])
    finally:
        taken.close()
        cluster.shutdown()


def test_a_chosen_port_is_the_one_served(shutdown_only):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ray.init(num_cpus=1, _metrics_export_port=port)  # Ray's keyword
    assert ray.nodes()[0]["MetricsExportPort"] == port
    from raggio.core import context
    assert "ray_node_cpu_count" in samples(scrape(port, context.get_core().token))
