"""The control store server: its RPC surface over the node, job and KV tables.

Owns the node table (who is alive, their resources), the job table, the
internal KV (pickled functions and classes) and the cluster resource view;
delegates actors to ``ActorDirectory``. Storage is in memory for now.
Started by ``raggio.head`` (in the head process) or on its own.

``table_versions`` answers a change counter per table the dashboard shows (each
owner counts its own changes), so that its live updates notice a change with
one constant-time request instead of reading the tables.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from typing import Callable

from raggio.common.autoscaler_status import KV_PREFIX as AUTOSCALER_KV_PREFIX
from raggio.common.autoscaler_status import RESOURCE_REQUEST_KEY
from raggio.common.labels import unmatched_reason
from raggio.common.leasing import request_lease
from raggio.common.scheduling_policy import FAIL, SPILL, SchedulingPolicy
from raggio.common.states import DEAD, DRAIN_DEADLINE_S, DRAIN_REASONS
from raggio.config import Config
from raggio.exceptions import ActorUnschedulableError, RpcError, RuntimeEnvSetupError
from raggio.gcs.actor_directory import ActorDirectory
from raggio.gcs import metrics
from raggio.gcs.health_check import HealthChecker
from raggio.gcs.metrics_discovery import ServiceDiscoveryFile
from raggio.gcs.placement_groups import PlacementGroupTable
from raggio.gcs.storage import SqliteStorage, copy_records
from raggio.gcs.table_storage import TABLES, TableStorage
from raggio.gcs.task_events import TaskEventStore, pending_reason
from raggio.rpc import Connection, Server, connect

logger = logging.getLogger(__name__)


#: How long a state query waits for each node's answer.
NODE_QUERY_TIMEOUT_S = 5.0
#: A node record's drain: ``draining`` (why) while it drains, ``drained`` once its objects moved.
_DRAIN_FIELDS = ("draining", "drained")


def _schedulable(node: dict) -> bool:
    """Whether work may be placed on the node: alive, and not draining."""
    return node["state"] == "ALIVE" and not node.get("draining")


class GcsServer:
    """See the module docstring. ``async with GcsServer(...) as gcs: ...``"""

    def __init__(self, *, listen: str, token: str, session_dir: str, cfg: Config, storage=None):
        self.token = token
        self.session_dir = session_dir
        self.tables = TableStorage(storage)
        self.task_events = TaskEventStore(self.tables, cfg.task_events_max_tasks)
        self.nodes: dict[bytes, dict] = {}
        self.node_conns: dict[bytes, Connection] = {}
        self.jobs: dict[int, dict] = {}
        self.kv: dict[str, bytes] = {}
        self._next_job = 0
        self._view_scheduled = False
        self._tasks: set[asyncio.Task] = set()
        self._attached_jobs: set[int] = set()  #: jobs whose driver is connected now
        #: Changes a page would show to the node table (joins, deaths, resource use) and
        #: to the job table (starts, ends); see ``table_versions``.
        self.nodes_version = 0
        self.jobs_version = 0
        #: Writes of the autoscaler's KV records (``common/autoscaler_status.py``).
        self.autoscaler_version = 0
        #: Tells this control store's counters from a previous one's (after a restart they
        #: start again from 0, and may meet the old values).
        self._epoch = os.urandom(8).hex()
        self.reconnect_grace_s = cfg.gcs_reconnect_grace_s
        self._connect_timeout_s = cfg.connect_timeout_s
        self._lease_retry_timeout_s = cfg.lease_retry_timeout_s
        #: The node managers' scheduling policy, with no node of its own: where actors go.
        self._actor_placement = SchedulingPolicy(None)
        self.actors = ActorDirectory(self._lease_worker_for_actor, self._connect_worker,
                                     self._save_actor, self.node_conns.get,
                                     self.task_events.add_local)
        self.placement_groups = PlacementGroupTable(self._available_nodes,
                                                    lambda node_id: self.node_conns[node_id],
                                                    self._update_node_resources,
                                                    self._save_placement_group)
        self.rpc_timings = metrics.RpcTimings()
        #: ``{pid: component name}`` of the head's other processes (its dashboard), which
        #: the head node's metrics endpoint measures (``ray_component_*``); set by the head.
        self.head_components: Callable[[], dict[int, str]] = dict
        self.server = Server(self.rpc_timings.wrap(self._handlers()), token=token, listen=listen,
                             info={"role": "gcs"})
        self.health = HealthChecker(lambda: self.node_conns, self.declare_node_dead,
                                    period_s=cfg.health_check_period_s,
                                    timeout_s=cfg.health_check_timeout_s,
                                    failure_threshold=cfg.health_check_failure_threshold)
        #: Drivers and workers that want to hear of node deaths (to fail over at once).
        self._node_subscribers: set[Connection] = set()
        #: The live nodes' metrics endpoints, for Prometheus (rewritten as nodes come and go).
        self.metrics_discovery = ServiceDiscoveryFile(session_dir)

    def _handlers(self) -> dict:
        return {
            "register_node": self.register_node,
            "report_resources": self.report_resources,
            "get_nodes": self.get_nodes,
            "drain_node": self.drain_node,
            "drain_state": self.drain_state,
            "register_job": self.register_job,
            "get_jobs": self.get_jobs,
            "table_versions": self.table_versions,
            "list_workers": self.list_workers,
            "list_objects": self.list_objects,
            "add_task_events": self.add_task_events,
            "list_tasks": self.list_tasks,
            "task_page": self.task_page,
            "pending_tasks": self.pending_tasks,
            "get_task": self.get_task,
            "kv_put": self.kv_put,
            "request_resources": self.request_resources,
            "kv_get": self.kv_get,
            "kv_multi_get": self.kv_multi_get,
            "kv_del": self.kv_del,
            "kv_keys": self.kv_keys,
            "create_actor": self.create_actor,
            "wait_actor": self.wait_actor,
            "get_named_actor": self.get_named_actor,
            "list_named_actors": self.list_named_actors,
            "list_actors": self.list_actors,
            "kill_actor": self.kill_actor,
            "actor_exiting": self.actor_exiting,
            "actor_handle_acquired": self.actor_handle_acquired,
            "actor_handle_in_transit": self.actor_handle_in_transit,
            "actor_handle_arrived": self.actor_handle_arrived,
            "actor_handle_released": self.actor_handle_released,
            "worker_died": self.worker_died,
            "cluster_resources": self.cluster_resources,
            "infeasible_task": self.infeasible_task,
            "create_placement_group": self.create_placement_group,
            "wait_placement_group": self.wait_placement_group,
            "remove_placement_group": self.remove_placement_group,
            "placement_group_table": self.placement_group_table,
            "get_named_placement_group": self.get_named_placement_group,
            "subscribe_node_events": self.subscribe_node_events,
            "worker_exited": self.worker_exited,
            "worker_oom_killed": self.worker_oom_killed,
            "backup": self.backup,
            "reattach_job": self.reattach_job,
            "metrics_snapshot": lambda conn, _msg: metrics.snapshot(self),
        }

    async def start(self) -> str:
        self.recover()
        self.metrics_discovery.update(self.nodes.values())
        address = await self.server.start()
        self.placement_groups.start()
        self.health.start()
        return address

    @property
    def address(self) -> str:
        return self.server.address

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.health.close()
        await self.placement_groups.close()
        await self.actors.close()
        self.task_events.save()
        self.tables.close()
        await self.server.close()

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, *exc_info):
        await self.close()

    # -- durability --

    def recover(self) -> None:
        """Reload the tables a previous control store left in storage.

        Nodes and drivers of the previous run may still be up: they reconnect and re-register
        (``register_node``, ``reattach_job``). Live actors are adopted if their workers still
        answer. What has not come back within ``reconnect_grace_s`` is declared dead: such
        nodes, and such jobs with their non-detached actors and placement groups.
        """
        self.kv = dict(self.tables.load("kv"))
        for job in self.tables.load("jobs"):
            self.jobs[job["job_id"]] = job
        self._next_job = max(self.jobs, default=0)
        for node in self.tables.load("nodes"):
            if node["state"] == "ALIVE":
                node["state"] = "RECOVERING"  # until it re-registers
            self.nodes[node["node_id"]] = node
        self.actors.recover(self.tables.load("actors"))
        self.task_events.recover()
        self.placement_groups.recover(self.tables.load("placement_groups"))
        if any(job["is_dead"] is False for job in self.jobs.values()) or any(
                node["state"] == "RECOVERING" for node in self.nodes.values()):
            self._spawn_later(self._expire_unrecovered())

    async def _expire_unrecovered(self) -> None:
        await asyncio.sleep(self.reconnect_grace_s)
        for node_id, node in self.nodes.items():
            if node["state"] == "RECOVERING":
                node["death_reason"] = ("it did not reconnect within "
                                        f"{self.reconnect_grace_s:g} s of a control-store restart")
                node["state"] = "ALIVE"  # so that _node_lost marks it dead and tells everyone
                self._node_lost(node_id)
        for job_id, job in self.jobs.items():
            if not job["is_dead"] and job_id not in self._attached_jobs:
                self._job_finished(job_id)

    def reattach_job(self, conn: Connection, msg: dict) -> dict:
        """A driver of a running job reconnected after a control-store restart."""
        job_id = msg["job_id"]
        job = self.jobs.get(job_id)
        if job is None or job["is_dead"]:
            raise ValueError(f"Job {job_id} has ended; the driver must start a new one.")
        self._attached_jobs.add(job_id)
        conn.close_callbacks.append(lambda _c: self._job_finished(job_id))
        return {"job_id": job_id}

    def _save_actor(self, record) -> None:
        self.tables.save("actors", record.actor_id, record.persistent())

    def _save_placement_group(self, record) -> None:
        self.tables.save("placement_groups", record.pg_id, record.persistent())

    def backup(self, conn: Connection, path: str) -> int:
        """Copy every table into a new SQLite file at ``path``; return the record count."""
        target = SqliteStorage(path)
        try:
            return copy_records(self.tables.storage, target, TABLES)
        finally:
            target.close()

    # -- nodes --

    def register_node(self, conn: Connection, info: dict) -> dict:
        node_id = info["node_id"]
        known = self.nodes.get(node_id)
        if known is not None and known["state"] == "DEAD":
            raise ValueError(f"Node {node_id.hex()} was declared dead "
                             f"({known.get('death_reason', 'unknown')}); it must restart as a "
                             "new node.")
        info = dict(info, state="ALIVE", start_time=time.time(), available=dict(info["resources"]))
        self.nodes[node_id] = info
        self.nodes_version += 1
        self.tables.save("nodes", node_id, info)
        self.node_conns[node_id] = conn
        conn.close_callbacks.append(lambda _c: self._node_lost(node_id))
        logger.info("node %s joined at %s", node_id.hex(), info["address"])
        self.metrics_discovery.update(self.nodes.values())
        self._send_view()  # membership changed: tell every node now, not in 50 ms
        return {"ok": True}

    def declare_node_dead(self, node_id: bytes, reason: str) -> None:
        """A node stopped answering: drop it as if its connection had closed."""
        node = self.nodes.get(node_id)
        if node is not None and node["state"] == "ALIVE":
            node["death_reason"] = reason
        conn = self.node_conns.get(node_id)
        if conn is not None:
            conn.close()  # runs _node_lost
        else:
            self._node_lost(node_id)

    def subscribe_node_events(self, conn: Connection, _msg) -> None:
        self._node_subscribers.add(conn)
        conn.close_callbacks.append(self._node_subscribers.discard)

    def _node_lost(self, node_id: bytes) -> None:
        node = self.nodes.get(node_id)
        if node is None or node["state"] == "DEAD":
            return
        node["state"] = "DEAD"
        node["end_time"] = time.time()
        self.nodes_version += 1
        node.setdefault("death_reason", f"drained: {node.get('draining')}" if node.get("drained")
                        else "its connection to the control store closed")
        self.tables.save("nodes", node_id, node)
        self.node_conns.pop(node_id, None)
        self.actors.node_died(node_id, node["death_reason"])
        self.metrics_discovery.update(self.nodes.values())
        for conn in list(self._node_subscribers):
            conn.notify("node_dead", {"node_id": node_id, "reason": node["death_reason"]})
        for rescheduling in self.placement_groups.node_lost(node_id):
            self._spawn_detached(rescheduling)
        self._send_view()

    def report_resources(self, conn: Connection, msg: dict) -> None:
        node = self.nodes.get(msg["node_id"])
        if node is not None:
            demand, used = msg.get("demand", []), msg.get("object_store_used", 0)
            if demand != node.get("demand", []) or used != node.get("object_store_used", 0):
                self.nodes_version += 1
            node["demand"] = demand
            node["object_store_used"] = used
            # When it last became idle (no lease, request or bundle), in this clock, for
            # the autoscaler's idle timeout.
            if not msg.get("idle"):
                node.pop("idle_since", None)
            elif "idle_since" not in node:
                node["idle_since"] = time.time()
            self._update_node_resources(msg["node_id"], msg)

    def _update_node_resources(self, node_id: bytes, state: dict) -> None:
        node = self.nodes.get(node_id)
        if node is not None:
            available = dict(state["available"])
            total = dict(state.get("total", node["resources"]))
            if available != node["available"] or total != node["resources"]:
                self.nodes_version += 1
            node["available"], node["resources"] = available, total
            self._broadcast_view()

    def _broadcast_view(self) -> None:
        """Send every node the live nodes' resources, at most every 50 ms."""
        if self._view_scheduled:
            return
        self._view_scheduled = True
        asyncio.get_running_loop().call_later(0.05, self._send_view)

    def _send_view(self) -> None:
        self._view_scheduled = False
        self.placement_groups.cluster_changed()
        view = [{"node_id": node_id, "address": node["address"], "total": node["resources"],
                 "available": node["available"], "labels": node.get("labels") or {},
                 "draining": bool(node.get("draining"))}
                for node_id, node in self.nodes.items() if node["state"] == "ALIVE"]
        for conn in self.node_conns.values():
            conn.notify("cluster_view", view)

    def get_nodes(self, conn: Connection, _msg) -> list[dict]:
        return list(self.nodes.values())

    async def drain_node(self, conn: Connection, msg: dict) -> dict:
        """Ray's DrainNode: place no more work on the node and have it move its objects to
        other nodes (``node/draining.py``), so that it can be removed losing nothing.

        ``msg``: ``node_id``, ``reason`` (Ray's: ``DRAIN_NODE_REASON_IDLE_TERMINATION``...),
        ``reason_message`` and ``deadline_s`` (how long moving its objects may take).
        The node refuses while it runs work; then, or if it cannot move an object, the
        node takes work again. Returns ``is_accepted`` and ``rejection_reason_message``.
        """
        node_id = msg["node_id"]
        if msg["reason"] not in DRAIN_REASONS:
            raise ValueError(f"Unknown drain reason {msg['reason']!r}: use one of "
                             f"{', '.join(DRAIN_REASONS)}.")
        node = self.nodes.get(node_id)
        if node is None or node["state"] != "ALIVE" or node_id not in self.node_conns:
            return {"is_accepted": False,
                    "rejection_reason_message": f"node {node_id.hex()} is not alive"}
        deadline_s = msg.get("deadline_s", DRAIN_DEADLINE_S)
        why = node.get("draining") or msg.get("reason_message") or msg["reason"]
        first = "draining" not in node  # a second request keeps the first one's reason
        if first:  # no node sends it more work from now on
            self._set_drain_fields(node_id, node, {"draining": why})
        try:
            reply = await self.node_conns[node_id].call_with_timeout(
                "drain", {"reason": msg["reason"], "reason_message": why,
                          "deadline_s": deadline_s},
                deadline_s + NODE_QUERY_TIMEOUT_S)
        except Exception as exc:  # the node's error, or no answer: it is not drained
            reply = {"is_accepted": False,
                     "rejection_reason_message": f"{type(exc).__name__}: {exc}"}
        # The node's word on its drain after this request: a refusal may come while an
        # earlier drain (for preemption, or from before a restart of this store) goes on.
        state = reply.pop("drain_state", None)
        if state is not None:
            self._node_drain_state(node_id, state)
        elif first and node["state"] == "ALIVE":  # no answer: as far as this store knows,
            self._set_drain_fields(node_id, node, {})  # it does not drain (a notice may tell)
        return reply

    def drain_state(self, conn: Connection, msg: dict) -> None:
        """A node's notice that its drain ended (given up, or its objects moved)."""
        if conn is self.node_conns.get(msg["node_id"]):
            self._node_drain_state(msg["node_id"], msg["state"], notice=True)

    def _node_drain_state(self, node_id: bytes, state: dict, *, notice: bool = False) -> None:
        """Keep a live node's drain as the node reports it (``NodeManager._drain_info``),
        unless a later report came first: each change has a higher ``drain_epoch``. A reply
        to ``drain`` may repeat the epoch a notice had; a notice never brings news at the
        same epoch."""
        node = self.nodes.get(node_id)
        if node is None or node["state"] != "ALIVE":
            return
        known = node.get("drain_epoch", -1)
        if state["drain_epoch"] < known or (notice and state["drain_epoch"] == known):
            return
        node["drain_epoch"] = state["drain_epoch"]
        self._set_drain_fields(node_id, node, {key: state[key] for key in _DRAIN_FIELDS
                                               if key in state})

    def _set_drain_fields(self, node_id: bytes, node: dict, fields: dict) -> None:
        """Make the node record's drain ``fields`` (``{"draining": why}``, with ``"drained":
        True`` once its objects have moved, or ``{}``); a change is kept and reaches every
        node at once."""
        if fields == {key: node[key] for key in _DRAIN_FIELDS if key in node}:
            return
        for key in _DRAIN_FIELDS:
            node.pop(key, None)
        node.update(fields)
        self.nodes_version += 1
        self.tables.save("nodes", node_id, node)
        self._send_view()

    def cluster_resources(self, conn: Connection, _msg) -> dict:
        total: dict[str, float] = {}
        available: dict[str, float] = {}
        for node in self.nodes.values():
            if node["state"] != "ALIVE":
                continue
            for key, value in node["resources"].items():
                total[key] = total.get(key, 0) + value
            for key, value in node["available"].items():
                available[key] = available.get(key, 0) + value
        return {"total": total, "available": {k: v for k, v in available.items() if v > 0}}

    # -- jobs --

    def register_job(self, conn: Connection, info: dict) -> dict:
        self._next_job += 1
        job_id = self._next_job
        self.jobs[job_id] = dict(info, job_id=job_id, start_time=time.time(), is_dead=False)
        self.jobs_version += 1
        self.tables.save("jobs", job_id, self.jobs[job_id])
        conn.close_callbacks.append(lambda _c: self._job_finished(job_id))
        self._attached_jobs.add(job_id)
        return {"job_id": job_id}

    def _job_finished(self, job_id: int) -> None:
        job = self.jobs[job_id]
        self._attached_jobs.discard(job_id)
        if job["is_dead"]:
            return
        job["is_dead"] = True
        job["end_time"] = time.time()
        self.jobs_version += 1
        self.tables.save("jobs", job_id, job)
        self.actors.owner_died(job_id=job_id)
        for removal in self.placement_groups.job_finished(job_id):
            self._spawn_detached(removal)
        for conn in self.node_conns.values():
            conn.notify("job_finished", {"job_id": job_id})

    def get_jobs(self, conn: Connection, _msg) -> list[dict]:
        return list(self.jobs.values())

    async def _ask_nodes(self, op: str) -> tuple[list[tuple[bytes, list]], list[str]]:
        """(node id, reply) of every live node that answers ``op`` in time, and the
        addresses of those that did not."""
        node_ids = [n for n, info in self.nodes.items()
                    if info["state"] == "ALIVE" and n in self.node_conns]
        replies = await asyncio.gather(
            *(self.node_conns[n].call_with_timeout(op, None, NODE_QUERY_TIMEOUT_S)
              for n in node_ids), return_exceptions=True)
        answered = [(node_id, reply) for node_id, reply in zip(node_ids, replies)
                    if not isinstance(reply, BaseException)]
        unanswered = [self.nodes[node_id]["node_ip"] for node_id, reply in zip(node_ids, replies)
                      if isinstance(reply, BaseException)]
        return answered, unanswered

    @staticmethod
    def _fan_out_reply(msg, rows: list[dict], unanswered: list[str]):
        """The rows; with ``{"with_unanswered": True}``, also the nodes that did not answer
        (the state API's ``raise_on_missing_output``)."""
        if msg and msg.get("with_unanswered"):
            return {"rows": rows, "unanswered": unanswered}
        return rows

    async def list_objects(self, conn: Connection, msg) -> list[dict] | dict:
        """Every driver's and worker's object refs, one entry per process and ref."""
        out = []
        answered, unanswered = await self._ask_nodes("get_object_refs")
        for _node_id, processes in answered:
            for process in processes:
                for ref in process["refs"]:
                    out.append(dict(ref, pid=process["pid"], ip=process["ip"],
                                    type=process["type"], holder_node_id=process["node_id"]))
        return self._fan_out_reply(msg, out, unanswered)

    async def list_workers(self, conn: Connection, msg) -> list[dict] | dict:
        """Every live node's workers (asked of the nodes now) and every running driver."""
        out = []
        answered, unanswered = await self._ask_nodes("get_workers")
        for node_id, reply in answered:
            for worker in reply:
                out.append(dict(worker, worker_type="WORKER", node_id=node_id,
                                ip=self.nodes[node_id]["node_ip"]))
        for job in self.jobs.values():
            if not job["is_dead"]:
                out.append({"worker_id": None, "pid": job.get("driver_pid"), "state": "DRIVER",
                            "job_id": job["job_id"], "worker_type": "DRIVER", "node_id": None,
                            "address": job.get("driver_address"),
                            "ip": (job.get("driver_address") or "").rpartition(":")[0]})
        return self._fan_out_reply(msg, out, unanswered)

    # -- what changed (the dashboard's live updates) --

    def table_versions(self, conn: Connection, _msg) -> dict:
        """A counter per table that grows with every change a dashboard page shows: a
        record added, a state change (a death, a restart), a node's resource use; for
        ``tasks``, any recorded event; for ``autoscaler``, a write of its records. Compare
        two answers to learn which tables changed; a different ``epoch`` means a restarted
        control store (all may have changed)."""
        return {"epoch": self._epoch, "nodes": self.nodes_version, "jobs": self.jobs_version,
                "actors": self.actors.version, "placement_groups": self.placement_groups.version,
                "tasks": self.task_events.version, "autoscaler": self.autoscaler_version}

    # -- task history --

    def add_task_events(self, conn: Connection, batch: dict) -> None:
        if self.task_events.add_batch(batch):  # the first from this process
            worker_id = batch["where"][1]
            conn.close_callbacks.append(lambda _c: self.task_events.forget(worker_id))

    def list_tasks(self, conn: Connection, msg: dict | None) -> dict:
        """The newest ``limit`` task attempts, each pending one with why it waits."""
        reply = self.task_events.listing((msg or {}).get("limit"))
        for task in reply["tasks"]:
            task["pending_reason"] = self._why_pending(task)
        return reply

    def task_page(self, conn: Connection, msg: dict) -> dict:
        """A page of the task history, newest first, with counts by state (the dashboard's
        Tasks page): ``{"filters", "offset", "limit"}``, see ``TaskEventStore.page``."""
        reply = self.task_events.page(msg.get("filters") or {}, msg.get("offset", 0),
                                      msg.get("limit", 50))
        for task in reply["tasks"]:
            task["pending_reason"] = self._why_pending(task)
        return reply

    def get_task(self, conn: Connection, task_id: bytes) -> list[dict]:
        """Every recorded attempt of one task (``raggio logs --task-id``)."""
        return self.task_events.attempts(task_id)

    def pending_tasks(self, conn: Connection, _msg) -> list[dict]:
        """Task attempts not running yet, grouped by why they wait (for ``raggio status``):
        ``{"reason", "count", "example"}``, the example a task's name and id."""
        groups: dict[str, dict] = {}
        for task in self.task_events.listing(None, waiting_only=True)["tasks"]:
            reason = self._why_pending(task)
            key = ("waiting for the objects they take as arguments"
                   if task["state"] == "PENDING_ARGS_AVAIL" else reason)
            example = f"{(task['info'] or {}).get('name')} {task['task_id'].hex()}"
            group = groups.setdefault(key, {"reason": key, "count": 0, "example": (
                example if key == reason else f"{example}: {reason}")})
            group["count"] += 1
        return sorted(groups.values(), key=lambda group: -group["count"])

    def _why_pending(self, task: dict) -> str | None:
        if task["state"] in ("FINISHED", "FAILED", "RUNNING"):
            return None
        return pending_reason(task, self.task_events, list(self.nodes.values()),
                              self.placement_groups.groups, self.actors.actors)

    # -- internal KV --

    def request_resources(self, conn: Connection, bundles: list[dict]) -> None:
        """``raggio.autoscaler.sdk.request_resources``: the bundles the autoscaler is to fit
        at once, replacing the last request (an empty list withdraws it). Its own op, so
        that a ray:// client, which may not write the KV, may make it."""
        self.kv_put(conn, [RESOURCE_REQUEST_KEY, json.dumps(bundles).encode(), True])

    def kv_put(self, conn: Connection, msg: list) -> bool:
        key, value, overwrite = msg
        if not overwrite and key in self.kv:
            return False
        self.kv[key] = value
        self.tables.save("kv", key, value)
        if key.startswith(AUTOSCALER_KV_PREFIX):
            self.autoscaler_version += 1
        return True

    def kv_get(self, conn: Connection, key: str) -> bytes | None:
        return self.kv.get(key)

    def kv_multi_get(self, conn: Connection, keys: list[str]) -> list:
        return [self.kv.get(k) for k in keys]

    def kv_del(self, conn: Connection, key: str) -> bool:
        self.tables.delete("kv", key)
        return self.kv.pop(key, None) is not None

    def kv_keys(self, conn: Connection, prefix: str) -> list[str]:
        return [k for k in self.kv if k.startswith(prefix)]

    # -- actors --

    def create_actor(self, conn: Connection, spec: dict) -> dict:
        if spec.get("lifetime") is None:  # the job's default (JobConfig.default_actor_lifetime)
            job = self.jobs.get(spec["job_id"]) or {}
            spec["lifetime"] = job.get("default_actor_lifetime")
        self.actors.create(spec, creator=conn)
        return {"ok": True}

    async def wait_actor(self, conn: Connection, msg: dict) -> dict:
        return await self.actors.wait(msg["actor_id"], msg.get("after_incarnation", 0),
                                      msg.get("timeout_s", 30.0))

    def get_named_actor(self, conn: Connection, msg: dict) -> dict | None:
        record = self.actors.lookup(msg["name"], msg["namespace"])
        return None if record is None else {"spec": record.spec, "info": record.info()}

    def list_named_actors(self, conn: Connection, msg: dict) -> list:
        out = []
        for (namespace, name), actor_id in self.actors.named.items():
            if self.actors.actors[actor_id].state == DEAD:
                continue
            if msg.get("all_namespaces") or namespace == msg.get("namespace"):
                out.append({"name": name, "namespace": namespace})
        return out

    def list_actors(self, conn: Connection, _msg) -> list:
        return [record.info() for record in self.actors.actors.values()]

    def kill_actor(self, conn: Connection, msg: dict) -> None:
        self.actors.kill(msg["actor_id"], msg.get("no_restart", True))

    def actor_exiting(self, conn: Connection, msg: dict) -> None:
        self.actors.exiting(msg["actor_id"], msg["cause"])

    def actor_handle_acquired(self, conn: Connection, msg: dict) -> None:
        self.actors.handle_acquired(conn, msg["actor_id"], msg.get("token"))

    def actor_handle_in_transit(self, conn: Connection, msg: dict) -> None:
        self.actors.handle_in_transit(conn, msg["actor_id"], msg["token"])

    def actor_handle_arrived(self, conn: Connection, msg: dict) -> None:
        self.actors.handle_arrived(conn, msg["actor_id"], msg["token"])

    def actor_handle_released(self, conn: Connection, msg: dict) -> None:
        self.actors.handle_released(conn, msg["actor_id"])

    def worker_oom_killed(self, conn: Connection, msg: dict) -> None:
        self.actors.worker_oom_killed(msg["node_id"], msg["pid"], msg["message"])

    def worker_exited(self, conn: Connection, msg: dict) -> None:
        self.actors.worker_exited(msg["node_id"], msg["pid"], msg["exit_code"])

    def worker_died(self, conn: Connection, msg: dict) -> None:
        self.actors.owner_died(worker_id=msg["worker_id"])

    async def _lease_worker_for_actor(self, spec: dict) -> tuple[Connection, dict]:
        """A dedicated worker for an actor, on the node the scheduling policy picks among
        the live ones (again after a node died), following spillbacks between nodes."""
        strategy = spec.get("strategy") or "DEFAULT"

        def pick() -> tuple[Connection | None, bool]:
            node_id, placed = self._pick_node(spec["resources"], strategy)
            return self.node_conns.get(node_id), placed

        async def reach(reply: dict) -> Connection:
            conn = self.node_conns.get(reply["node_id"])
            if conn is None:
                raise RpcError(f"node {reply['node_id'].hex()} has left the cluster")
            return conn

        conn, grant = await request_lease(
            {"resources": spec["resources"], "runtime_env": spec.get("runtime_env") or {},
             "job_id": spec["job_id"], "for_actor": spec["class_name"], "strategy": strategy},
            pick=pick, reach=reach, retry_timeout_s=self._lease_retry_timeout_s)
        if "error" in grant:
            if grant.get("runtime_env_setup_failed"):
                raise RuntimeEnvSetupError(grant["error"])
            raise ActorUnschedulableError(grant["error"])
        return conn, grant

    def _pick_node(self, resources: dict, strategy) -> tuple[bytes | None, bool]:
        """The node to ask first, as the scheduling policy places the actor among the live
        nodes, and whether the policy placed it there (that node then grants the lease if
        it fits, as it does for a spilled request); None while no node is alive.

        Raises:
            ActorUnschedulableError: hard node affinity to a node that is not alive or can
                never fit the actor.
        """
        view = {node_id: {"total": node["resources"], "available": node["available"],
                          "labels": node.get("labels") or {}}
                for node_id, node in self.nodes.items()
                if _schedulable(node) and node_id in self.node_conns}
        decision = self._actor_placement.decide(resources, strategy, view, {})
        if decision.kind == FAIL:
            raise ActorUnschedulableError(decision.reason)
        if decision.kind == SPILL:
            return decision.node_id, True
        # Infeasible everywhere now (or no node's labels allow it): ask the node with most
        # free CPU anyway. It keeps the request pending, with its reason in `raggio status`,
        # and sends it on once a node that fits joins.
        most_free = max(view, key=lambda node_id: view[node_id]["available"].get("CPU", 0.0),
                        default=None)
        return most_free, False

    def _available_nodes(self) -> dict[bytes, dict]:
        return {node_id: node["available"] for node_id, node in self.nodes.items()
                if _schedulable(node) and node_id in self.node_conns}

    def _spawn_later(self, coro) -> None:
        """Start ``coro`` once the loop runs (recover() runs before it is serving)."""
        asyncio.get_running_loop().call_soon(self._spawn_detached, coro)

    def _spawn_detached(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- placement groups --

    def create_placement_group(self, conn: Connection, spec: dict) -> None:
        self.placement_groups.create(spec)

    async def wait_placement_group(self, conn: Connection, msg: dict) -> dict | None:
        return await self.placement_groups.wait(msg["pg_id"], msg.get("timeout_s", 30.0))

    async def remove_placement_group(self, conn: Connection, pg_id: bytes) -> None:
        await self.placement_groups.remove(pg_id)

    def placement_group_table(self, conn: Connection, pg_id: bytes | None) -> dict:
        groups = self.placement_groups.groups
        if pg_id is not None:
            record = groups.get(pg_id)
            return {} if record is None else record.info()
        return {g.pg_id.hex(): g.info() for g in groups.values()}

    def get_named_placement_group(self, conn: Connection, msg: dict) -> dict | None:
        record = self.placement_groups.lookup(msg["name"], msg["namespace"])
        return None if record is None else record.info()

    def infeasible_task(self, conn: Connection, msg: dict) -> None:
        if msg.get("labels"):
            logger.warning("actor %s waits: %s", msg.get("for_actor"),
                           unmatched_reason(msg["labels"]))
            return
        logger.warning("actor %s asks for %s, which no node can provide",
                       msg.get("for_actor"), msg["resources"])

    async def _connect_worker(self, address: str, timeout_s: float | None = None) -> Connection:
        return await connect(address, token=self.token, info={"role": "gcs"},
                             timeout_s=timeout_s or self._connect_timeout_s)
