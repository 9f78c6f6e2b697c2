"""The web UI's own views of the cluster: pages of its tables, and the aggregates that Ray's
REST API (``rest.py``) has no route for.

Routes under ``/api/ui/``, read by ``static/js/pages/*.js``; not a public API. Rows keep
Ray's field names (shaped by the state API, ``raggio.util.state.rows``) and answers use
Ray's envelope, so a page reads an actor from here as it would from ``/api/v0/actors``.
What they add: resource usage per node (``usage.py``, shared with Ray's cluster status),
the cluster's recent events (node deaths, actor restarts, jobs) read from the records'
own times, actors and task attempts a page at a time with counts by state (the task
history through the control store's ``task_page``, so a page of 10,000 attempts
describes 50), and pending demand with the reason each shape waits. Parameters are read,
and wrong ones answered, by ``query.py``.
"""

from __future__ import annotations

import asyncio
import collections

from aiohttp import web

from raggio.common import autoscaler_status
from raggio.common.placement_group_resources import requested_resources
from raggio.common.resources import why_waiting
from raggio.dashboard.query import not_found, parse_hex_id, query_int
from raggio.dashboard.routing import STORE, BadRequest, ok
from raggio.dashboard.state_routes import HISTORY_FILTERS
from raggio.cluster_status import node_usage, summed_usage
from raggio.job_submission.common import is_internal_driver
from raggio.util.state.rows import RESOURCES

#: The most rows one page may ask for.
MAX_PAGE = 500
DEFAULT_PAGE = 50
#: How many cluster events the overview shows.
RECENT_EVENTS = 30
#: Resources shown first, in this order; bytes are formatted by the page.
MAIN_RESOURCES = ("CPU", "GPU", "memory", "object_store_memory")
#: Actor states in the order a list shows them: what needs attention first.
ACTOR_ORDER = {"RESTARTING": 0, "PENDING_CREATION": 1, "DEPENDENCIES_UNREADY": 1,
               "ALIVE": 2, "DEAD": 3}

_shape = {name: spec.shape for name, spec in RESOURCES.items()}


# -- shaping --

def _shown_usage(node: dict) -> dict[str, list[float]]:
    """``node_usage`` less the ``node:<ip>`` resources, which say where a node is and
    are used by nothing."""
    return {key: pair for key, pair in node_usage(node).items()
            if not key.startswith("node:")}


def node_row(node: dict) -> dict:
    """A node as the Nodes page shows it: Ray's row, and how much of each resource is used."""
    row = _shape["nodes"](node)
    row.update(hostname=node.get("hostname", ""), usage=_shown_usage(node),
               pending_demand=len(node.get("demand") or ()))
    return row


def _usage_order(key: str) -> tuple:
    return (MAIN_RESOURCES.index(key) if key in MAIN_RESOURCES else len(MAIN_RESOURCES), key)


def cluster_usage(nodes: list[dict]) -> dict[str, list[float]]:
    """``{resource: [used, total]}`` over the live nodes, main resources first."""
    usage = summed_usage(map(_shown_usage, nodes))
    return {key: usage[key] for key in sorted(usage, key=_usage_order)}


def actor_row(record: dict) -> dict:
    row = _shape["actors"](record)
    row["required_resources"] = requested_resources(record.get("required_resources") or {})
    return row


