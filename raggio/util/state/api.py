"""The state API (``ray.util.state``): list, get and summarize what a cluster holds.

Each resource is read from the control store's tables and shaped into rows
with Ray's field names (``rows.py``; ``ray list actors`` prints ACTOR_ID,
CLASS_NAME, STATE...); ``raggio list/get/summary`` prints the rows, and the
public ``list_*``/``get_*`` functions return them as the state objects of
``common.py`` (``actor.state``). ``filters`` are ``(key, "=" | "!=", value)``
tuples over those fields (strings compare case-insensitively, as in Ray),
``limit`` caps the rows (100 by default, as in Ray) and ``detail`` adds the
fields Ray shows only with ``--detail``. A driver that called ``init()`` asks
through its own connection; otherwise ``address`` (or this machine's current
cluster, as ``init("auto")`` finds it) gets a one-shot connection.
``raise_on_missing_output`` (on by default, as in Ray) raises when a node did
not answer a query that asks every node (objects, workers); otherwise that is
a warning.
"""

from __future__ import annotations

import warnings
from typing import Any

from raggio.exceptions import AuthenticationError, RpcError
from raggio.util.state.common import (DEFAULT_LIMIT, DEFAULT_RPC_TIMEOUT, ActorState,
                                      GetApiOptions, JobState, ListApiOptions, NodeState,
                                      ObjectState, PlacementGroupState, StateResource,
                                      SummaryApiOptions, SummaryResource, TaskState,
                                      WorkerState)
from raggio.util.state.rows import RESOURCES, Resource

DEFAULT_TIMEOUT_S = float(DEFAULT_RPC_TIMEOUT)


class RayStateApiException(Exception):
    """A state query that cannot be answered: a bad resource, filter or address."""


class ServerUnavailable(RayStateApiException):
    """The cluster the state query asked could not be reached (Ray: its dashboard)."""


def resource(name: str) -> Resource:
    found = RESOURCES.get(name.replace("_", "-"))
    if found is None:
        raise RayStateApiException(
            f"Unknown resource {name!r}. Valid resources: {', '.join(RESOURCES)}.")
    return found


def _query(op: str, payload, address: str | None, timeout_s: float):
    """One control store request, by the driver's connection or a one-shot one."""
    from raggio.core import context
    if address is None and context.current_core_or_none() is not None:
        return context.get_core().request("gcs", op, payload)
    from raggio.core.one_shot import query_control_store
    try:
        (reply,) = query_control_store(address, [(op, payload)], timeout_s=timeout_s)
    except AuthenticationError:
        raise  # it says which token to use
    except (ConnectionError, OSError, RpcError) as exc:
        raise ServerUnavailable(str(exc)) from None
    return reply


def records_request(spec: Resource, limit: int | None = None) -> tuple[str, Any]:
    """The control store request (op, payload) that answers a resource's records."""
    if spec.history:
        return spec.op, {"limit": limit}
    if spec.fan_out:
        return spec.op, {"with_unanswered": True}
    return spec.op, None


def records_from_reply(spec: Resource, reply) -> tuple[list, dict]:
    """(the resource's records, totals: how many there are and how many were dropped)."""
    if spec.history:
        totals = {key: reply[key] for key in ("total", "dropped", "dropped_at_source")}
        return reply["tasks"], totals
    if spec.fan_out:
        return reply["rows"], {"total": len(reply["rows"]), "unanswered": reply["unanswered"]}
    records = list(reply.values()) if isinstance(reply, dict) else reply
    if spec.hidden is not None:
        records = [record for record in records if not spec.hidden(record)]
    return records, {"total": len(records)}


def _records(spec: Resource, address: str | None, timeout_s: float,
             limit: int | None = None) -> tuple[list, dict]:
    op, payload = records_request(spec, limit)
    return records_from_reply(spec, _query(op, payload, address, timeout_s))


def dropped_warning(totals: dict) -> str | None:
    """A sentence on task history the control store no longer has, if any."""
    dropped, at_source = totals.get("dropped", 0), totals.get("dropped_at_source", 0)
    if not (dropped or at_source):
        return None
    parts = []
    if dropped:
        parts.append(f"{dropped} task attempts were dropped from the control store's history, "
                     "oldest first (it keeps RAY_task_events_max_num_task_in_gcs, "
                     "RAGGIO_TASK_EVENTS_MAX_TASKS, attempts)")
    if at_source:
        parts.append(f"{at_source} task events were dropped by drivers and workers that could "
                     "not reach the control store in time")
    return "; ".join(parts) + "."


