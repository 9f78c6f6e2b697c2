"""The state API (``ray.util.state``): list, get and summarize what a cluster holds.

Each resource is read from the control store's tables and shaped into rows
with Ray's field names (``ray list actors`` prints ACTOR_ID, CLASS_NAME,
STATE...); ``raggio list/get/summary`` prints the rows, and the public
``list_*``/``get_*`` functions return them as the state objects of
``common.py`` (``actor.state``). ``filters`` are ``(key, "=" | "!=", value)``
tuples over those fields, ``limit`` caps the rows (100 by default, as in Ray)
and ``detail`` adds the fields Ray shows only with ``--detail``. A driver that
called ``init()`` asks through its own connection; otherwise ``address`` (or
this machine's current cluster, as ``init("auto")`` finds it) gets a one-shot
connection. ``raise_on_missing_output`` (on by default, as in Ray) raises when
a node did not answer a query that asks every node (objects, workers);
otherwise that is a warning.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Callable

from raggio.util.state.common import (DEFAULT_LIMIT, DEFAULT_RPC_TIMEOUT, ActorState,
                                      GetApiOptions, JobState, ListApiOptions, NodeState,
                                      ObjectState, PlacementGroupState, StateResource,
                                      StateSchema, SummaryApiOptions, SummaryResource,
                                      TaskState, WorkerState)

DEFAULT_TIMEOUT_S = float(DEFAULT_RPC_TIMEOUT)


class RayStateApiException(Exception):
    """A state query that cannot be answered: a bad resource, filter or address."""


@dataclasses.dataclass(frozen=True)
class Resource:
    """How one resource is read and shown."""

    op: str  #: the control store request returning its records
    id_field: str
    columns: tuple[str, ...]  #: the fields of a plain listing, in Ray's order
    detail_columns: tuple[str, ...]  #: added with ``detail=True``
    shape: Callable[[Any], dict]  #: a control store record -> a row with every field
    state_class: type[StateSchema]  #: what the public API returns for a row
    #: Whether the control store request takes ``{"limit": n}`` and answers
    #: ``{"tasks": [...], "total": ..., "dropped": ...}`` (the task history).
    history: bool = False
    #: Whether one id names several rows (an object held by several processes): ``get``
    #: answers a list.
    several: bool = False
    #: Whether the control store asks every node (``{"rows", "unanswered"}`` replies).
    fan_out: bool = False


def _job_hex(job_id: int | None) -> str:
    return (job_id or 0).to_bytes(4, "big").hex()


def _ms(seconds: float | None) -> int | None:
    return int(seconds * 1000) if seconds else None


def _node_row(node: dict) -> dict:
    return {
        "node_id": node["node_id"].hex(), "node_ip": node["node_ip"],
        "is_head_node": bool(node.get("is_head")), "state": node["state"],
        "state_message": node.get("death_reason") or "", "node_name": node["node_ip"],
        # Without the resources placement groups add (CPU_group_<id>...): what the node has.
        "resources_total": {k: v for k, v in node["resources"].items() if "_group_" not in k},
        "labels": node.get("labels") or {},
        "start_time_ms": _ms(node.get("start_time")), "end_time_ms": _ms(node.get("end_time")),
    }


def _actor_row(actor: dict) -> dict:
    return {
        "actor_id": actor["actor_id"].hex(), "class_name": actor["class_name"],
        "state": actor["state"], "job_id": _job_hex(actor["job_id"]),
        "name": actor["name"], "node_id": actor["node_id"].hex() if actor["node_id"] else "",
        "pid": actor["pid"] or 0, "ray_namespace": actor["namespace"],
        "address": actor["address"] or "", "is_detached": actor["is_detached"],
        "num_restarts": actor["num_restarts"], "death_cause": actor["death_cause"],
        "start_time": _ms(actor["start_time"]), "end_time": _ms(actor["end_time"]),
        "events": [{"state": state, "created_ms": _ms(ts),
                    "node_id": node_id.hex() if node_id else ""}
                   for state, ts, node_id in actor.get("events", ())],
    }


def _job_row(job: dict) -> dict:
    job_hex = _job_hex(job["job_id"])
    driver_address = job.get("driver_address") or ""
    return {
        "job_id": job_hex, "submission_id": None,
        "entrypoint": job.get("entrypoint", ""), "type": "DRIVER",
        "status": "SUCCEEDED" if job["is_dead"] else "RUNNING",
        "message": None, "error_type": None,
        "driver_info": {"id": job_hex, "node_ip_address": driver_address.rpartition(":")[0],
                        "pid": str(job.get("driver_pid") or "")},
        "driver_pid": job.get("driver_pid"), "driver_address": job.get("driver_address"),
        "ray_namespace": job.get("namespace") or "",
        "start_time": _ms(job.get("start_time")), "end_time": _ms(job.get("end_time")),
        "metadata": job.get("metadata") or {}, "runtime_env": job.get("runtime_env") or {},
    }


def _placement_group_row(group: dict) -> dict:
    return {
        "placement_group_id": group["placement_group_id"], "name": group["name"],
        "creator_job_id": _job_hex(group["job_id"]), "state": group["state"],
        "strategy": group["strategy"], "ray_namespace": group["namespace"],
        "bundles": [{"bundle_id": index, "resources": bundle,
                     "node_id": group["bundles_to_node_id"].get(index)}
                    for index, bundle in group["bundles"].items()],
        "pending_reason": group["pending_reason"],
        "is_detached": group.get("is_detached"), "stats": None,
    }


def _worker_row(worker: dict) -> dict:
    return {
        "worker_id": worker["worker_id"].hex() if worker["worker_id"] else "",
        "is_alive": True, "worker_type": worker["worker_type"], "exit_type": None,
        "node_id": worker["node_id"].hex() if worker["node_id"] else "",
        "ip": worker["ip"], "pid": worker["pid"] or 0, "exit_detail": None,
        "state": worker["state"], "job_id": _job_hex(worker["job_id"]) if worker["job_id"]
        else "", "address": worker["address"] or "",
    }


def _reference_type(ref: dict) -> str:
    if ref.get("actor_handle"):
        return "ACTOR_HANDLE"
    if ref["task_refs"]:
        return "USED_BY_PENDING_TASK"
    if ref["local_refs"]:
        return "LOCAL_REFERENCE"
    if ref["escaped"]:
        return "CAPTURED_IN_OBJECT"
    return "PINNED_IN_MEMORY"


def _object_row(ref: dict) -> dict:
    return {
        "object_id": ref["object_id"].hex(), "object_size": ref["size"],
        "task_status": ("-" if ref.get("actor_handle") else
                        "FINISHED" if ref["ready"] else "PENDING"),
        "reference_type": _reference_type(ref), "call_site": ref.get("call_site") or "disabled",
        "type": ref["type"], "pid": ref["pid"], "ip": ref["ip"],
        "is_owner": ref["owned"], "node_id": ref["holder_node_id"].hex(),
        "stored_on": ref["node_id"].hex() if ref["node_id"] else "",
    }


#: Ray's driver task id: 20 0xff bytes and the job id; the parent of a driver's tasks.
def _driver_task_hex(job_hex: str) -> str:
    return "ff" * 20 + job_hex


def _plain_resources(resources: dict) -> dict:
    """A request as the user wrote it: without placement group renaming (CPU_group_...)."""
    out = {}
    for key, value in resources.items():
        if key.startswith("bundle_group_"):
            continue
        out[key.split("_group_")[0]] = value
    return out


def _task_row(task: dict) -> dict:
    info = task["info"] or {}
    job_hex = _job_hex(info.get("job_id"))
    resources = info.get("required_resources") or {}
    group = next((k.rpartition("_")[2] for k in resources if k.startswith("bundle_group_")),
                 None)
    events = [{"state": state, "created_ms": _ms(ts)} for state, ts in task["events"]]
    return {
        "task_id": task["task_id"].hex(), "attempt_number": task["attempt"],
        "name": info.get("name", ""), "state": task["state"], "job_id": job_hex,
        "actor_id": info["actor_id"].hex() if info.get("actor_id") else "",
        "type": info.get("type", ""), "func_or_class_name": info.get("func_or_class_name", ""),
        "parent_task_id": (task["parent_task_id"].hex() if task["parent_task_id"]
                           else _driver_task_hex(job_hex)),
        "node_id": task["node_id"].hex() if task["node_id"] else "",
        "worker_id": task["worker_id"].hex() if task["worker_id"] else "",
        "worker_pid": task["worker_pid"], "error_type": task["error_type"],
        "language": "PYTHON", "required_resources": _plain_resources(resources),
        "placement_group_id": group, "events": events,
        "creation_time_ms": events[0]["created_ms"] if events else None,
        "start_time_ms": _ms(task["start_time"]), "end_time_ms": _ms(task["end_time"]),
        "error_message": task["error_message"], "pending_reason": task.get("pending_reason"),
    }


RESOURCES: dict[str, Resource] = {
    "nodes": Resource("get_nodes", "node_id",
                      ("node_id", "node_ip", "is_head_node", "state", "state_message",
                       "node_name", "resources_total", "labels"),
                      ("start_time_ms", "end_time_ms"), _node_row, NodeState),
    "actors": Resource("list_actors", "actor_id",
                       ("actor_id", "class_name", "state", "job_id", "name", "node_id", "pid",
                        "ray_namespace"),
                       ("address", "is_detached", "num_restarts", "death_cause", "start_time",
                        "end_time", "events"), _actor_row, ActorState),
    "workers": Resource("list_workers", "worker_id",
                        ("worker_id", "is_alive", "worker_type", "exit_type", "node_id", "ip",
                         "pid", "exit_detail"),
                        ("state", "job_id", "address"), _worker_row, WorkerState,
                        fan_out=True),
    "tasks": Resource("list_tasks", "task_id",
                      ("task_id", "attempt_number", "name", "state", "job_id", "actor_id", "type",
                       "func_or_class_name", "parent_task_id", "node_id", "worker_id",
                       "worker_pid", "error_type"),
                      ("language", "required_resources", "placement_group_id", "events",
                       "creation_time_ms", "start_time_ms", "end_time_ms", "error_message",
                       "pending_reason"), _task_row, TaskState, history=True),
    "objects": Resource("list_objects", "object_id",
                        ("object_id", "object_size", "task_status", "reference_type",
                         "call_site", "type", "pid", "ip"),
                        ("is_owner", "node_id", "stored_on"), _object_row, ObjectState,
                        several=True, fan_out=True),
    "jobs": Resource("get_jobs", "job_id",
                     ("job_id", "submission_id", "entrypoint", "type", "status"),
                     ("message", "error_type", "driver_info", "driver_pid",
                      "driver_address", "ray_namespace", "start_time", "end_time",
                      "metadata", "runtime_env"), _job_row, JobState),
    "placement-groups": Resource("placement_group_table", "placement_group_id",
                                 ("placement_group_id", "name", "creator_job_id", "state"),
                                 ("strategy", "ray_namespace", "bundles", "pending_reason",
                                  "is_detached", "stats"),
                                 _placement_group_row, PlacementGroupState),
}


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
    except (ConnectionError, OSError) as exc:
        raise RayStateApiException(str(exc)) from None
    return reply


def _records(spec: Resource, address: str | None, timeout_s: float,
             limit: int | None = None) -> tuple[list, dict]:
    """(the resource's records, totals: how many there are and how many were dropped)."""
    if spec.history:
        reply = _query(spec.op, {"limit": limit}, address, timeout_s)
        totals = {key: reply[key] for key in ("total", "dropped", "dropped_at_source")}
        return reply["tasks"], totals
    if spec.fan_out:
        reply = _query(spec.op, {"with_unanswered": True}, address, timeout_s)
        return reply["rows"], {"total": len(reply["rows"]), "unanswered": reply["unanswered"]}
    reply = _query(spec.op, None, address, timeout_s)
    records = list(reply.values()) if isinstance(reply, dict) else reply
    return records, {"total": len(records)}


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
    else:
        equal = str(value) == str(wanted)
    return equal if op == "=" else not equal


def _check_filters(name: str, spec: Resource, filters) -> list[tuple[str, str, Any]]:
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
    checked = _check_filters(name, spec, filters)
    if limit is not None and limit <= 0:
        raise RayStateApiException(f"limit must be positive, got {limit}.")
    fields = spec.columns + (spec.detail_columns if detail else ())
    records, totals = _records(spec, address, timeout, None if checked else limit)
    rows = []
    for record in records:
        row = spec.shape(record)
        if all(_matches(row, key, op, value) for key, op, value in checked):
            rows.append({field: row[field] for field in fields})
    rows.sort(key=lambda row: str(row[spec.id_field]))
    return (rows[:limit] if limit is not None else rows), totals


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
    summary: dict[str, dict] = {}
    rows = list_resource("actors", address=address, limit=None, timeout=timeout)
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
    warning = dropped_warning(totals)
    if warning:
        warnings.warn(warning, stacklevel=2)
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