def cluster_events(nodes: list[dict], actors: list[dict], jobs: list[dict]) -> list[dict]:
    """What happened in the cluster, newest first, read from the records' own times: nodes
    that joined or died, actors that restarted or died, jobs that started or ended."""
    events = []

    def add(ts, severity, kind, entity_id, message):
        if ts:
            events.append({"time_ms": int(ts * 1000), "severity": severity, "kind": kind,
                           "id": entity_id, "message": message})

    for node in nodes:
        node_hex = node["node_id"].hex()
        what = f"{'Head node' if node.get('is_head') else 'Node'} {node['node_ip']}"
        add(node.get("start_time"), "INFO", "node", node_hex, f"{what} joined the cluster.")
        if node["state"] == "DEAD":
            add(node.get("end_time"), "ERROR", "node", node_hex,
                f"{what} died: {node.get('death_reason') or 'no reason recorded'}.")
    for actor in actors:
        actor_hex = actor["actor_id"].hex()
        what = f"Actor {actor['class_name']}" + (f" '{actor['name']}'" if actor["name"] else "")
        restarts = 0
        for state, ts, _node_id in actor.get("events") or ():
            if state == "RESTARTING":
                restarts += 1
                add(ts, "WARNING", "actor", actor_hex, f"{what} is restarting "
                    f"(restart {restarts}).")
        if actor["state"] == "DEAD":
            cause = actor.get("death_cause") or "no cause recorded"
            killed = "ray.kill" in cause or "killed" in cause.lower()
            add(actor.get("end_time"), "INFO" if killed else "ERROR", "actor", actor_hex,
                f"{what} died: {cause}")
    for job in jobs:
        job_hex = _shape["jobs"](job)["job_id"]
        entry = job.get("entrypoint") or "a driver"
        add(job.get("start_time"), "INFO", "job", job_hex, f"Job {job_hex} started: {entry}.")
        if job.get("is_dead"):
            add(job.get("end_time"), "INFO", "job", job_hex, f"Job {job_hex} ended.")
    events.sort(key=lambda event: -event["time_ms"])
    return _coalesced(events)


def _coalesced(events: list[dict]) -> list[dict]:
    """Runs of the same message within a second as one event with a ``count`` (a driver
    that ended takes its 1,000 actors with it: one line, not 1,000)."""
    out: list[dict] = []
    for event in events:
        last = out[-1] if out else None
        if (last is not None and last["message"] == event["message"]
                and last["time_ms"] - event["time_ms"] < 1000):
            last["count"] += 1
        else:
            out.append(dict(event, count=1))
    return out


def pending_demand(nodes: list[dict]) -> list[dict]:
    """The resource shapes the live nodes queue, counted, each with why it waits."""
    groups: dict[str, dict] = {}
    for node in nodes:
        if node["state"] != "ALIVE":
            continue
        for demand in node.get("demand") or ():
            resources = requested_resources(demand["resources"])
            key = repr(sorted(resources.items())) + repr(demand.get("labels"))
            group = groups.setdefault(key, {"resources": resources, "count": 0,
                                            "actors": 0, "labels": demand.get("labels"),
                                            "reason": why_waiting(demand["resources"], nodes,
                                                                  demand.get("labels"))})
            group["count"] += 1
            group["actors"] += bool(demand.get("for_actor"))
    return sorted(groups.values(), key=lambda group: -group["count"])


def _page_bounds(request: web.Request) -> tuple[int, int]:
    """(``offset``, ``limit``) of the page asked for: 0 and ``DEFAULT_PAGE`` when absent;
    a ``limit`` over ``MAX_PAGE`` or a negative one is a 400."""
    return (query_int(request, "offset", 0, least=0),
            query_int(request, "limit", DEFAULT_PAGE, least=0, most=MAX_PAGE))


def _page(rows: list, request: web.Request) -> tuple[list, int, int]:
    offset, limit = _page_bounds(request)
    return rows[offset:offset + limit], offset, limit


# -- routes --

