"""Ray's state API over HTTP: ``/api/v0/<resource>`` and ``/api/v0/<resource>/summarize``.

The listings of nodes, actors, tasks, objects, workers, jobs and placement
groups take Ray's parameters: ``filter_keys``/``filter_predicates``/
``filter_values`` (repeated), ``limit`` (100 by default, at most 10,000 as
Ray's ``RAY_MAX_LIMIT_FROM_API_SERVER``), ``detail``, ``timeout`` (seconds) and,
for tasks, ``exclude_driver`` (accepted: raggio's task history has no driver
tasks); ``raggio_fields=true`` adds the fields raggio has beyond Ray's
(``ray_schema.py``). They answer in Ray's envelope::

    {"result": true, "msg": "", "data": {"result": {"total": ..., "num_after_truncation": ...,
     "num_filtered": ..., "result": [rows], "partial_failure_warning": ..., "warnings": ...}}}

``total`` counts what the cluster has (with the task attempts the history
dropped), ``num_after_truncation`` what the control store still holds,
``num_filtered`` what the filters kept; ``result`` the first ``limit`` of
those, by id. A listing of tasks with no filter, or with filters the control
store applies itself (``HISTORY_FILTERS``), asks it for the newest ``limit``
matching attempts only, so that it stays cheap with a long history. The summaries (``tasks``, ``actors``, ``objects``) answer
``{"node_id_to_summary": {"cluster": ...}}`` in the same envelope.

The fetching and shaping are the state API's (``raggio.util.state.api``);
this module reads the query, asks the control store through
``request.app[STORE]`` and puts the answer in Ray's form. An unknown resource
or filter key, or a bad limit, is a 400 that names it.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from raggio.dashboard import ray_schema
from raggio.dashboard.query import query_bool, query_filters, query_int, query_timeout
from raggio.dashboard.routing import STORE, BadRequest, ok
from raggio.util.state.api import (RayStateApiException, actor_summary, check_filters,
                                   check_limit, dropped_warning, missing_warning,
                                   object_summary, records_from_reply, records_request,
                                   resource, select_rows, task_summary)
from raggio.util.state.common import DEFAULT_LIMIT
from raggio.util.state.rows import Resource

#: The listings, by the path Ray gives them (``placement_groups``): the state API's names.
LISTINGS = {"nodes": "nodes", "actors": "actors", "tasks": "tasks", "objects": "objects",
            "workers": "workers", "jobs": "jobs", "placement_groups": "placement-groups"}
#: Ray's ``RAY_MAX_LIMIT_FROM_API_SERVER``: the most rows one answer carries.
MAX_LIMIT = 10_000
#: Ray's warning when objects' call sites are not recorded, for raggio's processes.
CALL_SITE_WARNING = (
    "Callsite is not being recorded. To record callsite information for each ObjectRef "
    "created, set env variable RAY_record_ref_creation_sites=1 during `raggio start` and "
    "`init()`.")


def _spec(path: str) -> tuple[str, Resource]:
    name = LISTINGS.get(path, path)
    try:
        return name, resource(name)
    except RayStateApiException as exc:
        raise BadRequest(str(exc)) from None


def _checked_filters(request: web.Request, name: str, spec: Resource) -> list:
    try:
        return check_filters(name, spec, query_filters(request))
    except RayStateApiException as exc:
        raise BadRequest(str(exc)) from None


def _limit(request: web.Request) -> int:
    limit = query_int(request, "limit", DEFAULT_LIMIT)
    try:
        check_limit(limit)
    except RayStateApiException as exc:
        raise BadRequest(str(exc)) from None
    if limit > MAX_LIMIT:
        raise BadRequest(f"Given limit {limit} exceeds the supported limit {MAX_LIMIT}. Use a "
                         "lower limit.")
    return limit


async def _records(request: web.Request, spec: Resource, limit: int | None,
                   timeout_s: float) -> tuple[list, dict]:
    op, payload = records_request(spec, limit)
    reply = await request.app[STORE].call(op, payload, timeout_s=timeout_s)
    return records_from_reply(spec, reply)


def _envelope(name: str, totals: dict, rows: list[dict], num_filtered: int, result) -> dict:
    """Ray's ``ListApiResponse`` (and ``SummaryApiResponse``) fields around ``result``."""
    held = totals["total"]
    warnings = [w for w in (dropped_warning(totals),) if w]
    if name == "objects" and rows and all(row["call_site"] == "disabled" for row in rows):
        warnings.append(CALL_SITE_WARNING)
    return {"total": held + totals.get("dropped", 0) + totals.get("dropped_at_source", 0),
            "num_after_truncation": held, "num_filtered": num_filtered, "result": result,
            "partial_failure_warning": missing_warning(name, totals) or "",
            "warnings": warnings or None}


#: The task filters the control store applies itself (``task_page``): key -> how it takes
#: the value. With only these (and "="), a filtered listing of a long history describes
#: only the attempts it returns.
HISTORY_FILTERS = {"state": str.upper, "type": str.upper, "job_id": lambda v: int(v, 16),
                   "actor_id": bytes.fromhex, "node_id": bytes.fromhex, "name": str,
                   "func_or_class_name": str}
