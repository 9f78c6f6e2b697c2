"""The application metrics' report, as its writers and its keeper share it; raggio's own
family names, which its readers tell from an application's.

Drivers and workers (``core/app_metrics.py``) send their node manager
``report_metrics``: ``{"worker_id": bytes, "metrics": [[name, kind,
description, tag keys, boundaries, [[tag values, value], ...]], ...]}``, only
the series that changed; the node manager (``node/app_metrics.py``) keeps and
exports them. A counter's value is its running total in that process, a
gauge's its last value, a histogram's ``[bucket counts..., sum, count]`` with
one bucket more than it has boundaries (the last is +Inf).
"""

COUNTER, GAUGE, HISTOGRAM = "counter", "gauge", "histogram"

#: The families with Ray's names that raggio's nodes export of themselves
#: (``node/metric_families.py``); an application's metric is any other ``ray_`` family.
RAY_FAMILIES = frozenset({
    "ray_node_cpu_utilization", "ray_node_cpu_count", "ray_node_mem_used",
    "ray_node_mem_available", "ray_node_mem_total", "ray_node_disk_usage", "ray_node_disk_free",
    "ray_node_disk_utilization_percentage", "ray_node_network_sent",
    "ray_node_network_received", "ray_node_network_send_speed",
    "ray_node_network_receive_speed", "ray_object_store_memory", "ray_object_store_used_memory",
    "ray_object_store_available_memory", "ray_object_store_num_local_objects",
    "ray_spill_manager_objects_bytes", "ray_spill_manager_objects", "ray_resources",
    "ray_component_rss_mb", "ray_component_cpu_percentage", "ray_cluster_active_nodes",
    "ray_tasks", "ray_actors", "ray_running_jobs", "ray_finished_jobs"})
