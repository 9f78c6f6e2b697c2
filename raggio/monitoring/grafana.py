"""Grafana's files for a session: a dashboard of raggio's metric families, and provisioning.

The head writes them when it starts (``head_monitoring.py``), where Ray's
dashboard writes its own, under ``<session>/metrics/grafana/``:
``dashboards/default_grafana_dashboard.json`` (the dashboard),
``provisioning/dashboards/default.yml`` (load the dashboards from there),
``provisioning/datasources/default.yml`` (the Prometheus to read, by default the
one ``raggio metrics launch-prometheus`` starts) and ``grafana.ini`` (point a
Grafana at the provisioning: ``grafana-server --config <that file>``).

The dashboard is generated from ``PANELS``, a short description of each chart
(title, unit, PromQL over the families the nodes export), not kept as pasted
JSON. Not owned here: running Grafana (raggio does not), and the families
themselves (``node/`` exports them).
"""

from __future__ import annotations

import dataclasses
import json
import os

from raggio.monitoring.prometheus import DEFAULT_HOST, DEFAULT_PORT

#: Ray's file name and uid for its default dashboard, so links made for Ray's find it.
DASHBOARD_FILE = "default_grafana_dashboard.json"
DASHBOARD_UID = "rayDefaultDashboard"
#: The datasource's name (Ray's default, ``RAY_PROMETHEUS_NAME``).
DATASOURCE_NAME = "Prometheus"
#: Stands for the dashboard's filters in ``PANELS``' queries: the chosen sessions and nodes.
FILTERS = "$F"
_FILTER_LABELS = 'SessionName=~"$SessionName",instance=~"$Instance"'
#: The legend of a series drawn as a limit (a dashed line, as in Ray's dashboards).
LIMIT_LEGEND = "MAX"


@dataclasses.dataclass(frozen=True)
class Panel:
    """One chart: each target is ``(PromQL, legend)``; ``$F`` in a query is replaced by the
    dashboard's filters (a family's labels go before it: ``{Name="CPU",$F}``)."""

    title: str
    description: str
    unit: str  #: Grafana's unit id: percent, bytes, Bps, mbytes, short
    targets: tuple[tuple[str, str], ...]
    stacked: bool = False


PANELS = (
    Panel("Node CPU utilization", "The share of each node's CPUs in use (all processes).",
          "percent", (("avg(ray_node_cpu_utilization{$F}) by (instance)", "{{instance}}"),)),
    Panel("Logical CPUs in use", "CPUs held by running tasks and actors, per node, against "
          "the cluster's total.", "short",
          (('sum(ray_resources{Name="CPU",State="USED",$F}) by (instance)', "{{instance}}"),
           ('sum(ray_resources{Name="CPU",$F})', LIMIT_LEGEND)), stacked=True),
    Panel("Node memory", "Memory in use on each node (all processes), against the total.",
          "bytes", (("sum(ray_node_mem_used{$F}) by (instance)", "{{instance}}"),
                    ("sum(ray_node_mem_total{$F})", LIMIT_LEGEND)), stacked=True),
    Panel("Node disk usage", "Bytes used on the disk of each node's session directory.",
          "bytes", (("sum(ray_node_disk_usage{$F}) by (instance)", "{{instance}}"),)),
    Panel("Node network", "Bytes per second each node sends and receives.", "Bps",
          (("sum(rate(ray_node_network_sent{$F}[1m])) by (instance)", "sent {{instance}}"),
           ("sum(rate(ray_node_network_received{$F}[1m])) by (instance)",
            "received {{instance}}"))),
    Panel("Object store memory", "Bytes held in each node's object store, against the "
          "stores' capacity.", "bytes",
          (("sum(ray_object_store_used_memory{$F}) by (instance)", "{{instance}}"),
           ('sum(ray_resources{Name="object_store_memory",$F})', LIMIT_LEGEND)), stacked=True),
    Panel("Objects in the object store", "Objects each node's store holds.", "short",
          (("sum(ray_object_store_num_local_objects{$F}) by (instance)", "{{instance}}"),)),
    Panel("Spilled objects", "Bytes of objects each node has spilled to disk.", "bytes",
          (("sum(ray_spill_manager_objects_bytes{$F}) by (instance)", "{{instance}}"),)),
    Panel("Tasks by state", "Task attempts in each state, cluster-wide.", "short",
          (("sum(ray_tasks{$F}) by (State)", "{{State}}"),), stacked=True),
    Panel("Actors by state", "Actors in each state, cluster-wide.", "short",
          (("sum(ray_actors{$F}) by (State)", "{{State}}"),), stacked=True),
    Panel("Resources in use", "Each resource held by tasks and actors, cluster-wide.",
          "short", (('sum(ray_resources{State="USED",$F}) by (Name)', "{{Name}}"),)),
    Panel("Cluster nodes and jobs", "Live nodes, running jobs and jobs finished so far.",
          "short", (("sum(ray_cluster_active_nodes{$F})", "active nodes"),
                    ("sum(ray_running_jobs{$F})", "running jobs"),
                    ("sum(ray_finished_jobs_total{$F})", "finished jobs"))),
    Panel("Autoscaler nodes", "Nodes running and being launched, by node type (on a "
          "cluster with an autoscaler).", "short",
          (("sum(autoscaler_active_nodes{$F}) by (NodeType)", "{{NodeType}}"),
           ("sum(autoscaler_pending_nodes{$F}) by (NodeType)", "launching {{NodeType}}"))),
    Panel("raggio processes: memory", "Resident memory of raggio's processes by kind "
          "(control store, node manager, workers, dashboard).", "mbytes",
          (("sum(ray_component_rss_mb{$F}) by (Component)", "{{Component}}"),), stacked=True),
    Panel("raggio processes: CPU", "CPU use of raggio's processes by kind (100 = one core).",
          "percent", (("sum(ray_component_cpu_percentage{$F}) by (Component)",
                       "{{Component}}"),), stacked=True),
)

