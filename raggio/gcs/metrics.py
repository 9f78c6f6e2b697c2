"""What the control store tells the head node's metrics endpoint, and its RPC timings.

The head node's endpoint (``node/metrics_export.py``) asks for
``metrics_snapshot`` at each scrape: live nodes, tasks and actors by state
(``ray_tasks``, ``ray_actors``), jobs, the task history's drops, how long each
RPC took (``RpcTimings``), the head's processes (this one, the dashboard) for
``ray_component_*``, and the autoscaler's last status (its ``autoscaler_*``
families), as its monitor wrote it to the KV. Plain data, so that the control store
imports nothing of Prometheus.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import os
import time

from raggio.common.autoscaler_status import STATUS_KEY

#: Upper bounds (seconds) of the RPC latency histogram's buckets; +Inf is implied.
LATENCY_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                     0.25, 0.5, 1.0, 2.5, 5.0)


class RpcTimings:
    """Per RPC: how many calls, their total time and a latency histogram.

    ``wrap(handlers)`` returns the handler table with each handler timed: the time its
    call takes, and for a coroutine until it is done.
    """

    def __init__(self):
        #: op -> [count, sum of seconds, bucket counts... (len(LATENCY_BUCKETS_S) + 1)]
        self.by_op: dict[str, list] = {}

    def wrap(self, handlers: dict) -> dict:
        return {op: self._timed(op, handler) for op, handler in handlers.items()}

    def _record(self, op: str, seconds: float) -> None:
        row = self.by_op.get(op)
        if row is None:
            row = self.by_op[op] = [0, 0.0] + [0] * (len(LATENCY_BUCKETS_S) + 1)
        row[0] += 1
        row[1] += seconds
        row[2 + bisect.bisect_left(LATENCY_BUCKETS_S, seconds)] += 1

    def _timed(self, op: str, handler):
        clock, record = time.perf_counter, self._record

        async def finish(coro, started: float):
            try:
                return await coro
            finally:
                record(op, clock() - started)

        def timed(conn, payload):
            started = clock()
            result = handler(conn, payload)
            if asyncio.iscoroutine(result):
                return finish(result, started)
            record(op, clock() - started)
            return result
        return timed


def snapshot(gcs) -> dict:
    """``GcsServer``'s state for the head node's metrics endpoint (``metrics_snapshot``)."""
    actors: dict[tuple, int] = {}
    for record in gcs.actors.actors.values():
        key = (record.state, record.spec.get("class_name", ""), record.spec.get("job_id"))
        actors[key] = actors.get(key, 0) + 1
    jobs = gcs.jobs.values()
    return {
        "active_nodes": sum(node["state"] == "ALIVE" for node in gcs.nodes.values()),
        "tasks": gcs.task_events.state_counts(),
        "actors": [[*key, count] for key, count in actors.items()],
        "running_jobs": sum(not job["is_dead"] for job in jobs),
        "finished_jobs": sum(job["is_dead"] for job in jobs),
        "task_history_dropped": gcs.task_events.dropped,
        "task_events_dropped_at_source": gcs.task_events.dropped_at_source,
        "rpc": gcs.rpc_timings.by_op, "latency_buckets": LATENCY_BUCKETS_S,
        "pids": {os.getpid(): "gcs_server", **gcs.head_components()},
        "autoscaler": json.loads(status) if (status := gcs.kv.get(STATUS_KEY)) else None,
    }
