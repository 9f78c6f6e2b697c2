"""How each resource of the state API is read and shaped into rows with Ray's fields.

One ``Resource`` per kind (nodes, actors, workers, tasks, objects, jobs,
placement groups): the control store request that answers its records, the
columns of a plain and of a detailed listing in Ray's order, the function
that turns a record into a row, and the state class ``list_*`` returns for
it. Plain functions over records, no I/O; ``api.py`` queries and filters.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from raggio.common.placement_group_resources import (is_group_resource, placement_group_of,
                                                     requested_resources)
from raggio.job_submission.common import is_internal_driver
from raggio.util.state.common import (ActorState, JobState, NodeState, ObjectState,
                                      PlacementGroupState, StateSchema, TaskState,
                                      WorkerState)


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
    #: Records left out of every listing (raggio's own drivers among the jobs).
    hidden: Callable[[Any], bool] | None = None


def _job_hex(job_id: int | None) -> str:
    return (job_id or 0).to_bytes(4, "big").hex()


def _ms(seconds: float | None) -> int | None:
    return int(seconds * 1000) if seconds else None


def _node_row(node: dict) -> dict:
    return {
        "node_id": node["node_id"].hex(), "node_ip": node["node_ip"],
        "is_head_node": bool(node.get("is_head")), "state": node["state"],
        "state_message": node.get("death_reason") or (
            f"draining: {node['draining']}" if node.get("draining") else ""),
        "node_name": node["node_ip"],
        # Without the resources placement groups add (CPU_group_<id>...): what the node has.
        "resources_total": {k: v for k, v in node["resources"].items()
                            if not is_group_resource(k)},
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


def _task_row(task: dict) -> dict:
    info = task["info"] or {}
    job_hex = _job_hex(info.get("job_id"))
    resources = info.get("required_resources") or {}
    group = placement_group_of(resources)
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
        "language": "PYTHON", "required_resources": requested_resources(resources),
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
                      "metadata", "runtime_env"), _job_row, JobState,
                     hidden=is_internal_driver),
    "placement-groups": Resource("placement_group_table", "placement_group_id",
                                 ("placement_group_id", "name", "creator_job_id", "state"),
                                 ("strategy", "ray_namespace", "bundles", "pending_reason",
                                  "is_detached", "stats"),
                                 _placement_group_row, PlacementGroupState),
}
