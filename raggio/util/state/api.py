"""The state API (``ray.util.state``): list, get and summarize what a cluster holds.

Each resource is read from the control store's tables and shaped into Ray's
field names (``ray list actors`` prints ACTOR_ID, CLASS_NAME, STATE...).
``filters`` are ``(key, "=" | "!=", value)`` tuples over those fields,
``limit`` caps the rows (100 by default, as in Ray) and ``detail`` adds the
fields Ray shows only with ``--detail``. A driver that called ``init()``
asks through its own connection; otherwise ``address`` (or this machine's
current cluster, as ``init("auto")`` finds it) gets a one-shot connection.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

DEFAULT_LIMIT = 100
DEFAULT_TIMEOUT_S = 30.0


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
    }


def _job_row(job: dict) -> dict:
    return {
        "job_id": _job_hex(job["job_id"]), "submission_id": None,
        "entrypoint": job.get("entrypoint", ""), "type": "DRIVER",
        "status": "SUCCEEDED" if job["is_dead"] else "RUNNING",
        "driver_pid": job.get("driver_pid"), "driver_address": job.get("driver_address"),
        "ray_namespace": job.get("namespace") or "",
        "start_time": _ms(job.get("start_time")), "end_time": _ms(job.get("end_time")),
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
        "task_status": "FINISHED" if ref["ready"] else "PENDING",
        "reference_type": _reference_type(ref), "call_site": "disabled",
        "type": ref["type"], "pid": ref["pid"], "ip": ref["ip"],
        "is_owner": ref["owned"], "node_id": ref["holder_node_id"].hex(),
        "stored_on": ref["node_id"].hex() if ref["node_id"] else "",
    }


RESOURCES: dict[str, Resource] = {
    "nodes": Resource("get_nodes", "node_id",
                      ("node_id", "node_ip", "is_head_node", "state", "state_message",
                       "node_name", "resources_total", "labels"),
                      ("start_time_ms", "end_time_ms"), _node_row),
    "actors": Resource("list_actors", "actor_id",
                       ("actor_id", "class_name", "state", "job_id", "name", "node_id", "pid",
                        "ray_namespace"),
                       ("address", "is_detached", "num_restarts", "death_cause", "start_time",
                        "end_time"), _actor_row),
    "workers": Resource("list_workers", "pid",
                        ("worker_id", "is_alive", "worker_type", "exit_type", "node_id", "ip",
                         "pid", "exit_detail"),
                        ("state", "job_id", "address"), _worker_row),
    "objects": Resource("list_objects", "object_id",
                        ("object_id", "object_size", "task_status", "reference_type",
                         "call_site", "type", "pid", "ip"),
                        ("is_owner", "node_id", "stored_on"), _object_row),
    "jobs": Resource("get_jobs", "job_id",
                     ("job_id", "submission_id", "entrypoint", "type", "status"),
                     ("driver_pid", "driver_address", "ray_namespace", "start_time",
                      "end_time"), _job_row),
    "placement-groups": Resource("placement_group_table", "placement_group_id",
                                 ("placement_group_id", "name", "creator_job_id", "state"),
                                 ("strategy", "ray_namespace", "bundles", "pending_reason"),
                                 _placement_group_row),
}


def resource(name: str) -> Resource:
    found = RESOURCES.get(name.replace("_", "-"))
    if found is None:
        raise RayStateApiException(
            f"Unknown resource {name!r}. Valid resources: {', '.join(RESOURCES)}.")
    return found


def _records(op: str, address: str | None, timeout_s: float) -> list:
    """The records one control store request returns, by the driver's connection or
    a one-shot one."""
    from raggio.core import context
    if address is None and context.current_core_or_none() is not None:
        reply = context.get_core().request("gcs", op, None)
    else:
        from raggio.core.one_shot import query_control_store
        try:
            (reply,) = query_control_store(address, [(op, None)], timeout_s=timeout_s)
        except (ConnectionError, OSError) as exc:
            raise RayStateApiException(str(exc)) from None
    return list(reply.values()) if isinstance(reply, dict) else reply


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
    """Rows of one resource, with Ray's fields; what ``raggio list`` prints."""
    spec = resource(name)
    checked = _check_filters(name, spec, filters)
    if limit is not None and limit <= 0:
        raise RayStateApiException(f"limit must be positive, got {limit}.")
    fields = spec.columns + (spec.detail_columns if detail else ())
    rows = []
    for record in _records(spec.op, address, timeout):
        row = spec.shape(record)
        if all(_matches(row, key, op, value) for key, op, value in checked):
            rows.append({field: row[field] for field in fields})
    rows.sort(key=lambda row: str(row[spec.id_field]))
    return rows[:limit] if limit is not None else rows


def get_resource(name: str, resource_id: str, *, address: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT_S) -> dict | None:
    """One row, with every field, by id (a hex string); None if there is none."""
    spec = resource(name)
    for record in _records(spec.op, address, timeout):
        row = spec.shape(record)
        if str(row[spec.id_field]) == resource_id:
            return row
    return None


def list_nodes(**kwargs) -> list[dict]:
    return list_resource("nodes", **kwargs)


def list_actors(**kwargs) -> list[dict]:
    return list_resource("actors", **kwargs)


def list_workers(**kwargs) -> list[dict]:
    return list_resource("workers", **kwargs)


def list_objects(**kwargs) -> list[dict]:
    return list_resource("objects", **kwargs)


def list_jobs(**kwargs) -> list[dict]:
    return list_resource("jobs", **kwargs)


def list_placement_groups(**kwargs) -> list[dict]:
    return list_resource("placement-groups", **kwargs)


def get_node(id: str, **kwargs) -> dict | None:  # noqa: A002 - Ray's parameter name
    return get_resource("nodes", id, **kwargs)


def get_actor(id: str, **kwargs) -> dict | None:  # noqa: A002
    return get_resource("actors", id, **kwargs)


def get_job(id: str, **kwargs) -> dict | None:  # noqa: A002
    return get_resource("jobs", id, **kwargs)


def get_placement_group(id: str, **kwargs) -> dict | None:  # noqa: A002
    return get_resource("placement-groups", id, **kwargs)


def summarize_actors(*, address: str | None = None,
                     timeout: float = DEFAULT_TIMEOUT_S) -> dict:
    """Actors grouped by class with a count per state, in Ray's shape."""
    summary: dict[str, dict] = {}
    rows = list_resource("actors", address=address, limit=None, timeout=timeout)
    for row in rows:
        entry = summary.setdefault(row["class_name"], {"class_name": row["class_name"],
                                                       "state_counts": {}})
        entry["state_counts"][row["state"]] = entry["state_counts"].get(row["state"], 0) + 1
    return {"cluster": {"summary": summary, "total_actors": len(rows),
                        "summary_by": "class"}}


def summarize_objects(*, address: str | None = None,
                      timeout: float = DEFAULT_TIMEOUT_S) -> dict:
    """Object refs grouped by call site (one group while call sites are not recorded),
    in Ray's shape."""
    rows = list_resource("objects", address=address, limit=None, timeout=timeout,
                         detail=True)
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
                        "callsite_enabled": False, "summary_by": "callsite"}}