def _matches(row: dict, key: str, op: str, wanted) -> bool:
    value = row[key]
    if isinstance(value, bool):
        equal = str(wanted).lower() in (("true", "1") if value else ("false", "0"))
    else:  # string values compare case-insensitively, as Ray documents
        equal = str(value).lower() == str(wanted).lower()
    return equal if op == "=" else not equal


def check_filters(name: str, spec: Resource, filters) -> list[tuple[str, str, Any]]:
    """The filters, checked: each a (key, "=" | "!=", value) over the resource's fields.

    Raises:
        RayStateApiException: a malformed filter, an unknown key or predicate.
    """
    checked = []
    known = spec.columns + spec.detail_columns
    for item in filters or ():
        if not (isinstance(item, (tuple, list)) and len(item) == 3):
            raise RayStateApiException(
                f"A filter is a (key, predicate, value) tuple such as ('state', '=', 'ALIVE'); "
                f"got {item!r}.")
        key, op, value = item
        if key not in known:
            raise RayStateApiException(
                f"Given filter key {key!r} is not supported for {name}. Supported filter "
                f"keys: {', '.join(known)}.")
        if op not in ("=", "!="):
            raise RayStateApiException(
                f"Unsupported filter predicate {op!r}; use '=' or '!='.")
        checked.append((key, op, value))
    return checked


def list_resource(name: str, *, address: str | None = None, filters=None,
                  limit: int = DEFAULT_LIMIT, timeout: float = DEFAULT_TIMEOUT_S,
                  detail: bool = False) -> list[dict]:
    """Rows of one resource, with Ray's fields; what ``raggio list`` prints. What is
    missing (dropped history, nodes that did not answer) is a warning."""
    rows, totals = list_resource_with_totals(name, address=address, filters=filters,
                                             limit=limit, timeout=timeout, detail=detail)
    for warning in (dropped_warning(totals), missing_warning(name, totals)):
        if warning:
            warnings.warn(warning, stacklevel=2)
    return rows


def missing_warning(name: str, totals: dict) -> str | None:
    """A sentence on the nodes that did not answer a query of every node, if any."""
    unanswered = totals.get("unanswered")
    if not unanswered:
        return None
    return (f"Failed to retrieve all {name} from the cluster because the nodes at "
            f"{', '.join(unanswered)} did not answer in time; the output misses theirs.")


def list_resource_with_totals(name: str, *, address: str | None = None, filters=None,
                              limit: int | None = DEFAULT_LIMIT,
                              timeout: float = DEFAULT_TIMEOUT_S,
                              detail: bool = False) -> tuple[list[dict], dict]:
    """``list_resource``'s rows, and how many there are in all (and were dropped)."""
    spec = resource(name)
    checked = check_filters(name, spec, filters)
    check_limit(limit)
    records, totals = _records(spec, address, timeout, None if checked else limit)
    return select_rows(spec, records, checked, limit, detail), totals


def check_limit(limit: int | None) -> None:
    if limit is not None and limit <= 0:
        raise RayStateApiException(f"limit must be positive, got {limit}.")


def select_rows(spec: Resource, records: list, checked_filters: list, limit: int | None,
                detail: bool) -> list[dict]:
    """The records as rows with the listing's fields, filtered, sorted by id, truncated."""
    fields = spec.columns + (spec.detail_columns if detail else ())
    rows = []
    for record in records:
        row = spec.shape(record)
        if all(_matches(row, key, op, value) for key, op, value in checked_filters):
            rows.append({field: row[field] for field in fields})
    rows.sort(key=lambda row: str(row[spec.id_field]))
    return rows[:limit] if limit is not None else rows


def get_resource(name: str, resource_id: str, *, address: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S) -> dict | list[dict] | None:
    """One row, with every field, by id (a hex string); None if there is none.
    A task retried has a row per attempt: a list of them, oldest first; an object, a row
    per process that holds it: always a list (as Ray's ``get_task``/``get_objects``)."""
    spec = resource(name)
    found = [row for row in map(spec.shape, _records(spec, address, timeout)[0])
             if str(row[spec.id_field]) == resource_id]
    if not found:
        return None
    if spec.several:
        return found
    if len(found) > 1 and spec.history:
        return sorted(found, key=lambda row: row["attempt_number"])
    return found[0]


def _listing(resource_name: str, address: str | None, filters, limit: int, timeout: float,
             detail: bool, raise_on_missing_output: bool) -> list:
    rows, totals = list_resource_with_totals(resource_name, address=address, filters=filters,
                                             limit=limit, timeout=timeout, detail=detail)
    missing = missing_warning(resource_name, totals)
    if missing and raise_on_missing_output:
        raise RayStateApiException(missing + " To allow missing output, set "
                                   "`raise_on_missing_output=False`.")
    for warning in (dropped_warning(totals), missing):
        if warning:
            warnings.warn(warning, stacklevel=3)
    state_class = resource(resource_name).state_class
    return [state_class(**row) for row in rows]