async def overview(request: web.Request) -> web.Response:
    """``/api/ui/overview``: nodes and actors counted by state, the cluster's usage, the
    task history's counts, the newest jobs, recent events and pending demand."""
    store = request.app[STORE]
    nodes, actors, jobs, tasks = await asyncio.gather(
        store.call("get_nodes"), store.call("list_actors"), store.call("get_jobs"),
        store.call("task_page", {"limit": 0}))
    jobs = [job for job in jobs if not is_internal_driver(job)]  # the job manager's own
    job_rows = sorted(map(_shape["jobs"], jobs), key=lambda job: -(job["start_time"] or 0))
    return ok({
        "nodes": collections.Counter(node["state"] for node in nodes),
        "usage": cluster_usage(nodes),
        "actors": collections.Counter(actor["state"] for actor in actors),
        "tasks": {key: tasks[key] for key in ("state_counts", "total", "dropped")},
        "jobs": {"total": len(job_rows), "running": sum(j["status"] == "RUNNING"
                                                        for j in job_rows),
                 "recent": job_rows[:5]},
        "events": cluster_events(nodes, actors, jobs)[:RECENT_EVENTS],
        "pending_demand": pending_demand(nodes),
    })


async def nodes(request: web.Request) -> web.Response:
    """``/api/ui/nodes``: every node (``node_row``), live ones first, and the cluster's
    usage."""
    records = await request.app[STORE].call("get_nodes")
    rows = sorted(map(node_row, records),
                  key=lambda row: (row["state"] != "ALIVE", not row["is_head_node"],
                                   row["node_ip"], row["node_id"]))
    return ok({"nodes": rows, "usage": cluster_usage(records)})


async def node(request: web.Request) -> web.Response:
    """``/api/ui/nodes/{node_id}``: one node, what waits for resources there, and its
    workers (with the nodes that did not answer for theirs); 404 if no such node."""
    node_id = parse_hex_id(request.match_info["node_id"], "node_id")
    store = request.app[STORE]
    records, workers = await asyncio.gather(store.call("get_nodes"),
                                            store.call("list_workers", {"with_unanswered": True}))
    found = next((n for n in records if n["node_id"] == node_id), None)
    if found is None:
        return not_found(f"No node {node_id.hex()} in this cluster; the Nodes page lists them.")
    return ok({"node": node_row(found), "demand": pending_demand([found]),
               "workers": [_shape["workers"](worker) for worker in workers["rows"]
                           if worker["node_id"] == node_id],
               "unanswered": workers["unanswered"]})


async def actors(request: web.Request) -> web.Response:
    """``/api/ui/actors``: a page of the actors (``offset``, ``limit``), those needing
    attention first, filtered by ``state``, ``class_name``, ``job_id``, ``node_id``
    (whole values, any case) and ``search`` (a part of the id, class, name or pid), with
    the counts by state and the class names there are."""
    query = request.query
    records = await request.app[STORE].call("list_actors")
    rows = [actor_row(record) for record in records]
    counts = collections.Counter(row["state"] for row in rows)
    class_names = sorted({row["class_name"] for row in rows})
    wanted = {key: query[key] for key in ("state", "class_name", "job_id", "node_id")
              if query.get(key)}
    search = query.get("search", "").strip().lower()
    rows = [row for row in rows
            if all(str(row[key]).lower() == value.lower() for key, value in wanted.items())
            and (not search or search in " ".join((row["actor_id"], row["class_name"],
                                                   row["name"], str(row["pid"]))).lower())]
    rows.sort(key=lambda row: (ACTOR_ORDER.get(row["state"], 1), -(row["start_time"] or 0)))
    page, offset, limit = _page(rows, request)
    for row in page:
        row.pop("events")
    return ok({"actors": page, "matched": len(rows), "total": len(records),
               "state_counts": counts, "class_names": class_names,
               "offset": offset, "limit": limit})


async def actor(request: web.Request) -> web.Response:
    """``/api/ui/actors/{actor_id}``: one actor and its newest calls, with their counts by
    state; 404 if no such actor."""
    actor_id = parse_hex_id(request.match_info["actor_id"], "actor_id")
    store = request.app[STORE]
    records, calls = await asyncio.gather(
        store.call("list_actors"),
        store.call("task_page", {"filters": {"actor_id": actor_id}, "limit": DEFAULT_PAGE}))
    found = next((record for record in records if record["actor_id"] == actor_id), None)
    if found is None:
        return not_found(f"No actor {actor_id.hex()} in this cluster; the Actors page lists "
                         "them.")
    return ok({"actor": actor_row(found),
               "calls": [_shape["tasks"](task) for task in calls["tasks"]],
               "calls_matched": calls["matched"], "call_states": calls["state_counts"]})


