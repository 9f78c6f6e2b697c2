"""Ray's HTTP API on the dashboard: the same paths, parameters and JSON as Ray 2.60's.

This module answers the version (``/api/version``, which Ray's clients check
before anything else), the health checks (``/api/healthz``,
``/api/gcs_healthz``, ``/-/healthz``: no token needed), the cluster's status
(``/api/cluster_status``) and its nodes (``/nodes?view=summary``,
``view=hostNameList``); ``routes()`` adds the state API (``state_routes.py``)
and the logs (``log_routes.py``). The jobs API (``/api/jobs/``) is
``job_routes.py``'s.

Where Ray answers with its protobufs' fields in camelCase (``rest_response``'s
``convert_google_style``: ``object_store_memory`` becomes
``objectStoreMemory``, and ``node:__internal_head__`` ``node:InternalHead``),
so does this module, so that what reads Ray's keys finds them.
"""

from __future__ import annotations

import asyncio
import datetime
import time

from aiohttp import web

from raggio import __version__
from raggio import cluster_status as status_text
from raggio.cluster_status import node_usage, summed_usage
from raggio.common import autoscaler_status
from raggio.common.placement_group_resources import is_group_resource
from raggio.dashboard import log_routes, state_routes
from raggio.dashboard.query import query_timeout
from raggio.dashboard.routing import SESSION, STORE, BadRequest, ok
from raggio.util.state.rows import RESOURCES

#: Ray's dashboard API version, which Ray's clients check (``/api/version``'s "version").
API_VERSION = "4"
#: The Ray release whose API this is. Ray's clients refuse a cluster whose "ray_version"
#: is older than theirs needs (``SubmissionClient``: 1.9 and up), so it is Ray's number;
#: raggio's own is "raggio_version".
RAY_API_RELEASE = "2.60.0"

def google_style(value: dict) -> dict:
    """Ray's ``to_google_style``: the keys of a dict, of the dicts in it and of the dicts
    directly in its lists in camelCase (``a_b_c`` -> ``aBC``; ``"node_" + hex`` -> ``"node"
    + hex.title()``), as its REST answers have them. Dicts inside lists of lists keep their
    keys, as in Ray: resource demands stay ``{"CPU": 1, "object_store_memory": ...}``."""
    out = {}
    for key, item in value.items():
        if isinstance(item, dict):
            item = google_style(item)
        elif isinstance(item, list):
            item = [google_style(x) if isinstance(x, dict) else x for x in item]
        out[_camel(key)] = item
    return out


def _camel(key):
    if not isinstance(key, str):
        return key
    first, *rest = key.split("_")
    return first + "".join(part.title() for part in rest)


async def version(request: web.Request) -> web.Response:
    """Ray's ``/api/version``, and raggio's own version and control store address (which
    raggio's clients given the dashboard's URL connect to: ``core.api.find_cluster``)."""
    session = request.app[SESSION]
    return web.json_response({"version": API_VERSION, "ray_version": RAY_API_RELEASE,
                              "ray_commit": "raggio", "raggio_version": __version__,
                              "raggio_gcs_address": session["gcs_address"],
                              "session_name": session["session_name"]})


async def gcs_healthz(request: web.Request) -> web.Response:
    await request.app[STORE].call("get_nodes", None, timeout_s=2.0)
    return web.Response(text="success", content_type="application/text")


async def healthz(request: web.Request) -> web.Response:
    """Ray's agent's check: the head node ("raylet") and the control store ("gcs")."""
    nodes = await request.app[STORE].call("get_nodes", None, timeout_s=2.0)
    head_alive = any(n.get("is_head") and n["state"] == "ALIVE" for n in nodes)
    text = (f"raylet: {'success' if head_alive else 'the head node is not alive'}\n"
            "gcs: success")
    return web.Response(text=text, status=200 if head_alive else 503,
                        content_type="application/text")


async def dashboard_healthz(request: web.Request) -> web.Response:
    """The dashboard itself answers (Ray's proxy check path)."""
    return web.Response(text="success", content_type="application/text")