def _as_state(resource_name: str, found):
    state_class = resource(resource_name).state_class
    if found is None:
        return None
    if isinstance(found, list):
        return [state_class(**row) for row in found]
    return state_class(**found)


def list_actors(address: str | None = None, filters=None, limit: int = DEFAULT_LIMIT,
                timeout: float = DEFAULT_TIMEOUT_S, detail: bool = False,
                raise_on_missing_output: bool = True, _explain: bool = False) -> list[ActorState]:
    """The actors in the cluster, as ``ActorState`` objects.

    Args:
        address: the cluster's address ("auto", "HOST:PORT"); None asks the cluster this
            driver is connected to, or this machine's.
        filters: ``(key, "=" | "!=", value)`` tuples over the fields, all of which must hold.
        limit: the most entries returned.
        timeout: seconds to wait for the answer.
        detail: fill the fields Ray fills only in detail (None otherwise).
        raise_on_missing_output: raise when part of the answer is missing (a node that did
            not answer); False makes that a warning.
        _explain: accepted for Ray's signature; raggio prints no request details.

    Raises:
        RayStateApiException: a bad filter or limit, no cluster there, or missing output.

    The other ``list_*`` functions take the same arguments.
    """
    return _listing("actors", address, filters, limit, timeout, detail, raise_on_missing_output)


def list_nodes(address: str | None = None, filters=None, limit: int = DEFAULT_LIMIT,
               timeout: float = DEFAULT_TIMEOUT_S, detail: bool = False,
               raise_on_missing_output: bool = True,
               _explain: bool = False) -> list[NodeState]:
    """The nodes, as ``NodeState`` objects (arguments as ``list_actors``)."""
    return _listing("nodes", address, filters, limit, timeout, detail,
                    raise_on_missing_output)


def list_workers(address: str | None = None, filters=None, limit: int = DEFAULT_LIMIT,
                 timeout: float = DEFAULT_TIMEOUT_S, detail: bool = False,
                 raise_on_missing_output: bool = True,
                 _explain: bool = False) -> list[WorkerState]:
    """The drivers and workers, as ``WorkerState`` objects (arguments as ``list_actors``)."""
    return _listing("workers", address, filters, limit, timeout, detail,
                    raise_on_missing_output)


def list_tasks(address: str | None = None, filters=None, limit: int = DEFAULT_LIMIT,
               timeout: float = DEFAULT_TIMEOUT_S, detail: bool = False,
               raise_on_missing_output: bool = True,
               _explain: bool = False) -> list[TaskState]:
    """The task attempts (the task history), as ``TaskState`` objects (arguments as
    ``list_actors``)."""
    return _listing("tasks", address, filters, limit, timeout, detail,
                    raise_on_missing_output)


def list_objects(address: str | None = None, filters=None, limit: int = DEFAULT_LIMIT,
                 timeout: float = DEFAULT_TIMEOUT_S, detail: bool = False,
                 raise_on_missing_output: bool = True,
                 _explain: bool = False) -> list[ObjectState]:
    """Every process's object references, as ``ObjectState`` objects (arguments as
    ``list_actors``)."""
    return _listing("objects", address, filters, limit, timeout, detail,
                    raise_on_missing_output)


def list_jobs(address: str | None = None, filters=None, limit: int = DEFAULT_LIMIT,
              timeout: float = DEFAULT_TIMEOUT_S, detail: bool = False,
              raise_on_missing_output: bool = True,
              _explain: bool = False) -> list[JobState]:
    """The jobs, as ``JobState`` objects (arguments as ``list_actors``)."""
    return _listing("jobs", address, filters, limit, timeout, detail,
                    raise_on_missing_output)


def list_placement_groups(address: str | None = None, filters=None, limit: int = DEFAULT_LIMIT,
                          timeout: float = DEFAULT_TIMEOUT_S, detail: bool = False,
                          raise_on_missing_output: bool = True,
                          _explain: bool = False) -> list[PlacementGroupState]:
    """The placement groups, as ``PlacementGroupState`` objects (arguments as
    ``list_actors``)."""
    return _listing("placement-groups", address, filters, limit, timeout, detail,
                    raise_on_missing_output)


def get_node(id: str, address: str | None = None,  # noqa: A002 - Ray's parameter name
             timeout: float = DEFAULT_TIMEOUT_S, _explain: bool = False) -> NodeState | None:
    """The node with this id (hex), or None."""
    return _as_state("nodes", get_resource("nodes", id, address=address, timeout=timeout))