#: The key ``task_page`` takes a state API filter as, where they differ (its ``name`` is a
#: substring, the state API's a whole name).
HISTORY_KEYS = {"name": "name_is"}


def history_filters(checked: list) -> dict | None:
    """``checked`` as ``task_page`` filters, or None if one of them is not among those."""
    filters = {}
    for key, op, value in checked:
        if op != "=" or key not in HISTORY_FILTERS or HISTORY_KEYS.get(key, key) in filters:
            return None
        try:
            filters[HISTORY_KEYS.get(key, key)] = HISTORY_FILTERS[key](str(value))
        except ValueError:
            return None  # not an id: the rows' own comparison says it matches nothing
    return filters


def _listing(name: str, spec: Resource, records: list, totals: dict, checked: list,
             limit: int, detail: bool, raggio_fields: bool) -> dict:
    rows = select_rows(spec, records, checked, None, detail=True)
    if "matched" in totals:  # the control store filtered the history (task_page)
        num_filtered = totals["matched"]
    elif spec.history and not checked:
        num_filtered = totals["total"]
    else:
        num_filtered = len(rows)
    result = [ray_schema.ray_row(name, row, detail=detail, with_raggio_fields=raggio_fields)
              for row in rows[:limit]]
    return _envelope(name, totals, rows, num_filtered, result)


def listing_handler(path: str):
    """The handler of ``/api/v0/<path>``."""

    async def handler(request: web.Request) -> web.Response:
        name, spec = _spec(path)
        checked = _checked_filters(request, name, spec)
        limit = _limit(request)
        detail = query_bool(request, "detail", False)
        raggio_fields = query_bool(request, "raggio_fields", False)
        query_bool(request, "exclude_driver", True)  # checked; no driver tasks to exclude
        # The task history is asked for its newest `limit` attempts only, when unfiltered
        # or filtered by what the control store filters itself.
        pushed = history_filters(checked) if spec.history and checked else None
        if pushed is not None:
            reply = await request.app[STORE].call(
                "task_page", {"filters": pushed, "offset": 0, "limit": limit},
                timeout_s=query_timeout(request))
            records, totals = reply["tasks"], {key: reply[key] for key in (
                "total", "dropped", "dropped_at_source", "matched")}
        else:
            records, totals = await _records(request, spec, None if checked else limit,
                                             query_timeout(request))
        # In a thread, as Ray does: 10,000 task rows take ~100 ms to shape, which the
        # loop's other requests (and live pages) should not wait for.
        return ok({"result": await asyncio.to_thread(
            _listing, name, spec, records, totals, checked, limit, detail, raggio_fields)})

    return handler


#: The summaries: what each makes of the (filtered) rows and the totals.
SUMMARIES = {
    "tasks": lambda rows, totals: task_summary(rows, totals),
    "actors": lambda rows, totals: actor_summary(rows),
    "objects": lambda rows, totals: object_summary(rows),
}


def _summary(name: str, spec: Resource, records: list, totals: dict, checked: list) -> dict:
    rows = select_rows(spec, records, checked, None, detail=True)
    summary = {"node_id_to_summary": SUMMARIES[name](rows, totals)}
    return _envelope(name, totals, rows, len(rows), summary)


def summary_handler(path: str):
    """The handler of ``/api/v0/<path>/summarize``."""

    async def handler(request: web.Request) -> web.Response:
        if path not in SUMMARIES:
            raise BadRequest(f"There is no summary of {path!r}; there are summaries of "
                             f"{', '.join(SUMMARIES)}.")
        name, spec = _spec(path)
        checked = _checked_filters(request, name, spec)
        summary_by = request.query.get("summary_by") or "func_name"
        if name == "tasks" and summary_by == "lineage":
            raise BadRequest('raggio summarizes tasks by function or class name (summary_by '
                             '"func_name", which Ray\'s "task_name" is too), not by lineage.')
        if name == "tasks" and summary_by not in ("func_name", "task_name"):
            raise BadRequest('summary_by must be one of "func_name", "task_name", or '
                             '"lineage".')
        records, totals = await _records(request, spec, None, query_timeout(request))
        return ok({"result": await asyncio.to_thread(_summary, name, spec, records, totals,
                                                     checked)})

    return handler


def routes() -> list[web.RouteDef]:
    """The listings and summaries, then any other ``/api/v0/<name>`` (a 400 naming the
    resources there are)."""
    out = []
    for path in LISTINGS:
        out.append(web.get(f"/api/v0/{path}", listing_handler(path)))
    for path in SUMMARIES:
        out.append(web.get(f"/api/v0/{path}/summarize", summary_handler(path)))

    async def unknown_listing(request: web.Request) -> web.Response:
        return await listing_handler(request.match_info["name"])(request)

    async def unknown_summary(request: web.Request) -> web.Response:
        return await summary_handler(request.match_info["name"])(request)

    out.append(web.get("/api/v0/{name}", unknown_listing))
    out.append(web.get("/api/v0/{name}/summarize", unknown_summary))
    return out