def _task_filters(request: web.Request) -> dict:
    """The Tasks page's filters as ``task_page`` takes them: the control store's own
    (``state_routes.HISTORY_FILTERS``), with ``name`` a part of the name, as the page's
    search box means it (the state API's ``name`` is a whole name: ``HISTORY_KEYS``)."""
    filters = {}
    for key, parse in HISTORY_FILTERS.items():
        text = request.query.get(key)
        if text:
            try:
                filters[key] = parse(text)
            except ValueError:
                raise BadRequest(f"{key} must be an id in hex, as the lists show it, got "
                                 f"{text!r}.") from None
    return filters


async def tasks(request: web.Request) -> web.Response:
    """``/api/ui/tasks``: a page of the task history's attempts, newest first, filtered by
    ``state``, ``type``, ``name`` (a part of it), ``func_or_class_name``, ``job_id``,
    ``actor_id`` or ``node_id``, with the matching attempts' counts by state."""
    filters = _task_filters(request)
    offset, limit = _page_bounds(request)
    reply = await request.app[STORE].call("task_page", {"filters": filters, "offset": offset,
                                                        "limit": limit})
    return ok({"tasks": [_shape["tasks"](task) for task in reply["tasks"]],
               "matched": reply["matched"], "state_counts": reply["state_counts"],
               "total": reply["total"], "dropped": reply["dropped"],
               "offset": offset, "limit": limit})


async def task(request: web.Request) -> web.Response:
    """``/api/ui/tasks/{task_id}``: every attempt of one task the history holds; 404 if
    none."""
    task_id = parse_hex_id(request.match_info["task_id"], "task_id")
    attempts = await request.app[STORE].call("get_task", task_id)
    if not attempts:
        return not_found(f"No task {task_id.hex()} in the task history (it may have been "
                         "dropped: the history keeps the newest attempts).")
    return ok({"attempts": [_shape["tasks"](attempt) for attempt in attempts]})


async def cluster(request: web.Request) -> web.Response:
    """``/api/ui/cluster``: the placement groups (pending first) with their bundles' nodes,
    pending demand and tasks, the cluster's usage, and the autoscaler's view (None without
    one: ``autoscaler_status.read``)."""
    store = request.app[STORE]
    records, groups, waiting, autoscaler = await asyncio.gather(
        store.call("get_nodes"), store.call("placement_group_table", None),
        store.call("pending_tasks"), store.call("kv_multi_get", autoscaler_status.KEYS))
    ip_of = {node["node_id"].hex(): node["node_ip"] for node in records}
    rows = []
    for group in groups.values():
        row = _shape["placement-groups"](group)
        for bundle in row["bundles"]:
            bundle["node_ip"] = ip_of.get(bundle["node_id"] or "", "")
            bundle["resources"] = requested_resources(bundle["resources"])
        rows.append(row)
    rows.sort(key=lambda row: (row["state"] != "PENDING", row["state"] == "REMOVED",
                               row["placement_group_id"]))
    return ok({"placement_groups": rows, "pending_demand": pending_demand(records),
               "pending_tasks": waiting, "usage": cluster_usage(records),
               "autoscaler": autoscaler_status.read(*autoscaler)})


def routes() -> list[web.RouteDef]:
    return [web.get("/api/ui/overview", overview),
            web.get("/api/ui/nodes", nodes),
            web.get("/api/ui/nodes/{node_id}", node),
            web.get("/api/ui/actors", actors),
            web.get("/api/ui/actors/{actor_id}", actor),
            web.get("/api/ui/tasks", tasks),
            web.get("/api/ui/tasks/{task_id}", task),
            web.get("/api/ui/cluster", cluster)]
