"""Ray 2.60's state rows as its HTTP API answers them, made from the state API's rows.

``/api/v0/<resource>`` answers each row with exactly the fields of Ray's state
schema (``list_columns(detail)`` of ``ActorState``, ``TaskState``...), in
Ray's order, because Ray's own client builds its (pydantic-checked) state
objects from them: a field it does not know, or a value outside its literals
(an object's task status, an actor's death cause), fails ``ray list``.
So the rows of ``raggio.util.state`` are given here the fields raggio has
none of (with the value Ray gives when there is nothing to say) and a few
values in Ray's form. ``with_raggio_fields`` keeps the fields raggio adds
(a task's ``pending_reason``, an actor's ``events``...) for raggio's own pages;
Ray's client never asks for them.
"""

from __future__ import annotations

from typing import Callable

#: Ray 2.60's fields per resource: (plain listing, added by ``detail``).
RAY_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "nodes": (("node_id", "node_ip", "is_head_node", "state", "state_message", "node_name",
               "resources_total", "labels"),
              ("start_time_ms", "end_time_ms")),
    "actors": (("actor_id", "class_name", "state", "job_id", "name", "node_id", "pid",
                "ray_namespace"),
               ("serialized_runtime_env", "required_resources", "death_cause", "is_detached",
                "placement_group_id", "repr_name", "num_restarts",
                "num_restarts_due_to_lineage_reconstruction",
                "num_restarts_due_to_node_preemption", "call_site", "label_selector",
                "fallback_strategy")),
    "workers": (("worker_id", "is_alive", "worker_type", "exit_type", "node_id", "ip", "pid"),
                ("exit_detail", "worker_launch_time_ms", "worker_launched_time_ms",
                 "start_time_ms", "end_time_ms", "debugger_port", "num_paused_threads")),
    "tasks": (("task_id", "attempt_number", "name", "state", "job_id", "actor_id", "type",
               "func_or_class_name", "parent_task_id", "node_id", "worker_id", "worker_pid",
               "error_type"),
              ("language", "required_resources", "runtime_env_info", "placement_group_id",
               "events", "profiling_data", "creation_time_ms", "start_time_ms", "end_time_ms",
               "task_log_info", "error_message", "is_debugger_paused", "call_site",
               "label_selector", "fallback_strategy")),
    "objects": (("object_id", "object_size", "task_status", "attempt_number",
                 "reference_type", "call_site", "type", "pid", "ip"), ()),
    # Ray's JobDetails: the plain listing is its first eight fields, detail all of them.
    "jobs": (("job_id", "submission_id", "entrypoint", "type", "status", "message",
              "error_type", "driver_info"),
             ("start_time", "end_time", "metadata", "runtime_env", "driver_agent_http_address",
              "driver_node_id", "driver_exit_code")),
    "placement-groups": (("placement_group_id", "name", "creator_job_id", "state"),
                         ("bundles", "is_detached", "stats", "topology_strategy",
                          "topology_assignments")),
}

#: What Ray gives for a field raggio has no value of, where that is not None (Ray's
#: schema types these ``int`` or ``str``, not optional).
_FILLS = {
    "actors": {"num_restarts_due_to_lineage_reconstruction": 0,
               "num_restarts_due_to_node_preemption": 0, "repr_name": ""},
    "objects": {"attempt_number": 0},
}


def _actor(row: dict) -> dict:
    # Ray's death cause is a dict (``ActorDeathCause``); raggio's row says it in a sentence.
    cause = row.get("death_cause")
    if isinstance(cause, str):
        row["death_cause"] = {"actor_died_error_context": {
            "error_message": cause, "actor_id": row["actor_id"],
            "class_name": row["class_name"], "name": row["name"], "pid": row["pid"],
            "ray_namespace": row["ray_namespace"]}} if cause else None
    return row


def _object(row: dict) -> dict:
    # Ray's task status of an object with no task (a put, an actor handle) is NIL; its
    # statuses have no plain PENDING (raggio's rows know only whether the value is ready),
    # and the first of its pending ones is the nearest.
    status = row["task_status"]
    row["task_status"] = {"-": "NIL", "PENDING": "PENDING_NODE_ASSIGNMENT"}.get(status, status)
    return row


def _placement_group(row: dict) -> dict:
    # Ray's bundles are its protobuf's: the index inside ``bundle_id``, ``unit_resources``.
    if row.get("bundles") is not None:
        row["bundles"] = [{"bundle_id": {"placement_group_id": row["placement_group_id"],
                                         "bundle_index": bundle["bundle_id"]},
                           "node_id": bundle["node_id"], "unit_resources": bundle["resources"],
                           "label_selector": {}}
                          for bundle in row["bundles"]]
    return row


_ADAPT: dict[str, Callable[[dict], dict]] = {
    "actors": _actor, "objects": _object, "placement-groups": _placement_group}


def ray_row(name: str, row: dict, *, detail: bool, with_raggio_fields: bool = False) -> dict:
    """One state API row of resource ``name`` (with every field) as Ray's HTTP API has it."""
    plain, detailed = RAY_COLUMNS[name]
    fields = plain + detailed if detail else plain
    fills = _FILLS.get(name, {})
    adapt = _ADAPT.get(name)
    if adapt is not None:
        row = adapt(dict(row))
    out = {field: row.get(field, fills.get(field)) for field in fields}
    if with_raggio_fields:
        out.update((field, value) for field, value in row.items() if field not in out)
    return out