def _cluster_report(nodes: list[dict], groups: dict, now: float) -> dict:
    """Ray's ``clusterStatus``: the autoscaler's report and the load metrics, from the
    control store's nodes and placement groups (before ``google_style``)."""
    alive = [n for n in nodes if n["state"] == "ALIVE"]
    usage_by_node = {n["node_id"].hex(): node_usage(n) for n in alive}
    usage = summed_usage(usage_by_node.values())
    demand: dict[tuple, int] = {}
    for node in alive:
        for item in node.get("demand", ()):
            shape = tuple(sorted(item["resources"].items()))
            demand[shape] = demand.get(shape, 0) + 1
    type_of = {n["node_id"].hex(): f"node_{n['node_id'].hex()}" for n in nodes}
    return {
        "time": now, "gcs_request_time": 0.0, "monitor_pid": None,
        "autoscaler_update_time": 0.0, "non_terminated_nodes_time": 0.0,
        "autoscaler_report": {
            "active_nodes": {type_of[n["node_id"].hex()]: 1 for n in alive},
            "idle_nodes": None, "pending_nodes": [], "pending_launches": {},
            "failed_nodes": [[n["node_ip"], type_of[n["node_id"].hex()]]
                             for n in nodes if n["state"] == "DEAD"],
            "node_availability_summary": {"node_availabilities": {}},
            "node_activities": None, "pending_resources": {}, "node_type_mapping": type_of,
            "legacy": True},
        "load_metrics_report": {
            "usage": usage,
            "resource_demand": [[dict(shape), count] for shape, count in demand.items()],
            "pg_demand": [{"strategy": g["strategy"],
                           "bundles": [g["bundles"][i] for i in sorted(g["bundles"])]}
                          for g in groups.values() if g["state"] == "PENDING"],
            "request_demand": [],
            "node_types": [[{k: v for k, v in n["resources"].items()
                             if not is_group_resource(k)}, 1] for n in alive],
            "head_ip": None, "usage_by_node": usage_by_node, "node_type_mapping": None,
            "idle_time_map": None},
    }


async def cluster_status(request: web.Request) -> web.Response:
    """Ray's ``/api/cluster_status``: ``autoscalingStatus`` is what ``raggio status`` prints
    (nodes, usage, pending demand and why it waits, the autoscaler's view where one runs);
    ``format=1`` answers only that text."""
    timeout_s = query_timeout(request)
    store = request.app[STORE]
    started = time.monotonic()
    nodes, groups, pending, autoscaler = await asyncio.gather(
        store.call("get_nodes", None, timeout_s=timeout_s),
        store.call("placement_group_table", None, timeout_s=timeout_s),
        store.call("pending_tasks", None, timeout_s=timeout_s),
        store.call("kv_multi_get", autoscaler_status.KEYS, timeout_s=timeout_s))
    text = status_text.render(nodes, groups, pending, now=datetime.datetime.now(),
                              autoscaler=autoscaler_status.read(*autoscaler))
    if request.query.get("format") == "1":
        return ok({"clusterStatus": text}, msg="Got formatted cluster status.")
    report = _cluster_report(nodes, groups, time.time())
    report["gcs_request_time"] = time.monotonic() - started
    return ok(google_style({"autoscaling_status": text, "autoscaling_error": None,
                            "cluster_status": report}), msg="Got cluster status.")


def _node_summary(node: dict, now: float) -> dict:
    """One node of ``/nodes?view=summary``: what Ray's head knows of it without its agent
    (the control store's record, in Ray's ``GcsNodeInfo`` names, under "raylet")."""
    row = RESOURCES["nodes"].shape(node)
    host, _, port = node["address"].rpartition(":")
    store_total = node.get("resources", {}).get("object_store_memory", 0)
    store_used = node.get("object_store_used", 0)
    raylet = dict(row, node_manager_address=node["node_ip"], node_manager_port=int(port),
                  node_manager_hostname=node.get("hostname", host),
                  object_store_used_memory=store_used,
                  object_store_available_memory=store_total - store_used,
                  resources_available=node.get("available", {}),
                  state_message=row["state_message"] or None)
    return {"now": now, "hostname": node.get("hostname", host), "ip": node["node_ip"],
            "raylet": raylet}


async def nodes_view(request: web.Request) -> web.Response:
    """Ray's ``/nodes?view=summary`` (every node, with its logical resources' usage) and
    ``view=hostNameList``; another view is a 400."""
    view = request.query.get("view")
    if view != "summary" and (view or "").lower() != "hostnamelist":
        raise BadRequest(f"Unknown view {view}. The views are summary and hostNameList.")
    nodes = await request.app[STORE].call("get_nodes", None, timeout_s=query_timeout(request))
    if view == "summary":
        now = time.time()
        logical = {n["node_id"].hex(): "\n".join(status_text.usage_lines(node_usage(n)))
                   for n in nodes if n["state"] == "ALIVE"}
        summary = [google_style(_node_summary(n, now)) for n in nodes]
        return ok({"summary": summary, "nodeLogicalResources": logical},
                  msg="Node summary fetched.")
    hostnames = sorted({n.get("hostname") or n["node_ip"] for n in nodes
                        if n["state"] == "ALIVE"})
    return ok({"hostNameList": hostnames}, msg="Node hostname list fetched.")


def routes() -> list[web.RouteDef]:
    """This module's routes, the logs', then the state API's (whose ``/api/v0/{name}``
    answers any name not taken before it)."""
    return [web.get("/api/version", version),
            web.get("/api/ray/version", version),
            web.get("/api/gcs_healthz", gcs_healthz),
            web.get("/api/healthz", healthz),
            web.get("/-/healthz", dashboard_healthz),
            web.get("/api/cluster_status", cluster_status),
            web.get("/nodes", nodes_view),
            *log_routes.routes(),
            *state_routes.routes()]
