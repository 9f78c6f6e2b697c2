"""``raggio.timeline()``: the task history as a Chrome trace (chrome://tracing, Perfetto).

Ray draws its timeline from profiling events that each worker records when
``RAY_PROFILING=1``; raggio draws it from the task history that the state API reads
(``list_tasks``), which is always on: one complete event per attempt that ran, from its start
to its end, to the millisecond the history keeps. As in Ray's trace, a "process" is a node
(its IP address) and a "thread" a worker (``worker:<id>``). Attempts still running are left
out, and processes report their tasks once a second (``task_events_report_interval_s``), so
a task that has just ended may not show yet.
"""

from __future__ import annotations

import json

from raggio.util.state.api import list_resource

#: The colour Ray's trace gives a task's execution (Chrome tracing's reserved names).
_TASK_COLOUR = "rail_response"


def timeline(filename: str | None = None) -> list[dict] | None:
    """The tasks this cluster ran, as Chrome tracing events (Ray's ``ray.timeline``).

    Args:
        filename: where to write the events as JSON, to open in chrome://tracing or
            https://ui.perfetto.dev.

    Returns:
        The events, or None when they were written to ``filename``.

    Raises:
        RuntimeError: ``init()`` has not been called.
    """
    from raggio.core import context
    if context.current_core_or_none() is None:
        raise RuntimeError("Ray has not been started yet. Timeline requires Ray to be "
                           "initialized first.")
    node_ips = {node["node_id"]: node["node_ip"]
                for node in list_resource("nodes", limit=None)}
    events = []
    for task in list_resource("tasks", limit=None, detail=True):
        if task["start_time_ms"] is None or task["end_time_ms"] is None:
            continue
        events.append({
            "cat": f"task::{task['name']}", "name": f"task::{task['name']}",
            "pid": node_ips.get(task["node_id"], task["node_id"]),
            "tid": f"worker:{task['worker_id']}",
            "ts": task["start_time_ms"] * 1000,
            "dur": (task["end_time_ms"] - task["start_time_ms"]) * 1000,
            "ph": "X", "cname": _TASK_COLOUR,
            "args": {key: task[key] for key in ("task_id", "job_id", "attempt_number",
                                                "func_or_class_name", "actor_id", "state")},
        })
    events.sort(key=lambda event: event["ts"])
    if filename is None:
        return events
    with open(filename, "w") as out:
        json.dump(events, out)
    return None
