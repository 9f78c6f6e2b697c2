"""The alert rules: what holds now, from snapshots of the cluster's tables. No I/O.

Each rule takes what the manager read (the control store's records, a node
manager's statistics) and returns the alerts that hold now, each with a
``key``: the same key is the same alert, which ``gate.AlertGate`` sends once
while it holds. Rules about events (a node died, an actor died for good, a
job failed, a launch failed) list the events that ended after ``since``, the
manager's watermark (the start of its previous look at the tables, kept in the
control store's KV so that a restarted dashboard neither repeats nor misses
one); rules about conditions (the task failure rate, a full or spilling
object store) list what is true now, and clear when it no longer is.

The records are the control store's: ``get_nodes`` (``state``, ``end_time``,
``death_reason``, ``drained``), ``list_actors`` (``state``, ``killed``: ended on purpose,
``creation_error``), ``get_jobs`` (``status``: Ray's job states, FAILED with a
``message``, set by the job supervisor of issue #15; drivers' own jobs end
without one), ``list_tasks`` (attempts with ``state`` and ``end_time``), a node
manager's ``get_node_stats()["object_store"]`` and the autoscaler's
``common/launch_failures.py`` record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from raggio.common.states import DEAD
from raggio.util.state.rows import RESOURCES

CRITICAL, ERROR, WARNING, INFO = "critical", "error", "warning", "info"


@dataclass
class Alert:
    """One alert, as the webhooks get it (``payloads.py``)."""

    name: str  #: the rule that raised it ("node_died")
    severity: str
    key: str  #: the same key is the same alert: sent once while it holds
    message: str
    time: float = field(default_factory=time.time)  #: when it happened (unix s)
    node: str | None = None  #: the node's id (hex), when it is about one node
    details: dict = field(default_factory=dict)


def _short(hex_id: str) -> str:
    return hex_id[:8]


def node_died(nodes: list[dict], since: float) -> list[Alert]:
    """A node that died after ``since``; not one removed on purpose after it was drained
    (``drained``: the autoscaler's scale-down, ``raggio drain-node``)."""
    alerts = []
    for node in nodes:
        if (node["state"] != DEAD or (node.get("end_time") or 0) <= since
                or node.get("drained")):
            continue
        node_hex = node["node_id"].hex()
        reason = node.get("death_reason") or "no reason recorded"
        alerts.append(Alert(
            "node_died", CRITICAL, f"node_died:{node_hex}",
            f"Node {node['node_ip']} ({_short(node_hex)}) died: {reason}.",
            node["end_time"], node_hex,
            {"node_ip": node["node_ip"], "reason": reason, "is_head": bool(node.get("is_head")),
             "resources": node.get("resources") or {}}))
    return alerts


def head_restarted(epoch: str, recorded: dict | None) -> list[Alert]:
    """The control store answering now (``epoch``: its ``table_versions`` epoch) is not the
    one the alert manager last recorded (``recorded``: ``{"epoch", "seen"}`` from the KV),
    so it started again on the same storage."""
    if not recorded or recorded.get("epoch") in (None, epoch):
        return []
    seen = recorded.get("seen")
    return [Alert("head_restarted", WARNING, f"head_restarted:{epoch}",
                  "The head's control store restarted and recovered the cluster from its "
                  "storage; nodes and drivers that are still up reconnect to it.",
                  details={"previous_epoch": recorded["epoch"], "epoch": epoch,
                           "previous_seen_alive": seen})]


def actor_died(actors: list[dict], since: float) -> list[Alert]:
    """An actor that died for good after ``since``: DEAD (no restarts left) and not ended on
    purpose (``raggio.kill``, ``exit_actor``, out of scope, its owner's end), or whose
    ``__init__`` raised."""
    alerts = []
    for actor in actors:
        if actor["state"] != DEAD or (actor.get("end_time") or 0) <= since:
            continue
        if actor.get("killed") and actor.get("creation_error") is None:
            continue
        actor_hex = actor["actor_id"].hex()
        what = f"Actor {actor['class_name']}" + (f" '{actor['name']}'" if actor["name"] else "")
        cause = actor.get("death_cause") or "no cause recorded"
        node_hex = actor["node_id"].hex() if actor.get("node_id") else None
        alerts.append(Alert(
            "actor_died", ERROR, f"actor_died:{actor_hex}",
            f"{what} ({_short(actor_hex)}) died for good: {cause}", actor["end_time"], node_hex,
            {"actor_id": actor_hex, "class_name": actor["class_name"], "name": actor["name"],
             "namespace": actor.get("namespace", ""), "num_restarts": actor["num_restarts"],
             "death_cause": cause, "pid": actor.get("pid")}))
    return alerts


def job_failed(jobs: list[dict], since: float) -> list[Alert]:
    """A job that ended FAILED after ``since`` (a driver's record, or a submitted job's,
    named by its submission id)."""
    alerts = []
    for job in jobs:
        if job.get("status") != "FAILED" or (job.get("end_time") or 0) <= since:
            continue
        job_hex = job.get("submission_id") or RESOURCES["jobs"].shape(job)["job_id"]
        message = job.get("message") or "no message recorded"
        alerts.append(Alert(
            "job_failed", ERROR, f"job_failed:{job_hex}", f"Job {job_hex} failed: {message}",
            job["end_time"], details={"job_id": job_hex, "entrypoint": job.get("entrypoint"),
                                      "submission_id": job.get("submission_id"),
                                      "message": message}))
    return alerts


def task_failure_rate(tasks: list[dict], now: float, threshold: float, window_s: float,
                      min_tasks: int) -> list[Alert]:
    """More than ``threshold`` of the attempts in ``tasks`` (the newest of the history) that
    ended within ``window_s`` of ``now`` failed, and at least ``min_tasks`` ended."""
    ended = [task for task in tasks if task["state"] in ("FINISHED", "FAILED")
             and (task.get("end_time") or 0) >= now - window_s]
    failed = [task for task in ended if task["state"] == "FAILED"]
    if len(ended) < min_tasks or len(failed) <= threshold * len(ended):
        return []
    rate = len(failed) / len(ended)
    examples = [{"name": (task.get("info") or {}).get("name"), "task_id": task["task_id"].hex(),
                 "error_type": task.get("error_type")} for task in failed[-5:]]
    return [Alert(
        "task_failure_rate", WARNING, "task_failure_rate",
        f"{len(failed)} of the last {len(ended)} task attempts that ended within "
        f"{window_s:g} s failed ({rate:.0%}, above {threshold:.0%}).", now,
        details={"failed": len(failed), "ended": len(ended), "rate": round(rate, 4),
                 "threshold": threshold, "window_s": window_s, "examples": examples})]


def object_store(node: dict, stats: dict, previous: dict | None, usage_threshold: float,
                 spilling: bool, now: float) -> list[Alert]:
    """The object store of ``node`` (a ``get_nodes`` record) is at least ``usage_threshold``
    full, or (with ``spilling``) spilled since the ``previous`` statistics."""
    node_hex = node["node_id"].hex()
    alerts = []
    capacity, used = stats["capacity_bytes"], stats["used_bytes"]
    where = f"node {node['node_ip']} ({_short(node_hex)})"
    details = {"node_ip": node["node_ip"], "used_bytes": used, "capacity_bytes": capacity,
               "spilled_bytes_total": stats["spilled_bytes_total"],
               "num_spilled": stats["num_spilled"]}
    if capacity and used >= usage_threshold * capacity:
        alerts.append(Alert(
            "object_store_full", WARNING, f"object_store_full:{node_hex}",
            f"The object store of {where} is {used / capacity:.0%} full "
            f"({used / 2**20:.0f} of {capacity / 2**20:.0f} MiB).", now, node_hex, details))
    if spilling and previous is not None:
        spilled = stats["spilled_bytes_total"] - previous["spilled_bytes_total"]
        if spilled > 0:
            alerts.append(Alert(
                "object_store_spilling", WARNING, f"object_store_spilling:{node_hex}",
                f"The object store of {where} is spilling to disk ({spilled / 2**20:.1f} MiB "
                "since the last look).", now, node_hex, dict(details, spilled_bytes=spilled)))
    return alerts


def launch_failed(failures: list[dict], since: float) -> list[Alert]:
    """A node launch the autoscaler reported failed after ``since``
    (``common/launch_failures.py``)."""
    return [Alert("autoscaler_launch_failed", ERROR, f"autoscaler_launch_failed:{failure['id']}",
                  f"The autoscaler could not launch {failure['count']} node(s) of type "
                  f"{failure['node_type']}: {failure['error']}", failure["time"],
                  details={"node_type": failure["node_type"], "count": failure["count"],
                           "error": failure["error"]})
            for failure in failures if failure["time"] > since]
