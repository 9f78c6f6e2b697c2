"""The families the node's metrics endpoint exports, with Ray's names and labels.

``NodeCollector.collect`` runs in the endpoint's thread at each scrape (see
``metrics_export.py``): it reads the node's state once
(``NodeManager.metrics_snapshot``), measures the machine with psutil, and
yields prometheus_client families. Ray's names where Ray has the metric
(``ray_node_*``, ``ray_object_store_*``, ``ray_resources``,
``ray_component_*``, and from the control store on the head
``ray_cluster_active_nodes``, ``ray_tasks``, ``ray_actors``, jobs, and the
autoscaler's ``autoscaler_*`` from its last status); raggio's own under
``raggio_``; the applications' as ``ray_<name>``.
"""

from __future__ import annotations

import logging

import psutil
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily)

from raggio.common.ids import JobID
from raggio.common.metric_records import COUNTER, GAUGE

logger = logging.getLogger(__name__)

#: Ray's labels of a node's metrics.
NODE_LABELS = ("ip", "SessionName", "NodeId")


def _cumulative(boundaries, counts: list) -> list[tuple[str, int]]:
    """Prometheus's buckets (``le``, count at or below it) from per-bucket counts."""
    bounds = [str(float(b)) for b in boundaries] + ["+Inf"]
    buckets, running = [], 0
    for bound, count in zip(bounds, counts):
        running += count
        buckets.append((bound, running))
    return buckets


def _job_hex(job_id) -> str:
    return JobID.from_int(job_id or 0).hex()


class _Families:
    """Gauges with the node's labels first, collected by name."""

    def __init__(self, node_labels: dict):
        self.keys = list(NODE_LABELS)
        self.values = [node_labels[key] for key in NODE_LABELS]
        self.out: list = []

    def gauge(self, name: str, doc: str, value: float, **labels) -> None:
        family = GaugeMetricFamily(name, doc, labels=self.keys + list(labels))
        family.add_metric(self.values + list(labels.values()), value)
        self.out.append(family)

    def gauges(self, name: str, doc: str, label_names: list, rows) -> None:
        """One family, a sample per ``(label values..., value)`` row."""
        family = GaugeMetricFamily(name, doc, labels=self.keys + label_names)
        for *label_values, value in rows:
            family.add_metric(self.values + [str(v) for v in label_values], value)
        self.out.append(family)


class NodeCollector:
    """A prometheus_client collector over one ``MetricsEndpoint``."""

    def __init__(self, endpoint):
        self._endpoint = endpoint

    def collect(self):
        endpoint = self._endpoint
        try:
            node = endpoint.read_node()
        except Exception as exc:  # noqa: BLE001 (the machine's figures are still worth serving)
            logger.warning("the metrics scrape could not read the node's state: %r", exc)
            node = None
        families = _Families(endpoint.labels)
        pids = {}
        if node is not None:
            _node(families, node)
            _application(families, endpoint.labels, node["app"])
            pids = {int(pid): name for pid, name in node["pids"].items()}
            if node.get("control_store"):
                _control_store(families, node["control_store"])
                if node["control_store"].get("autoscaler"):
                    _autoscaler(families, node["control_store"]["autoscaler"])
                for pid, name in node["control_store"]["pids"].items():
                    pids.setdefault(int(pid), name)  # a tied head's is the node's: raylet
        usage = endpoint.usage.sample(pids)
        _machine(families, usage)
        _components(families, usage["processes"])
        return families.out


