"""The node manager server: worker leases, the object store's RPC surface, logs.

Owns the leases granted on this node and ties together ``NodeResources``
(what fits), ``LeaseQueue`` (what to do with each waiting request: it decides,
this module applies), ``WorkerPool`` (who runs it), ``ObjectStore`` (the
arena) and ``LogMonitor``. Submitters (drivers, workers, the control store
for actors) ask for a worker lease per task shape; the lease waits until
resources and a worker are free, and is released when the holder returns it
or disconnects.
Registers with the control store and reports availability and demand.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import socket
import tempfile
import time
from dataclasses import dataclass, field

from raggio.common.labels import NODE_ID_LABEL
from raggio.common.states import DRAIN_PREEMPTION
from raggio.common.runtime_env import env_key
from raggio.common.placement_group_resources import bundle_resources
from raggio.config import Config
from raggio.exceptions import ObjectLostError, RuntimeEnvSetupError
from raggio.node import draining, log_files
from raggio.node.app_metrics import AppMetrics
from raggio.node.log_monitor import LogMonitor
from raggio.node.memory_monitor import MemoryMonitor
from raggio.node.metrics_export import MetricsEndpoint
from raggio.node.object_store import ObjectStore, arena_path
from raggio.node.object_transfer import ObjectTransfer
from raggio.node.resources import NodeResources, uses_gpus
from raggio.node.runtime_env_setup import RuntimeEnvSetup
from raggio.common.scheduling_policy import SchedulingPolicy
from raggio.node.lease_queue import (GRANT, INFEASIBLE_GRACE_S, RECHECK, REFUSE, SPILLBACK,
                                     START_WORKER, WARN_INFEASIBLE, LeaseQueue, LeaseRequest)
from raggio.node.worker_pool import DEAD, IDLE, LEASED, STARTING, WorkerHandle, WorkerPool
from raggio.rpc import Connection, RawReply, Server, connect

logger = logging.getLogger(__name__)

#: How long a state query waits for each process on this node.
QUERY_TIMEOUT_S = 5.0
#: Workers of one runtime env that may exit before registering, one after another, before
#: the requests waiting for such a worker fail (a crash at startup would otherwise repeat).
MAX_WORKER_START_FAILURES = 3


def socket_path(session_dir: str, tag: str) -> str:
    """The node's Unix socket: in its session directory, unless that path is too long for a
    socket address (108 bytes on Linux), then in the system temp dir."""
    path = os.path.join(session_dir, f"node-{tag}.sock")
    if len(path.encode()) < 100:
        return path
    return os.path.join(tempfile.gettempdir(), f"raggio-node-{tag}.sock")


def _label_constraints(strategy) -> dict:
    """``{"labels": constraints}`` for a strategy with label constraints, else {}."""
    if isinstance(strategy, dict) and "base" in strategy:
        return {"labels": {key: strategy[key] for key in ("hard", "soft", "fallback")}}
    return {}


@dataclass
class Lease:
    lease_id: int
    worker: WorkerHandle
    resources: dict
    gpu_ids: list
    holder: Connection
    for_actor: str | None
    blocked: int = 0  #: > 0 while the worker waits in get() with its CPU given back


@dataclass
class NodeOptions:
    node_id: bytes
    node_ip: str
    gcs_address: str
    token: str
    session_dir: str
    session_name: str
    resources: dict
    object_store_memory: int
    is_head: bool = False
    labels: dict = field(default_factory=dict)  #: the user's; ``info()`` adds Ray's defaults
    metrics_export_port: int = 0  #: the Prometheus endpoint's port; 0: any free one
    node_manager_port: int = 0  #: the port of its RPC server (objects move over it too); 0: any


class NodeManager:
    """See the module docstring. ``async with NodeManager(options, cfg) as node: ...``

    ``options`` say which node this is; ``cfg`` gives its timeouts, periods and thresholds.
    """

    def __init__(self, options: NodeOptions, cfg: Config):
        self.options = options
        self.cfg = cfg
        self.node_id = options.node_id
        #: the user's labels and Ray's defaults, which the control store shows and matches
        self.labels = dict(options.labels, **{NODE_ID_LABEL: options.node_id.hex()})
        self.resources = NodeResources(options.resources)
        self.lease_queue = LeaseQueue(SchedulingPolicy(options.node_id))
        #: What the control store last said of every live node; this node's own entry is kept
        #: current here.
        self.view: dict[bytes, dict] = {}
        #: The addresses of every live node, draining ones included (objects are there).
        self.node_addresses: set[str] = set()
        #: Placement group id -> (resources taken from the node, bundle resources added).
        self.bundles: dict[bytes, tuple[dict, dict]] = {}
        self.log_dir = os.path.join(options.session_dir, "logs")
        tag = options.node_id.hex()[:12]
        self.store = ObjectStore(
            arena_path(options.session_name, tag, options.object_store_memory, options.session_dir),
            options.object_store_memory, os.path.join(options.session_dir, "spill", tag),
            prefault_window_bytes=cfg.object_store_prefault_bytes,
            release_after_s=cfg.object_store_release_after_s)
        self.leases: dict[int, Lease] = {}
        self._next_lease = 0
        #: Per runtime env: workers that exited before registering since one last registered.
        self._start_failures: collections.Counter = collections.Counter()
        self.runtime_envs = RuntimeEnvSetup(
            os.path.join(options.session_dir, "runtime_resources"),
            lambda uri: self.gcs.call_with_timeout("kv_get", uri, cfg.rpc_timeout_s))
        self._pins: dict[Connection, collections.Counter] = {}
        self._log_subscribers: dict[int, set[Connection]] = {}
        self.server = Server(self._handlers(), token=options.token,
                             listen=f"{options.node_ip}:{options.node_manager_port}",
                             info={"role": "node"})
        self.local_server = Server(self._handlers(), token=options.token,
                                   listen="unix:" + socket_path(options.session_dir, tag),
                                   info={"role": "node"})
        self.pool: WorkerPool | None = None
        #: Resolves when the control store connection is gone (it declared us dead, or died).
        self.left_cluster: asyncio.Future = asyncio.get_running_loop().create_future()
        self._closing = False
        #: While the node drains (``drain``): its objects moving away; no work is taken.
        self._drain: asyncio.Task | None = None
        #: Why it drains (the drain's reason message), told to a restarted control store.
        self._drain_reason = ""
        #: Counts the drain's changes (started, ended), so that the control store keeps the
        #: latest of the node's reports, whatever order they reach it in.
        self._drain_epoch = 0
        self._prestarted = False
        self._drivers: set[Connection] = set()  #: drivers connected to this node
        self._holders: set[Connection] = set()  #: connections ``_watch`` follows
        self.gcs: Connection | None = None
        self.log_monitor = LogMonitor(self.log_dir, options.node_ip, self._send_logs,
                                      cfg.log_poll_period_s,
                                      max_bytes=cfg.log_rotation_max_bytes,
                                      backup_count=cfg.log_rotation_backup_count)
        self._tasks: set[asyncio.Task] = set()
        self._report_scheduled = False
        self._reported_store_used = -1
        self._reported_demand = 0
        self._peers: dict[str, Connection] = {}
        self.transfer = ObjectTransfer(self.store, self._peer, self._spawn)
        self.app_metrics = AppMetrics()
        self.metrics_endpoint = MetricsEndpoint(
            options.node_ip, options.metrics_export_port, options.token,
            {"ip": options.node_ip, "SessionName": options.session_name,
             "NodeId": options.node_id.hex()},
            self.metrics_snapshot) if cfg.enable_metrics_collection else None

    def _handlers(self) -> dict:
        return {
            "register_worker": self.register_worker,
            "register_client": self.register_client,
            "request_worker_lease": self.request_worker_lease,
            "return_worker_lease": self.return_worker_lease,
            "worker_blocked": self.worker_blocked,
            "worker_unblocked": self.worker_unblocked,
            "worker_owns_objects": self.worker_owns_objects,
            "create_object": self.create_object,
            "seal_object": self.seal_object,
            "pin_objects": self.pin_objects,
            "unpin_objects": self.unpin_objects,
            "free_objects": self.free_objects,
            "subscribe_logs": self.subscribe_logs,
            "job_finished": self.job_finished,
            "get_node_stats": self.get_node_stats,
            "get_workers": self.get_workers,
            "get_object_refs": self.get_object_refs,
            "cluster_view": self.cluster_view,
            "pull_object": self.pull_object,
            "adopt_object": self.adopt_object,
            "drain": self.drain,
            "reserve_bundles": self.reserve_bundles,
            "ping": self.ping,
            "release_bundles": self.release_bundles,
            "read_object_chunk": self.read_object_chunk,
            "list_logs": lambda conn, msg: log_files.list_logs(self.log_dir),
            "read_log": lambda conn, msg: log_files.read_log(self.log_dir, msg),
            "report_metrics": self.report_metrics,
        }

    # -- lifecycle --

    async def start(self) -> "NodeManager":
        if self.metrics_endpoint is not None:
            self.metrics_endpoint.start()  # first: a port in use fails the start at once
        os.makedirs(self.log_dir, exist_ok=True)
        self.store.open()
        await self.server.start()
        await self.local_server.start()
        self.view[self.node_id] = {"address": self.server.address, "total": self.resources.total,
                                   "available": self.resources.available,
                                   "labels": self.labels}
        self.pool = WorkerPool(worker_args=self._worker_args(), log_dir=self.log_dir,
                               on_exit=self._worker_exited)
        await self.pool.start()
        await self._join(self.cfg.connect_timeout_s)
        self._spawn(self.log_monitor.run())
        self._spawn(self.store.backing.run())
        self._spawn(self._report_periodically())
        if self.cfg.memory_monitor_period_s > 0:
            self._spawn(MemoryMonitor(threshold=self.cfg.memory_usage_threshold,
                                      period_s=self.cfg.memory_monitor_period_s,
                                      kill_newest=self._kill_newest_worker).run())
        return self

    async def _join(self, timeout_s: float) -> None:
        """Connect to the control store and register (again, after it restarted)."""
        self.gcs = await connect(self.options.gcs_address, token=self.options.token,
                                 handlers=self._handlers(), info={"role": "node"},
                                 timeout_s=timeout_s)
        await self.gcs.call("register_node", self.info())
        self.gcs.close_callbacks.append(self._control_store_lost)
        self._report_resources()

    def _control_store_lost(self, _conn: Connection) -> None:
        if not self._closing:
            self._spawn(self._rejoin())

    async def _rejoin(self) -> None:
        """Wait for the control store to come back; leave the cluster if it refuses us
        (it declared this node dead) or stays away too long."""
        logger.warning("lost the control store at %s; reconnecting", self.options.gcs_address)
        try:
            await self._join(self.cfg.gcs_reconnect_timeout_s)
            logger.warning("rejoined the control store at %s", self.options.gcs_address)
        except Exception as exc:  # refused (declared dead) or unreachable
            logger.error("leaving the cluster: %s", exc)
            if not self.left_cluster.done():
                self.left_cluster.set_result(None)

    def info(self) -> dict:
        return {
            "node_id": self.node_id, "address": self.server.address,
            "local_address": self.local_server.address, "node_ip": self.options.node_ip,
            "hostname": socket.gethostname(), "resources": self.resources.total,
            "object_store_memory": self.options.object_store_memory,
            "arena_path": self.store.path, "is_head": self.options.is_head,
            "session_dir": self.options.session_dir, "labels": self.labels,
            "metrics_export_port": (self.metrics_endpoint.port
                                    if self.metrics_endpoint is not None else 0),
            **self._drain_info(),
        }

    def _drain_info(self) -> dict:
        """The node's drain, as the control store keeps it: ``drain_epoch``, and while it
        drains ``"draining": why``, with ``"drained": True`` once the objects have moved. In
        ``info`` too, so that a control store that restarted meanwhile keeps it."""
        info = {"drain_epoch": self._drain_epoch}
        if self._drain is not None:
            # A drain given up is no longer here (_drain_ended): one that ended was accepted.
            info["draining"] = self._drain_reason
            if self._drain.done():
                info["drained"] = True
        return info

    def _worker_args(self) -> dict:
        return {
            "node_address": self.local_server.address, "gcs_address": self.options.gcs_address,
            "token": self.options.token, "node_id": self.node_id.hex(),
            "node_ip": self.options.node_ip, "session_dir": self.options.session_dir,
        }

    async def close(self) -> None:
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # Leave the cluster first, so that nobody sends this node more work while it stops.
        try:
            await self._close_servers()
            if self.pool is not None:
                await self.pool.close()
        finally:
            self.store.close()
            if self.metrics_endpoint is not None:
                self.metrics_endpoint.close()

    async def _close_servers(self) -> None:
        if self.gcs is not None:
            self.gcs.close()
        await self.server.close()
        await self.local_server.close()
        for peer in self._peers.values():
            peer.close()

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc_info):
        await self.close()

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- workers --

    def register_worker(self, conn: Connection, msg: dict) -> dict:
        handle = self.pool.worker_registered(msg["worker_id"], msg["address"], conn)
        if handle is None:
            raise ValueError("unknown worker id; this worker was not started by this node")
        conn.close_callbacks.append(lambda _c: self._worker_lost(handle))
        self._start_failures.pop(handle.env_key, None)
        self._dispatch()
        return self.info()

    def register_client(self, conn: Connection, msg: dict) -> dict:
        self._watch(conn)
        self._drivers.add(conn)
        conn.close_callbacks.append(self._drivers.discard)
        self._prestart_workers()
        return self.info()

    def _prestart_workers(self) -> None:
        """Start one idle worker per CPU when the first driver connects, as Ray does: a
        node nobody uses holds no workers, and the first tasks find theirs ready."""
        if self._prestarted or not self.cfg.prestart_workers:
            return
        self._prestarted = True
        for _ in range(int(self.resources.total.get("CPU", 0))):
            self._start_worker({})

    def _worker_lost(self, handle: WorkerHandle) -> None:
        was_alive = handle.state != DEAD
        self.pool.mark_dead(handle)
        if handle.lease_id is not None:
            self._release(self.leases.pop(handle.lease_id, None))
        self._client_lost(handle.conn)
        if self.gcs is not None and was_alive:
            self.gcs.notify("worker_died", {"worker_id": handle.worker_id})
        self._dispatch()

    def _kill_newest_worker(self, message: str) -> bool:
        """The memory monitor's choice: the most recent lease's worker; False if none."""
        if not self.leases:
            return False
        lease = self.leases[max(self.leases)]
        notice = {"worker_id": lease.worker.worker_id, "node_id": self.node_id,
                  "pid": lease.worker.pid, "message": message}
        if lease.holder is not self.gcs:
            lease.holder.notify("worker_oom_killed", notice)
        if self.gcs is not None:
            self.gcs.notify("worker_oom_killed", notice)
        self.pool.kill(lease.worker)
        return True

    def _worker_exited(self, pid: int, exit_code: int) -> None:
        """The zygote reaped a worker: tell the control store how it ended."""
        if self.gcs is not None:
            self.gcs.notify("worker_exited", {"pid": pid, "exit_code": exit_code,
                                              "node_id": self.node_id})
        handle = self.pool.worker_by_pid(pid)
        if handle is not None and handle.state == STARTING:
            self._worker_start_failed(handle, exit_code)

    def _worker_start_failed(self, handle: WorkerHandle, exit_code: int) -> None:
        """A worker died before registering: start another, or after several in a row fail
        the requests waiting for one. Counted as starting, it would hold them forever."""
        self.pool.mark_dead(handle)
        stderr = self.pool.stderr_tail(handle)
        logger.warning("worker %d exited (code %d) before registering%s", handle.pid,
                       exit_code, ":\n" + stderr if stderr else "")
        self._start_failures[handle.env_key] += 1
        if self._start_failures[handle.env_key] >= MAX_WORKER_START_FAILURES:
            del self._start_failures[handle.env_key]
            error = (f"{MAX_WORKER_START_FAILURES} workers in a row exited before registering "
                     f"with node {self.node_id.hex()} (the last with exit code {exit_code})"
                     + (f"; its stderr ends with:\n{stderr}" if stderr else ""))
            for request in self.lease_queue.remove(lambda r: r.env_key == handle.env_key):
                request.future.set_result({"error": error})
        self._dispatch()

    def _watch(self, conn: Connection) -> None:
        """Release what ``conn`` holds when it closes. A driver's or worker's connection
        that came here by spillback never registers, yet holds leases: watched from its
        first request. Not the control store's: its actors outlive its restarts."""
        if conn is not self.gcs and conn not in self._holders:
            self._holders.add(conn)
            conn.close_callbacks.append(self._client_lost)

    def _client_lost(self, conn: Connection) -> None:
        """A holder disconnected: end the workers it leased, drop its pins."""
        self._holders.discard(conn)
        for lease in [l for l in self.leases.values() if l.holder is conn]:
            self.leases.pop(lease.lease_id, None)
            self._release(lease)
            self.pool.kill(lease.worker)
        self.lease_queue.remove(lambda r: r.holder is conn)
        for object_id, count in self._pins.pop(conn, collections.Counter()).items():
            for _ in range(count):
                self.store.unpin(object_id)
        for subscribers in self._log_subscribers.values():
            subscribers.discard(conn)
        self._dispatch()

    def _start_worker(self, runtime_env: dict) -> None:
        handle = self.pool.add_worker(runtime_env)
        self._spawn(self._launch(handle, runtime_env))

    async def _launch(self, handle: WorkerHandle, runtime_env: dict) -> None:
        try:
            prepared = await self.runtime_envs.prepare(runtime_env) if runtime_env else None
        except RuntimeEnvSetupError as exc:
            self._runtime_env_failed(handle, exc)
            return
        try:
            await self.pool.launch(handle, runtime_env, prepared)
        except Exception:
            logger.exception("could not start a worker")
            self.pool.mark_dead(handle)

    def _runtime_env_failed(self, handle: WorkerHandle, exc: RuntimeEnvSetupError) -> None:
        """A runtime env could not be set up: the requests waiting for it fail with why (the
        next request for it tries again); the node carries on with the others."""
        logger.warning("runtime_env setup failed: %s", exc.error_message)
        self.pool.mark_dead(handle)
        for request in self.lease_queue.remove(lambda r: r.env_key == handle.env_key):
            request.future.set_result({"error": exc.error_message,
                                       "runtime_env_setup_failed": True})
        self._dispatch()

    # -- leases --

    async def request_worker_lease(self, conn: Connection, msg: dict) -> dict:
        """A worker for one task shape: a grant, ``spillback`` to another node, or ``error``."""
        resources = {k: float(v) for k, v in msg["resources"].items() if v}
        request = LeaseRequest(resources, msg.get("runtime_env") or {}, msg.get("job_id"),
                               msg.get("for_actor"), conn,
                               asyncio.get_running_loop().create_future(),
                               strategy=msg.get("strategy") or "DEFAULT",
                               spilled=bool(msg.get("spilled")))
        request.env_key = env_key(request.runtime_env)
        self._watch(conn)
        self.lease_queue.add(request)
        self._dispatch()
        return await request.future

    def _warn_infeasible(self, request: LeaseRequest) -> None:
        """Tell the submitter, once, that its request has fit no node for a while."""
        request.holder.notify("infeasible_task", {
            "resources": request.resources, "for_actor": request.for_actor,
            "node_totals": [node["total"] for node in self.view.values()],
            **_label_constraints(request.strategy)})
        self._report_resources()

    def cluster_view(self, conn: Connection, nodes: list[dict]) -> None:
        """The control store's latest view of the live nodes (those draining are kept
        apart: they take no work, but their objects can still be pulled)."""
        own = self.view[self.node_id]
        self.view = {node["node_id"]: node for node in nodes
                     if node["node_id"] != self.node_id and not node.get("draining")}
        self.view[self.node_id] = own
        self.node_addresses = {node["address"] for node in nodes}
        self._dispatch()

    def return_worker_lease(self, conn: Connection, msg: dict) -> None:
        lease = self.leases.pop(msg["lease_id"], None)
        if lease is None:
            return
        self._release(lease)
        worker = lease.worker
        worker.lease_id = None
        if msg.get("kill") or worker.state == DEAD:
            self.pool.kill(worker)
        else:
            worker.state = IDLE
            worker.job_id = None
        self._dispatch()

    def _release(self, lease: Lease | None) -> None:
        if lease is None:
            return
        if lease.blocked:
            self.resources.take_cpu_back(lease.resources)
        self.resources.release(lease.resources, lease.gpu_ids)
        self._report_resources()

    def _dispatch(self) -> None:
        """Grant, spill back or keep each pending request; start workers where needed."""
        if not self.lease_queue.pending:
            if self._reported_demand:
                self._report_resources()
            return
        for action in self.lease_queue.dispatch(self.resources.available, self.view,
                                                self.pool.idle_workers, self.pool.num_starting,
                                                time.monotonic()):
            request = action.request
            if action.kind == GRANT:
                self._grant(request, action.worker)
            elif action.kind == START_WORKER:
                self._start_worker(request.runtime_env)
            elif action.kind == SPILLBACK:
                request.future.set_result({"spillback": self.view[action.node_id]["address"],
                                           "node_id": action.node_id})
            elif action.kind == REFUSE:
                request.future.set_result({"error": action.reason})
            elif action.kind == RECHECK:
                asyncio.get_running_loop().call_later(INFEASIBLE_GRACE_S, self._dispatch)
            elif action.kind == WARN_INFEASIBLE:
                self._warn_infeasible(request)
        if len(self.lease_queue.pending) != self._reported_demand:
            self._report_resources()  # the demand `raggio status` shows has changed

    def _grant(self, request: LeaseRequest, worker: WorkerHandle) -> None:
        gpu_ids = self.resources.acquire(request.resources)
        self._next_lease += 1
        lease = Lease(self._next_lease, worker, request.resources, gpu_ids, request.holder,
                      request.for_actor)
        self.leases[lease.lease_id] = lease
        worker.state = LEASED
        if worker.is_gpu is None:
            worker.is_gpu = uses_gpus(request.resources)
        worker.lease_id = lease.lease_id
        worker.job_id = request.job_id
        request.future.set_result({
            "lease_id": lease.lease_id, "worker_id": worker.worker_id, "address": worker.address,
            "pid": worker.pid, "node_id": self.node_id, "gpu_ids": gpu_ids})
        self._report_resources()

    def reserve_bundles(self, conn: Connection, msg: dict) -> dict | None:
        """Set aside a placement group's bundles here; None if they do not fit now.

        Returns the node's resources afterwards, so the control store's view is current
        before anyone is told the group is ready.
        """
        pg_id, bundles = msg["pg_id"], msg["bundles"]
        if pg_id in self.bundles:
            return self._resource_state()
        if self._drain is not None:
            return None  # leaving the cluster
        needed: dict[str, float] = {}
        for bundle in bundles.values():
            for key, value in bundle.items():
                needed[key] = needed.get(key, 0.0) + value
        if not self.resources.fits(needed):
            return None
        gpu_ids = self.resources.acquire(needed)
        self.resources.set_aside_bundle_gpus(pg_id.hex(), bundles, gpu_ids)
        added = bundle_resources(pg_id, bundles)
        self.resources.add(added)
        self.bundles[pg_id] = (needed, added)
        self._report_resources()
        self._dispatch()
        return self._resource_state()

    def release_bundles(self, conn: Connection, msg: dict) -> dict:
        reserved = self.bundles.pop(msg["pg_id"], None)
        if reserved is not None:
            needed, added = reserved
            self.resources.remove(added)
            self.resources.release(needed, self.resources.drop_bundle_gpus(msg["pg_id"].hex()))
            self._report_resources()
            self._dispatch()
        return self._resource_state()

    def _resource_state(self) -> dict:
        return {"total": self.resources.total, "available": self.resources.available}

    def worker_blocked(self, conn: Connection, msg: dict) -> None:
        lease = self._lease_of(msg["worker_id"])
        if lease is not None:
            lease.blocked += 1
            if lease.blocked == 1:
                self.resources.give_cpu(lease.resources)
                self._dispatch()

    def worker_unblocked(self, conn: Connection, msg: dict) -> None:
        lease = self._lease_of(msg["worker_id"])
        if lease is not None and lease.blocked:
            lease.blocked -= 1
            if lease.blocked == 0:
                self.resources.take_cpu_back(lease.resources)

    def worker_owns_objects(self, conn: Connection, msg: dict) -> None:
        worker = self.pool.workers.get(msg["worker_id"])
        if worker is not None:
            worker.owner_jobs.add(msg["job_id"])

    def _lease_of(self, worker_id: bytes) -> Lease | None:
        worker = self.pool.workers.get(worker_id)
        if worker is None or worker.lease_id is None:
            return None
        return self.leases.get(worker.lease_id)

    def _report_resources(self) -> None:
        if self._report_scheduled or self.gcs is None:
            return
        self._report_scheduled = True
        asyncio.get_running_loop().call_later(0.05, self._send_report)

    def _send_report(self) -> None:
        self._report_scheduled = False
        demand = [{"resources": r.resources, "for_actor": r.for_actor,
                   "infeasible": r.infeasible, **_label_constraints(r.strategy)}
                  for r in self.lease_queue.pending]
        self.gcs.notify("report_resources", {
            "node_id": self.node_id, "available": self.resources.available, "demand": demand,
            "total": self.resources.total,
            "object_store_used": self.store.used_bytes,
            # Idle for the autoscaler's clock: no work here. A node idle so may still refuse
            # a drain (``_busy_reason``), which the autoscaler then reports as the reason
            # it stays.
            "idle": not (self.leases or self.lease_queue.pending or self.bundles)})
        self._reported_store_used = self.store.used_bytes
        self._reported_demand = len(self.lease_queue.pending)

    async def _report_periodically(self) -> None:
        """Object store usage changes without leases changing: report it, at most every
        second, when it did change (an idle node sends nothing)."""
        while True:
            await asyncio.sleep(1.0)
            if self.store.used_bytes != self._reported_store_used:
                self._report_resources()

    def job_finished(self, conn: Connection, msg: dict) -> None:
        self._log_subscribers.pop(msg["job_id"], None)
        for worker in self.pool.workers.values():  # nobody holds that job's refs any more
            worker.owner_jobs.discard(msg["job_id"])

    # -- objects --

    def create_object(self, conn: Connection, msg: list) -> int:
        object_id, size_bytes, owner_address = msg
        return self.store.create(object_id, size_bytes, owner=owner_address)

    def seal_object(self, conn: Connection, object_id: bytes) -> None:
        self.store.seal(object_id)

    def pin_objects(self, conn: Connection, object_ids: list[bytes]) -> list:
        """Hold objects for a reader; ``None`` for one this node does not have."""
        out = []
        pins = self._pins.setdefault(conn, collections.Counter())
        for object_id in object_ids:
            if not self.store.contains(object_id):
                out.append(None)
                continue
            out.append(self.store.pin(object_id))
            pins[object_id] += 1
        return out

    def unpin_objects(self, conn: Connection, object_ids: list[bytes]) -> None:
        pins = self._pins.get(conn)
        for object_id in object_ids:
            if pins is not None and pins[object_id] > 0:
                pins[object_id] -= 1
                if not pins[object_id]:
                    del pins[object_id]
                self.store.unpin(object_id)

    def free_objects(self, conn: Connection, object_ids: list[bytes]) -> None:
        for object_id in object_ids:
            self.store.free(object_id)

    def ping(self, conn: Connection, _msg) -> str:
        return "pong"

    async def pull_object(self, conn: Connection, msg: list) -> bool:
        """Copy an object from the node at ``source_address`` into this node's arena."""
        object_id, source_address, size_bytes = msg
        if not self.store.contains_sealed(object_id) and source_address not in self.node_addresses:
            # Its node is dead: nothing to pull from. A copy a worker here is still writing
            # (a task run again to rebuild it) is no answer: the owner learns of it once it
            # is written, and the reader that recovers the object waits for that.
            raise ObjectLostError(object_id.hex())
        return await self.transfer.pull(object_id, source_address, size_bytes)

    async def adopt_object(self, conn: Connection, msg: list) -> bool:
        """Take over an object's primary copy from a draining node (``node/draining.py``);
        refused while this node drains itself (the copy would leave with it)."""
        object_id, source_address, size_bytes, owner_address = msg
        had_copy = self.store.contains_sealed(object_id)
        try:
            self._refuse_if_draining()
            await self.transfer.pull(object_id, source_address, size_bytes)
            self._refuse_if_draining()  # it may have begun to drain during the pull
            self.store.make_primary(object_id, owner_address)
        except BaseException:
            if not had_copy:  # undo this pull only: a copy it had before stays
                self.store.free(object_id)
            raise
        return True

    def _refuse_if_draining(self) -> None:
        if self._drain is not None:
            raise ValueError(f"node {self.node_id.hex()} is draining: it takes no objects")

    async def drain(self, conn: Connection, msg: dict) -> dict:
        """The control store's ``drain_node``: take no more work and move every primary
        object to other nodes within ``deadline_s`` (``node/draining.py``). For the
        autoscaler's ``DRAIN_NODE_REASON_IDLE_TERMINATION`` only while idle; for
        ``DRAIN_NODE_REASON_PREEMPTION`` (the machine is going away) at once, running work
        going on. Returns ``is_accepted`` and, if not, ``rejection_reason_message``; a drain
        that cannot move an object is given up (the node takes work again). ``drain_state``
        is the node's drain after the call (``_drain_info``), for the control store."""
        # Asked again while it drains (for preemption, with its work still running), an
        # idle termination is still refused while that work runs.
        reason = None if msg["reason"] == DRAIN_PREEMPTION else self._busy_reason()
        if reason is not None:
            reply = {"is_accepted": False, "rejection_reason_message": reason}
        else:
            if self._drain is None:
                self.lease_queue.leaving = True
                self._drain_reason = msg.get("reason_message") or msg["reason"]
                self._drain_epoch += 1
                self._drain = self._spawn(self._move_objects(msg["deadline_s"]))
                self._drain.add_done_callback(self._drain_ended)
            # A given-up drain has already been ended by _drain_ended, which runs first.
            reply = dict(await asyncio.shield(self._drain))
        return dict(reply, drain_state=self._drain_info())

    def _busy_reason(self) -> str | None:
        """Why this node may not be drained for idleness (it would lose work or objects), or
        None."""
        return draining.busy_reason(
            leases=len(self.leases), waiting=len(self.lease_queue.pending),
            bundles=len(self.bundles), drivers=len(self._drivers),
            owners=sum(1 for w in self.pool.workers.values()
                       if w.owns_objects and w.state != DEAD))

    async def _move_objects(self, deadline_s: float) -> dict:
        def targets() -> list[dict]:  # the nodes taking work now, largest store first
            return sorted((dict(node, node_id=node_id) for node_id, node in self.view.items()
                           if node_id != self.node_id),
                          key=lambda node: -node["total"].get("object_store_memory", 0.0))

        local_owners = {w.address for w in self.pool.workers.values() if w.address}
        try:
            moved, moved_bytes = await asyncio.wait_for(
                draining.move_objects(
                    self.store, targets, self._peer, self.server.address, local_owners,
                    lambda: {address.rpartition(":")[0] for address in self.node_addresses},
                    self.cfg.drain_owner_timeout_s),
                deadline_s)
        except (draining.DrainFailed, asyncio.TimeoutError) as exc:
            why = str(exc) or f"moving its objects took longer than {deadline_s:.0f} s"
            logger.warning("drain given up: %s", why)
            return {"is_accepted": False, "rejection_reason_message": why}
        logger.info("drained: moved %d objects (%d bytes) to other nodes", moved, moved_bytes)
        return {"is_accepted": True, "objects_moved": moved, "bytes_moved": moved_bytes}

    def _drain_ended(self, task: asyncio.Task) -> None:
        """A drain that failed gives the node back to the cluster. Either way the control
        store is told (it may have restarted since it asked)."""
        if self._closing:
            return
        self._drain_epoch += 1
        if task.cancelled() or task.exception() is not None or not task.result()["is_accepted"]:
            self._drain = None
            self.lease_queue.leaving = False
            self._dispatch()
        if self.gcs is not None and not self.gcs.is_closed:
            self.gcs.notify("drain_state", {"node_id": self.node_id, "state": self._drain_info()})

    def read_object_chunk(self, conn: Connection, msg: list) -> RawReply:
        return self.transfer.read_chunk(*msg)

    async def _peer(self, address: str, timeout_s: float = 30.0) -> Connection:
        """A connection to another node manager (or a core worker), opened once."""
        conn = self._peers.get(address)
        if conn is None or conn.is_closed:
            conn = await connect(address, token=self.options.token, handlers=self._handlers(),
                                 info={"role": "node"}, timeout_s=timeout_s)
            self._peers[address] = conn
        return conn

    # -- logs and stats --

    def subscribe_logs(self, conn: Connection, msg: dict) -> None:
        self._log_subscribers.setdefault(msg["job_id"], set()).add(conn)

    def _send_logs(self, job_id: int, payload: dict) -> None:
        for conn in self._log_subscribers.get(job_id, ()):
            conn.notify("log_lines", payload)

    def get_workers(self, conn: Connection, _msg) -> list[dict]:
        """This node's worker processes, for the state API."""
        return [{"worker_id": w.worker_id, "pid": w.pid, "state": w.state, "job_id": w.job_id,
                 "address": w.address} for w in self.pool.workers.values() if w.state != DEAD]

    async def get_object_refs(self, conn: Connection, _msg) -> list[dict]:
        """The object refs of every driver and worker on this node (asked now)."""
        processes = list(self._drivers) + [w.conn for w in self.pool.workers.values()
                                           if w.conn is not None and w.state != DEAD]
        replies = await asyncio.gather(
            *(p.call_with_timeout("get_object_refs", None, QUERY_TIMEOUT_S) for p in processes),
            return_exceptions=True)
        return [dict(reply, node_id=self.node_id) for reply in replies
                if not isinstance(reply, BaseException)]

    # -- metrics --

    def report_metrics(self, conn: Connection, msg: dict) -> None:
        """A driver's or worker's application metrics (``common/metric_records.py``)."""
        process = msg["worker_id"]
        if process not in self.app_metrics.by_process:
            conn.close_callbacks.append(lambda _c: self.app_metrics.process_gone(process))
        self.app_metrics.report(process, msg["metrics"])

    async def metrics_snapshot(self) -> dict:
        """What the metrics endpoint exports of this node (``node/metric_families.py``),
        read at once; on the head, the control store's figures too."""
        workers = collections.Counter(h.state for h in self.pool.workers.values()
                                      if h.state != DEAD)
        pids = {os.getpid(): "raylet"}
        if self.pool.zygote_pid:
            pids[self.pool.zygote_pid] = "raggio::zygote"
        for handle in self.pool.workers.values():
            if handle.pid and handle.state != DEAD:
                pids[handle.pid] = "raggio::IDLE" if handle.state == IDLE else "raggio::worker"
        snapshot = {
            "resources_total": dict(self.resources.total),
            "resources_available": dict(self.resources.available),
            "store": self.store.statistics(), "lease_queue": len(self.lease_queue.pending),
            "workers": dict(workers), "pids": pids, "app": self.app_metrics.export(),
        }
        if self.options.is_head and self.gcs is not None and not self.gcs.is_closed:
            try:
                snapshot["control_store"] = await self.gcs.call_with_timeout(
                    "metrics_snapshot", None, QUERY_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 (the node's own figures still count)
                logger.warning("the control store's metrics are missing from this scrape: %r",
                               exc)
        return snapshot

    def get_node_stats(self, conn: Connection, _msg) -> dict:
        return {
            "node_id": self.node_id, "resources_total": self.resources.total,
            "resources_available": self.resources.available,
            "object_store": self.store.statistics(),
            "num_workers": len(self.pool.workers),
            "pending_leases": [{"resources": r.resources, "for_actor": r.for_actor}
                               for r in self.lease_queue.pending],
            "time": time.time(),
        }