def get_actor(id: str, address: str | None = None,  # noqa: A002
              timeout: float = DEFAULT_TIMEOUT_S, _explain: bool = False) -> ActorState | None:
    """The actor with this id (hex), or None."""
    return _as_state("actors", get_resource("actors", id, address=address, timeout=timeout))


def get_task(id, address: str | None = None,  # noqa: A002
             timeout: float = DEFAULT_TIMEOUT_S,
             _explain: bool = False) -> TaskState | list[TaskState] | None:
    """A task by id (hex, or an ObjectRef it returns): its attempt, a list of attempts
    (oldest first) when it was retried, or None."""
    if not isinstance(id, str):
        id = id.task_id().hex()  # noqa: A001
    return _as_state("tasks", get_resource("tasks", id, address=address, timeout=timeout))


def get_worker(id: str, address: str | None = None,  # noqa: A002
               timeout: float = DEFAULT_TIMEOUT_S, _explain: bool = False) -> WorkerState | None:
    """The worker with this id (hex), or None."""
    return _as_state("workers", get_resource("workers", id, address=address, timeout=timeout))


def get_objects(id: str, address: str | None = None,  # noqa: A002
                timeout: float = DEFAULT_TIMEOUT_S, _explain: bool = False) -> list[ObjectState]:
    """Every process's reference to the object with this id (hex); None if none (as Ray's,
    whose docstring promises a list)."""
    return _as_state("objects", get_resource("objects", id, address=address, timeout=timeout))


def get_job(id: str, address: str | None = None,  # noqa: A002
            timeout: float = DEFAULT_TIMEOUT_S, _explain: bool = False) -> JobState | None:
    """The job with this id (hex, as ``list_jobs`` shows it), or None."""
    return _as_state("jobs", get_resource("jobs", id, address=address, timeout=timeout))


def get_placement_group(id: str, address: str | None = None,  # noqa: A002
                        timeout: float = DEFAULT_TIMEOUT_S,
                        _explain: bool = False) -> PlacementGroupState | None:
    """The placement group with this id (hex), or None."""
    return _as_state("placement-groups", get_resource("placement-groups", id,
                                                      address=address, timeout=timeout))


def summarize_actors(address: str | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                     raise_on_missing_output: bool = True, _explain: bool = False) -> dict:
    """Actors grouped by class with a count per state, in Ray's shape."""
    return actor_summary(list_resource("actors", address=address, limit=None, timeout=timeout))


def actor_summary(rows: list[dict]) -> dict:
    """``summarize_actors()`` of these actor rows."""
    summary: dict[str, dict] = {}
    for row in rows:
        entry = summary.setdefault(row["class_name"], {"class_name": row["class_name"],
                                                       "state_counts": {}})
        entry["state_counts"][row["state"]] = entry["state_counts"].get(row["state"], 0) + 1
    return {"cluster": {"summary": summary, "total_actors": len(rows),
                        "summary_by": "class"}}


_TASK_TOTALS = {"NORMAL_TASK": "total_tasks", "ACTOR_TASK": "total_actor_tasks",
                "ACTOR_CREATION_TASK": "total_actor_scheduled"}


def summarize_tasks(address: str | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                    raise_on_missing_output: bool = True, _explain: bool = False) -> dict:
    """Tasks (their latest attempts) grouped by function or class with a count per state,
    in Ray's shape; ``dropped`` counts history the control store no longer has."""
    rows, totals = list_resource_with_totals("tasks", address=address, limit=None,
                                             timeout=timeout)
    warning = dropped_warning(totals)
    if warning:
        warnings.warn(warning, stacklevel=2)
    return task_summary(rows, totals)


def task_summary(rows: list[dict], totals: dict) -> dict:
    """``summarize_tasks()`` of these task rows (every attempt's) and the history's totals."""
    latest: dict[str, dict] = {}
    for row in rows:
        if row["task_id"] not in latest or row["attempt_number"] > latest[row["task_id"]][
                "attempt_number"]:
            latest[row["task_id"]] = row
    summary: dict[str, dict] = {}
    counts = dict.fromkeys(_TASK_TOTALS.values(), 0)
    for row in latest.values():
        key = row["name"] if row["type"] == "ACTOR_CREATION_TASK" else row["func_or_class_name"]
        entry = summary.setdefault(key, {"func_or_class_name": key, "type": row["type"],
                                         "state_counts": {}})
        entry["state_counts"][row["state"]] = entry["state_counts"].get(row["state"], 0) + 1
        if row["type"] in _TASK_TOTALS:
            counts[_TASK_TOTALS[row["type"]]] += 1
    ordered = dict(sorted(summary.items(),
                          key=lambda item: -sum(item[1]["state_counts"].values())))
    return {"cluster": {"summary": ordered, **counts, "summary_by": "func_name",
                        "dropped": totals["dropped"] + totals["dropped_at_source"]}}