def _machine(f: _Families, usage: dict) -> None:
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage("/")
    sent, received, send_speed, receive_speed = usage["network"]
    f.gauge("ray_node_cpu_utilization", "Total CPU usage of the node, in percent.",
            usage["cpu"])
    f.gauge("ray_node_cpu_count", "Logical CPUs of the node.", psutil.cpu_count())
    f.gauge("ray_node_mem_used", "Memory in use on the node, in bytes.",
            memory.total - memory.available)
    f.gauge("ray_node_mem_available", "Memory available on the node, in bytes.",
            memory.available)
    f.gauge("ray_node_mem_total", "Memory of the node, in bytes.", memory.total)
    f.gauge("ray_node_disk_usage", "Disk space in use on the node's root file system, bytes.",
            disk.used)
    f.gauge("ray_node_disk_free", "Disk space free on the node's root file system, bytes.",
            disk.free)
    f.gauge("ray_node_disk_utilization_percentage", "Disk space in use, in percent.",
            disk.percent)
    f.gauge("ray_node_network_sent", "Bytes the node sent since it booted.", sent)
    f.gauge("ray_node_network_received", "Bytes the node received since it booted.", received)
    f.gauge("ray_node_network_send_speed", "Bytes per second sent since the last scrape.",
            send_speed)
    f.gauge("ray_node_network_receive_speed", "Bytes per second received since the last "
            "scrape.", receive_speed)


def _node(f: _Families, node: dict) -> None:
    store = node["store"]
    f.gauges("ray_object_store_memory", "Object store memory by location, in bytes.",
             ["Location"], [("MMAP_SHM", store["used_bytes"]),
                            ("SPILLED", store["spilled_bytes"])])
    f.gauge("ray_object_store_used_memory", "Object store memory in use, in bytes.",
            store["used_bytes"])
    f.gauge("ray_object_store_available_memory", "Object store memory free, in bytes.",
            store["capacity_bytes"] - store["used_bytes"])
    f.gauge("ray_object_store_num_local_objects", "Objects in this node's store.",
            store["num_objects"])
    f.gauge("ray_spill_manager_objects_bytes", "Bytes of objects spilled to disk now.",
            store["spilled_bytes"], Type="Spilled")
    f.gauge("ray_spill_manager_objects", "Objects spilled to disk now.", store["num_spilled"],
            Type="Spilled")
    f.gauge("raggio_object_store_capacity_bytes", "The object store's size, in bytes.",
            store["capacity_bytes"])
    f.gauge("raggio_spilled_bytes_total", "Bytes spilled since the node started.",
            store["spilled_bytes_total"])
    f.gauge("raggio_restored_bytes_total", "Bytes restored from spill since the node started.",
            store["restored_bytes_total"])
    total, available = node["resources_total"], node["resources_available"]
    f.gauges("ray_resources", "Logical resources of the node, used and available.",
             ["Name", "State"],
             [row for name in total for row in (
                 (name, "USED", total[name] - available.get(name, 0)),
                 (name, "AVAILABLE", available.get(name, 0)))])
    f.gauge("raggio_lease_queue_length", "Worker lease requests waiting on this node.",
            node["lease_queue"])
    f.gauges("raggio_workers", "The node's worker processes by state.", ["State"],
             sorted(node["workers"].items()))


def _components(f: _Families, usage: list) -> None:
    f.gauges("ray_component_rss_mb", "Resident memory of each raggio process, in MB.",
             ["Component", "pid"], [(name, pid, rss) for name, pid, rss, _ in usage])
    f.gauges("ray_component_cpu_percentage", "CPU use of each raggio process, in percent.",
             ["Component", "pid"], [(name, pid, cpu) for name, pid, _, cpu in usage])