#: The grid is 24 units wide: two charts a row.
_WIDTH, _HEIGHT = 12, 8


def _panel_json(panel: Panel, panel_id: int) -> dict:
    row, column = divmod(panel_id - 1, 2)
    targets = [{"expr": expr.replace(FILTERS, _FILTER_LABELS), "legendFormat": legend,
                "refId": chr(ord("A") + index), "datasource": "${datasource}"}
               for index, (expr, legend) in enumerate(panel.targets)]
    limit = {"matcher": {"id": "byName", "options": LIMIT_LEGEND},
             "properties": [{"id": "custom.stacking", "value": {"mode": "none"}},
                            {"id": "custom.lineStyle", "value": {"fill": "dash"}},
                            {"id": "custom.fillOpacity", "value": 0}]}
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": panel.title,
        "description": panel.description,
        "datasource": "${datasource}",
        "gridPos": {"x": column * _WIDTH, "y": row * _HEIGHT, "w": _WIDTH, "h": _HEIGHT},
        "fieldConfig": {
            "defaults": {"unit": panel.unit, "min": 0, "custom": {
                "fillOpacity": 10,
                "stacking": {"mode": "normal" if panel.stacked else "none"}}},
            "overrides": [limit],
        },
        "options": {"legend": {"displayMode": "list", "placement": "bottom"},
                    "tooltip": {"mode": "multi"}},
        "targets": targets,
    }


def _variable(name: str, query: str, description: str) -> dict:
    return {"name": name, "label": name, "type": "query", "datasource": "${datasource}",
            "query": {"query": query, "refId": name}, "definition": query,
            "description": description, "refresh": 2, "includeAll": True, "multi": True,
            # ".*", not ".+": "All" also keeps series without the label.
            "allValue": ".*", "current": {"text": "All", "value": "$__all"}, "sort": 1}


def dashboard() -> dict:
    """The dashboard of ``PANELS``, as Grafana's JSON model."""
    return {
        "uid": DASHBOARD_UID,
        "title": "Default Dashboard",
        "tags": ["raggio", "ray"],
        "editable": True,
        "schemaVersion": 36,
        "refresh": "10s",
        "time": {"from": "now-30m", "to": "now"},
        "graphTooltip": 1,
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource",
             "query": "prometheus", "description": "The Prometheus to read.",
             "current": {"text": DATASOURCE_NAME, "value": DATASOURCE_NAME}},
            _variable("SessionName", "label_values(ray_node_cpu_count, SessionName)",
                      "Only these raggio sessions."),
            _variable("Instance",
                      'label_values(ray_node_cpu_count{SessionName=~"$SessionName"}, instance)',
                      "Only these nodes (their metrics endpoints)."),
        ]},
        "panels": [_panel_json(panel, index) for index, panel in enumerate(PANELS, start=1)],
    }


def grafana_dir(session_dir: str) -> str:
    return os.path.join(session_dir, "metrics", "grafana")


def write(session_dir: str, prometheus_url: str | None = None) -> str:
    """Write the dashboard and Grafana's provisioning files for the session; return the
    dashboard's path. ``prometheus_url``: the datasource (default: Prometheus's default
    port on this machine, where ``raggio metrics launch-prometheus`` starts it)."""
    root = grafana_dir(session_dir)
    dashboards = os.path.join(root, "dashboards")
    provisioning = os.path.join(root, "provisioning")
    url = prometheus_url or f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
    # YAML written as text: the head calls this at every start, and the yaml module costs
    # more to import than these three small files cost to spell out.
    files = {
        os.path.join(dashboards, DASHBOARD_FILE): json.dumps(dashboard(), indent=1),
        os.path.join(provisioning, "dashboards", "default.yml"): (
            "apiVersion: 1\nproviders:\n  - name: raggio\n    folder: raggio\n    type: file\n"
            f"    options:\n      path: {json.dumps(dashboards)}\n"),
        os.path.join(provisioning, "datasources", "default.yml"): (
            "apiVersion: 1\ndatasources:\n"
            f"  - name: {DATASOURCE_NAME}\n    type: prometheus\n    access: proxy\n"
            f"    url: {json.dumps(url)}\n    isDefault: true\n"),
        os.path.join(root, "grafana.ini"): (
            "[security]\nallow_embedding = true\n\n[auth.anonymous]\nenabled = true\n"
            f"org_name = Main Org.\norg_role = Viewer\n\n[paths]\nprovisioning = {provisioning}\n"),
    }
    for path, content in files.items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(content)
    return os.path.join(dashboards, DASHBOARD_FILE)