def summarize_objects(address: str | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                      raise_on_missing_output: bool = True, _explain: bool = False) -> dict:
    """Object refs grouped by call site (one group, "disabled", unless
    RAY_record_ref_creation_sites=1 had them recorded), in Ray's shape.

    Raises:
        RayStateApiException: a node did not answer and ``raise_on_missing_output``.
    """
    rows, totals = list_resource_with_totals("objects", address=address, limit=None,
                                             timeout=timeout, detail=True)
    missing = missing_warning("objects", totals)
    if missing and raise_on_missing_output:
        raise RayStateApiException(missing)
    if missing:
        warnings.warn(missing, stacklevel=2)
    return object_summary(rows)


def object_summary(rows: list[dict]) -> dict:
    """``summarize_objects()`` of these object rows (detailed: they need ``call_site``)."""
    groups: dict[str, dict] = {}
    for row in rows:
        group = groups.setdefault(row["call_site"], {
            "total_objects": 0, "total_size_mb": 0.0, "workers": set(), "nodes": set(),
            "task_state_counts": {}, "ref_type_counts": {}})
        group["total_objects"] += 1
        group["total_size_mb"] += row["object_size"] / 2**20
        group["workers"].add((row["node_id"], row["pid"]))
        group["nodes"].add(row["node_id"])
        for key, value in (("task_state_counts", row["task_status"]),
                           ("ref_type_counts", row["reference_type"])):
            group[key][value] = group[key].get(value, 0) + 1
    summary = {site: {"total_objects": g["total_objects"], "total_size_mb": g["total_size_mb"],
                      "total_num_workers": len(g["workers"]),
                      "total_num_nodes": len(g["nodes"]),
                      "task_state_counts": g["task_state_counts"],
                      "ref_type_counts": g["ref_type_counts"]}
               for site, g in groups.items()}
    return {"cluster": {"summary": summary, "total_objects": len(rows),
                        "total_size_mb": sum(r["object_size"] for r in rows) / 2**20,
                        "callsite_enabled": any(r["call_site"] != "disabled" for r in rows),
                        "summary_by": "callsite"}}


class StateApiClient:
    """Ray's client object for the state API: the same queries, for one cluster.

    Args:
        address: the cluster's address ("auto", "HOST:PORT"); None for the cluster this
            driver is connected to, or this machine's. ``cookies``, ``headers`` and
            ``verify`` are Ray's HTTP settings; raggio asks the control store directly
            and refuses them.
    """

    def __init__(self, address: str | None = None, cookies: dict | None = None,
                 headers: dict | None = None, verify: bool | str = True):
        if cookies or headers:
            raise RayStateApiException(
                "StateApiClient(cookies=..., headers=...) are for Ray's HTTP state server; "
                "raggio's state API asks the control store over its own connection, "
                "authenticated by the cluster token.")
        self._address = address

    def list(self, resource: StateResource | str, options: ListApiOptions,
             raise_on_missing_output: bool, _explain: bool = False) -> list:
        """What ``list_<resource>(...)`` returns, with ``options``' settings."""
        return _listing(_resource_name(resource), self._address, options.filters,
                        options.limit, options.timeout, options.detail,
                        raise_on_missing_output)

    def get(self, resource: StateResource | str, id: str,  # noqa: A002 - Ray's name
            options: GetApiOptions | None, _explain: bool = False):
        """What ``get_<resource>(id)`` returns."""
        name = _resource_name(resource)
        timeout = options.timeout if options else DEFAULT_TIMEOUT_S
        return _as_state(name, get_resource(name, id, address=self._address, timeout=timeout))

    def summary(self, resource: SummaryResource | str, *, options: SummaryApiOptions,
                raise_on_missing_output: bool, _explain: bool = False) -> dict:
        """What ``summarize_<resource>()`` returns."""
        summarize = {"actors": summarize_actors, "tasks": summarize_tasks,
                     "objects": summarize_objects}[_resource_name(resource)]
        return summarize(address=self._address, timeout=options.timeout,
                         raise_on_missing_output=raise_on_missing_output)


def _resource_name(resource_or_name) -> str:
    name = getattr(resource_or_name, "value", resource_or_name)
    return name.replace("_", "-")