def _control_store(f: _Families, gcs: dict) -> None:
    f.gauge("ray_cluster_active_nodes", "Live nodes of the cluster.", gcs["active_nodes"])
    f.gauges("ray_tasks", "Task attempts in the task history, by state.",
             ["State", "Name", "JobId"],
             [(state, name, _job_hex(job), count) for state, name, job, count in gcs["tasks"]])
    f.gauges("ray_actors", "Actors by state.", ["State", "Name", "JobId"],
             [(state, name, _job_hex(job), count) for state, name, job, count in gcs["actors"]])
    f.gauge("ray_running_jobs", "Jobs (drivers) running.", gcs["running_jobs"])
    finished = CounterMetricFamily("ray_finished_jobs", "Jobs that have finished.",
                                   labels=f.keys)
    finished.add_metric(f.values, gcs["finished_jobs"])
    f.out.append(finished)
    f.gauges("raggio_task_history_dropped", "Task attempts left out of the task history: "
             "evicted by the control store (its task_events_max_tasks), or dropped by the "
             "processes before sending (their buffer).", ["Where"],
             [("control_store", gcs["task_history_dropped"]),
              ("source", gcs["task_events_dropped_at_source"])])
    latency = HistogramMetricFamily(
        "raggio_control_store_rpc_latency_seconds",
        "How long the control store took to answer each RPC.", labels=f.keys + ["Method"])
    for op, (_count, total, *buckets) in sorted(gcs["rpc"].items()):
        latency.add_metric(f.values + [op], _cumulative(gcs["latency_buckets"], buckets), total)
    f.out.append(latency)


#: Ray's autoscaler counters: (the status record's key, its help).
AUTOSCALER_COUNTERS = (
    ("started_nodes", "Number of nodes started."),
    ("stopped_nodes", "Number of nodes stopped."),
    ("failed_create_nodes", "Number of nodes that failed to be created due to an exception "
                            "in the node provider's create_node method."),
    ("update_loop_exceptions", "Number of exceptions raised in the update loop of the "
                               "autoscaler."),
    ("drain_node_exceptions", "Number of exceptions raised when making a DrainNode rpc "
                              "prior to node termination."),
)


def _autoscaler(f: _Families, status: dict) -> None:
    """Ray's ``autoscaler_*`` families, from the monitor's last round (``autoscaler.py``);
    its counters count from the monitor's start (a restart resets them, as Ray's)."""
    f.gauges("autoscaler_active_nodes", "Number of nodes in the cluster, by node type.",
             ["NodeType"], sorted(status.get("running", {}).items()))
    f.gauges("autoscaler_pending_nodes", "Number of nodes pending to be started, by node "
             "type.", ["NodeType"], sorted(status.get("launching", {}).items()))
    f.gauge("autoscaler_running_workers_nodes", "Number of worker nodes running.",
            status.get("workers", 0))
    f.gauges("autoscaler_cluster_resources", "Total logical resources in the cluster.",
             ["resource"], sorted(status.get("resources", {}).items()))
    f.gauges("autoscaler_pending_resources", "Pending logical resources in the cluster "
             "(of the nodes being launched).", ["resource"],
             sorted(status.get("pending_resources", {}).items()))
    for key, doc in AUTOSCALER_COUNTERS:
        counter = CounterMetricFamily(f"autoscaler_{key}", doc, labels=f.keys)
        counter.add_metric(f.values, status.get("counters", {}).get(key, 0))
        f.out.append(counter)


def _application(f: _Families, node_labels: dict, app: list) -> None:
    """The applications' metrics (``node/app_metrics.py``' export) as ``ray_<name>``."""
    for name, kind, description, tag_keys, boundaries, series in app:
        node_keys = [key for key in NODE_LABELS if key not in tag_keys]
        base = [node_labels[key] for key in node_keys]
        worker = ["WorkerId"] if kind == GAUGE else []
        labels = node_keys + list(tag_keys) + worker
        family_name = "ray_" + name
        if kind == COUNTER:
            family = CounterMetricFamily(family_name, description, labels=labels)
        elif kind == GAUGE:
            family = GaugeMetricFamily(family_name, description, labels=labels)
        else:
            family = HistogramMetricFamily(family_name, description, labels=labels)
        for tag_values, value, worker_id in series:
            label_values = base + list(tag_values) + ([worker_id] if worker else [])
            if kind == COUNTER or kind == GAUGE:
                family.add_metric(label_values, value)
            else:
                *counts, total, _count = value
                family.add_metric(label_values, _cumulative(boundaries, counts), total)
        f.out.append(family)
