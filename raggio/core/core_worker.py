"""The core worker: the runtime inside every driver and worker process.

Owns this process's connections (control store, local node manager, peers),
its RPC server (owners answer ``get_object``; workers also take tasks), its
object table, and the sync facade the public API calls: ``get``, ``put``,
``wait``, task and actor submission. The event loop runs on a background
thread; the user's thread blocks on futures through ``run_sync``.
Task submission lives in ``task_submitter``/``actor_submitter``, execution in
``task_executor``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import logging
import os
import sys
import threading
import time
from typing import Any

from raggio.config import Config
from raggio.core import app_metrics
from raggio.core.actor_handles import ActorHandleCounts, live_actor_ids
from raggio.core.actor_submitter import ActorSubmitter
from raggio.core.driver_output import DriverOutput
from raggio.core.gcs_client import GcsClient
from raggio.core.generators import GeneratorStreams
from raggio.common.ids import IdMaker, creation_task_id, object_id_bytes
from raggio.core.object_ref import ObjectRef
from raggio.core.object_table import READY, ObjectTable, ReadyCounter
from raggio.core.serialization import deserialize_inline, error_location, serialize
from raggio.core.reconstruction import MAX_RECOVERIES_PER_GET, Recovery
from raggio.core.runtime_env_upload import RuntimeEnvUploader
from raggio.core.shared_memory import Arena
from raggio.core.task_events import TaskEvents
from raggio.core.task_spec import user_call_site
from raggio.core.task_executor import TaskExecutor
from raggio.core.task_submitter import TaskSubmitter
from raggio.exceptions import (GetTimeoutError, ObjectLostError, OwnerDiedError,
                               RaySystemError, RayTaskError, RpcError)
from raggio.rpc import Connection, Server, connect

logger = logging.getLogger(__name__)

DRIVER, WORKER = "driver", "worker"
#: A get of at least this many refs pauses the garbage collector while it unpickles.
GC_PAUSE_MIN_REFS = 64


def tune_gc(gen0_threshold: int) -> None:
    """Collect the youngest generation less often than Python's default.

    Every call makes a few short-lived containers (spec, refs, futures, its task-history
    record), so with the default threshold of 700 allocations a process submitting thousands
    of calls collects hundreds of times a second, and the calls in flight are traversed again
    at each older collection: measured here, a quarter of a driver's time in a burst of actor
    calls. A threshold set by the user (anything but 700) is left alone."""
    threshold = gc.get_threshold()
    if gen0_threshold and threshold[0] == 700:
        gc.set_threshold(gen0_threshold, *threshold[1:])


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


class CoreWorker:
    """See the module docstring."""

    #: False here; True for a ray:// client's stand-in (``client/client_core.py``), to
    #: which remote functions, actor classes and handles hand their calls.
    is_client = False

    def __init__(self, *, mode: str, cfg: Config, gcs_address: str, node_address: str | None,
                 token: str, worker_id: bytes, node_ip: str = "127.0.0.1",
                 namespace: str | None = None, runtime_env: dict | None = None,
                 log_to_driver: bool = True, job_info: dict | None = None):
        self.mode = mode
        self.cfg = cfg
        self.gcs_address = gcs_address
        self.node_address = node_address
        self.token = token
        self.worker_id = worker_id
        self.node_ip = node_ip
        self.namespace = namespace
        #: Prepares the runtime envs of what this process submits; its ``job_env`` is the
        #: default (the driver's init(runtime_env=...), a worker's own env), uploaded at start.
        self.runtime_envs = RuntimeEnvUploader(
            lambda op, payload: self.request("gcs", op, payload), runtime_env)
        #: More fields of a driver's job record (JobConfig's metadata, default_actor_lifetime).
        self.job_info = job_info or {}
        self.log_to_driver = log_to_driver
        self.job_id: int | None = None
        #: The cluster's dashboard ("http://HOST:PORT"), or None (a driver's: set by init()).
        self.dashboard_url: str | None = None
        self.node_id: bytes = b""
        self.node_info: dict = {}
        self.ids = IdMaker()
        self.loop = new_event_loop()
        self.address = ""
        self.gcs: GcsClient | None = None
        self.node: Connection | None = None
        self.refs: ObjectTable | None = None
        self.arena: Arena | None = None
        self.server: Server | None = None
        # The parts, built here and nowhere else; none does I/O until the loop runs.
        self.task_events = TaskEvents(self)
        self.actor_handles = ActorHandleCounts(self)
        self.recovery = Recovery(self)
        self.submitter = TaskSubmitter(self)
        self.actor_submitter = ActorSubmitter(self)
        self.generators = GeneratorStreams(self)  #: this owner's generator streams
        #: Runs the tasks pushed here (a worker's only).
        self.executor = TaskExecutor(self) if mode == WORKER else None
        #: Prints the job's workers' output (a driver's, unless log_to_driver=False).
        self.driver_output = DriverOutput(self) if mode == DRIVER and log_to_driver else None
        self.handlers = self._handler_table()
        self.current = threading.local()  #: task_id, actor_id, gpu_ids of the running task
        #: task id -> (spec, the user's callable) of each task running here (a worker's)
        self.running_tasks: dict[bytes, tuple] = {}
        #: Whether other processes may hold refs to objects this process owns (so it must
        #: outlive them: its node never gives it an actor, whose end would end the process).
        self.owns_escaped = False
        self._peers: dict[str, asyncio.Future] = {}
        self._fetches: dict[bytes, asyncio.Future] = {}
        self._thread = threading.Thread(target=self._run_loop, name="raggio-core", daemon=True)
        self._closed = False
        self._tasks: set[asyncio.Task] = set()

    # -- lifecycle --

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def _handler_table(self) -> dict:
        """Every request and notification this process answers, on any of its connections
        (its own server's, and those it dialled: the control store, its node, peers)."""
        table = {
            # owner: the objects and tasks this process owns
            "get_object": self.get_object,
            "add_object_location": self.add_object_location,
            "object_moved": self.object_moved,
            "get_object_refs": self.get_object_refs,
            "cancel_owned_task": self.cancel_owned_task,
            "reconstruct_object": self.recovery.reconstruct_object,
            "generator_item": self.generators.generator_item,
            # from its node manager and the control store
            "infeasible_task": self.submitter.infeasible_task,
            "worker_oom_killed": self.submitter.worker_oom_killed,
            "node_dead": self.recovery.node_dead,
        }
        if self.executor is not None:
            table.update({
                "push_task": self.executor.push_task,
                "create_actor": self.executor.create_actor,
                "cancel_task": self.executor.cancel_task,
                "exit_worker": self.executor.exit_worker,
                "generator_consumed": self.executor.generator_consumed,
            })
        if self.driver_output is not None:
            table["log_lines"] = self.driver_output.log_lines
        return table

    def start(self, timeout_s: float) -> None:
        tune_gc(self.cfg.gc_gen0_threshold)
        self._thread.start()
        self.run_sync(self._start(), timeout_s)

    async def _start(self) -> None:
        self.server = Server(self.handlers, token=self.token, listen=f"{self.node_ip}:0",
                             info={"role": self.mode})
        self.address = await self.server.start()
        self.refs = ObjectTable(self.address, self.loop, self._free_objects)
        timeout_s = self.cfg.connect_timeout_s
        self.gcs = GcsClient(self.gcs_address, token=self.token, handlers=self.handlers,
                             info={"role": self.mode},
                             reconnect_timeout_s=self.cfg.gcs_reconnect_timeout_s)
        await self.gcs.connect(timeout_s)
        if self.node_address is None:
            self.node_address = await self._find_local_node()
        self.node = await connect(self.node_address, token=self.token, handlers=self.handlers,
                                  info={"role": self.mode}, timeout_s=timeout_s)
        if self.mode == DRIVER:
            self.node_info = await self.node.call("register_client", {})
            job_env = self.runtime_envs.job_env
            if job_env:  # packing reads the files: off the loop, which the uploads need
                job_env = await asyncio.to_thread(self.runtime_envs.set_job_env, job_env)
            job = await self.gcs.call("register_job", {
                "driver_address": self.address, "driver_pid": os.getpid(),
                "namespace": self.namespace, "runtime_env": job_env,
                "entrypoint": " ".join(sys.argv), **self.job_info})
            self.job_id = job["job_id"]
            if self.log_to_driver:
                self.node.notify("subscribe_logs", {"job_id": self.job_id})
        else:
            self.node_info = await self.node.call("register_worker", {
                "worker_id": self.worker_id, "address": self.address, "pid": os.getpid()})
        self.node_id = self.node_info["node_id"]
        self.gcs.notify("subscribe_node_events")
        self.gcs.on_reconnect.append(self._rejoin_control_store)
        self.arena = Arena(self.node_info["arena_path"])
        self.task_events.start()
        if self.cfg.enable_metrics_collection:
            self.loop.call_later(self.cfg.metrics_report_period_s, self._metrics_tick)

    def _send_metrics(self) -> None:
        """Send the node this process's application metrics that changed (loop thread)."""
        changes = app_metrics.RECORDER.take_changes()
        if changes and self.node is not None:
            self.node.notify("report_metrics", {"worker_id": self.worker_id,
                                                "metrics": changes})

    def _metrics_tick(self) -> None:
        self._send_metrics()
        if not self._closed:
            self.loop.call_later(self.cfg.metrics_report_period_s, self._metrics_tick)

    async def _rejoin_control_store(self) -> None:
        """After the control store restarted: re-attach our job, hear node deaths again."""
        if self.mode == DRIVER:
            await self.gcs.call("reattach_job", {"job_id": self.job_id})
        self.gcs.notify("subscribe_node_events")
        self.actor_handles.resend()

    async def _find_local_node(self) -> str:
        """The node manager on this machine that a joining driver uses (the head's first)."""
        nodes = await self.gcs.call("get_nodes", None)
        local = [n for n in nodes if n["state"] == "ALIVE" and n["node_ip"] == self.node_ip]
        if not local:
            ips = sorted({n["node_ip"] for n in nodes if n["state"] == "ALIVE"})
            raise RaySystemError(
                f"The cluster at {self.gcs_address} has no node on this machine ({self.node_ip}); "
                f"its nodes run on {ips}. Start one here with `raggio start "
                f"--address={self.gcs_address}`, or pass _node_ip_address if this machine has "
                "another address.")
        local.sort(key=lambda n: not n["is_head"])
        return local[0]["address"]

    def note_owns_escaped(self) -> None:
        """A ref to an object we own left this process (any thread; once per job: the task
        executor clears ``owns_escaped`` when it starts work for another job). The node
        then keeps this worker out of actors, and out of drains until that job ends."""
        self.owns_escaped = True
        if self.mode == WORKER and not self._closed:
            self.call_soon(self.node.notify, "worker_owns_objects",
                           {"worker_id": self.worker_id, "job_id": self.job_id})

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.run_sync(self._close(), 5.0)
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._close_loop()
        if self.arena is not None:
            self.arena.close()

    def _close_loop(self) -> None:
        """Cancel what is still pending on the stopped loop (a ``get`` interrupted, say), let
        it unwind, then close the loop: its selector, wake-up pipe and eventfd are file
        descriptors, 8 per init() until it is closed."""
        pending = [task for task in asyncio.all_tasks(self.loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            try:
                self.loop.run_until_complete(asyncio.wait(pending, timeout=1.0))
            except Exception:  # noqa: BLE001 (closing anyway)
                logger.debug("tasks left at shutdown did not unwind", exc_info=True)
        self.loop.close()

    async def _close(self) -> None:
        self.task_events.flush()
        self._send_metrics()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=1.0) if tasks else None
        if self.server is not None:
            await self.server.close()
        for conn in (self.node, self.gcs):
            if conn is not None:
                conn.close()
        for fut in self._peers.values():
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                fut.result().close()

    def spawn(self, coro) -> asyncio.Task | None:
        """Run a coroutine on the loop as a task this worker owns (loop thread only).

        After shutdown began nothing new starts: connections closing then must not set off
        reconnects or retries."""
        if self._closed:
            coro.close()
            return None
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- bridging the user's thread to the loop --

    def run_sync(self, coro, timeout_s: float | None = None) -> Any:
        """Run ``coro`` on the loop and wait for it; Ctrl-C cancels it."""
        if threading.current_thread() is self._thread:
            raise RaySystemError("run_sync called on the event loop thread")
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout_s)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise
        except KeyboardInterrupt:
            fut.cancel()
            raise

    def request(self, conn_name: str, op: str, payload: Any = None,
                timeout_s: float | None = None) -> Any:
        """Call ``op`` on the control store ("gcs") or node manager ("node"), blocking."""
        timeout_s = self.cfg.rpc_timeout_s if timeout_s is None else timeout_s
        return self.run_sync(self._request(conn_name, op, payload, timeout_s))

    async def _request(self, conn_name: str, op: str, payload: Any, timeout_s: float) -> Any:
        return await getattr(self, conn_name).call_with_timeout(op, payload, timeout_s)

    def call_soon(self, fn, *args) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    async def peer(self, address: str) -> Connection:
        """A connection to another core worker, opened once and shared."""
        fut = self._peers.get(address)
        if fut is None or (fut.done() and (fut.cancelled() or fut.exception() is not None
                                           or fut.result().is_closed)):
            fut = self.loop.create_future()
            self._peers[address] = fut
            try:
                # Its address tells a worker running our tasks who owns what they return.
                conn = await connect(address, token=self.token, handlers=self.handlers,
                                     info={"role": self.mode, "address": self.address},
                                     timeout_s=self.cfg.peer_connect_timeout_s)
            except BaseException as exc:
                fut.set_exception(exc)
                fut.exception()
                del self._peers[address]
                raise
            fut.set_result(conn)
        return await asyncio.shield(fut)

    async def cancel(self, ref: ObjectRef, force: bool, recursive: bool) -> None:
        """Cancel the task that makes ``ref``: here if this process submitted it, else at
        its owner (as Ray does). A finished task is left alone.

        Raises:
            ValueError: ``force`` for an actor call submitted here.
        """
        task_id = ref._id[:24]
        if ref._owner == self.address:
            self.cancel_owned_task(None, [task_id, force, recursive])
            return
        try:
            (await self.peer(ref._owner)).notify("cancel_owned_task", [task_id, force, recursive])
        except RpcError:
            pass  # its owner is gone, and the task's results with it

    def cancel_owned_task(self, conn, msg: list) -> None:
        task_id, force, recursive = msg
        if not self.actor_submitter.cancel(task_id, force, recursive):
            self.submitter.cancel(task_id, force, recursive)

    def cancel_children(self, parent_task_id: bytes, force: bool) -> None:
        """Cancel the tasks and actor calls that a task submitted (loop thread)."""
        self.submitter.cancel_children(parent_task_id, force)
        self.actor_submitter.cancel_children(parent_task_id)

    def placement_group_ready_ref(self, placement_group) -> ObjectRef:
        """An owned ref that resolves to ``placement_group`` once it is reserved."""
        object_id = self.ids.put_id_bytes()
        self.refs.create_owned(object_id)
        ref = ObjectRef(object_id, self.address)
        self.call_soon(self.spawn, self._resolve_when_placed(object_id, placement_group))
        return ref

    async def _resolve_when_placed(self, object_id: bytes, placement_group) -> None:
        while True:
            info = await self.gcs.call("wait_placement_group", {
                "pg_id": placement_group.id.binary(), "timeout_s": 60.0})
            if info is None or info["state"] == "REMOVED":
                location = error_location(RaySystemError(
                    f"Placement group {placement_group.id.hex()} was removed before it was "
                    "ready."))
                break
            if info["state"] == "CREATED":
                location = {"inline": serialize(placement_group).to_inline(), "is_error": False}
                break
        self.refs.set_ready(object_id, location)

    # -- objects: put --

    def put(self, value: Any, *, _owner_address: str | None = None) -> ObjectRef:
        if isinstance(value, ObjectRef):
            raise TypeError(
                "Calling put on an ObjectRef is not allowed; pass the ref itself around instead.")
        return self.put_serialized(serialize(value))

    def put_serialized(self, serialized) -> ObjectRef:
        object_id = self.ids.put_id_bytes()
        entry = self.refs.create_ready(object_id,
                                       self.store_serialized(object_id, serialized, self.address))
        if self.cfg.record_ref_creation_sites:
            entry.call_site = user_call_site("put object")
        return ObjectRef(object_id, self.address)

    def store_serialized(self, object_id: bytes, serialized, owner_address: str) -> dict:
        """Keep a serialized value inline if small, else write it to the arena (the node
        keeps ``owner_address``, to tell the owner if it moves the object)."""
        if serialized.size_bytes < self.cfg.max_inline_bytes:
            return {"inline": serialized.to_inline(), "is_error": False}
        header, offsets, size_bytes = serialized.layout()
        offset = self.request("node", "create_object", [object_id, size_bytes, owner_address])
        self.arena.write(offset, serialized, header, offsets, size_bytes)
        self.call_soon(self.node.notify, "seal_object", object_id)
        return {"node_id": self.node_id, "node_address": self.node_info["address"],
                "size_bytes": size_bytes, "is_error": False}

    def _free_objects(self, freed: list) -> None:
        """Tell every node holding a copy of these owned objects to drop it (loop thread)."""
        by_node: dict[str, list[bytes]] = {}
        for object_id, entry in freed:
            if entry.lineage is not None:
                self.recovery.lineage_dropped(entry.lineage)
            if entry.owned and entry.node_id is not None:
                for address in {entry.node_address} | (entry.copies or set()):
                    by_node.setdefault(address, []).append(object_id)
        for address, object_ids in by_node.items():
            if address == self.node_info.get("address") and self.node is not None:
                self.node.notify("free_objects", object_ids)
            elif not self._closed:
                self.spawn(self._free_remote(address, object_ids))

    async def _free_remote(self, address: str, object_ids: list[bytes]) -> None:
        try:
            (await self.peer(address)).notify("free_objects", object_ids)
        except RpcError:
            pass  # that node is gone, and its copies with it

    def add_object_location(self, conn: Connection, msg: list) -> None:
        """Owner side: a reader copied one of our objects to another node."""
        object_id, node_address = msg
        entry = self.refs.entries.get(object_id)
        if entry is not None and entry.owned:
            if entry.copies is None:
                entry.copies = set()
            entry.copies.add(node_address)

    def object_moved(self, conn: Connection, msg: list) -> bool:
        """Owner side: a node leaving the cluster moved the primary copy of one of our
        objects to another node. False if we no longer hold the object (the node that took
        it frees it then)."""
        object_id, node_id, node_address = msg
        entry = self.refs.entries.get(object_id)
        if entry is None or not entry.owned or entry.state != READY or entry.inline is not None:
            return False
        entry.node_id, entry.node_address = node_id, node_address
        if entry.copies:
            entry.copies.discard(node_address)
        return True

    # -- objects: get --

    def get(self, refs: list[ObjectRef], timeout_s: float | None) -> list[Any]:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        entries = self.refs.entries
        missing = [ref for ref in refs
                   if (e := entries.get(ref._id)) is None or e.state != READY]
        # Wait on all of them, not only the missing: one already failed ends the wait too.
        if missing and self._wait_fetched(refs, len(refs), timeout_s, stop_on_error=True):
            self._raise_first_error(refs)
        if len(refs) < GC_PAUSE_MIN_REFS or not gc.isenabled():
            return [self._materialize(ref, deadline) for ref in refs]
        # Unpickling thousands of values makes thousands of containers, and each collection
        # they trigger walks all those made so far: 10,000 lists of 10,000 ints unpickle in
        # ~2.8 s with the collector paused, ~4.8 s with it running.
        gc.disable()
        try:
            return [self._materialize(ref, deadline) for ref in refs]
        finally:
            gc.enable()

    def _raise_first_error(self, refs: list[ObjectRef]) -> None:
        """Raise the error of the first failed ref (a ``get`` that one of them ended early)."""
        entries = self.refs.entries
        for ref in refs:
            entry = entries.get(ref._id)
            if entry is not None and entry.state == READY and entry.is_error:
                self._materialize(ref)

    @contextlib.contextmanager
    def _blocked(self):
        """While a task waits on other tasks, give its CPU back to its node (as Ray does), so
        that the tasks it waits for can run."""
        blocked = self.mode == WORKER and threading.current_thread() is threading.main_thread()
        if blocked:
            self.call_soon(self.node.notify, "worker_blocked", {"worker_id": self.worker_id})
        try:
            yield
        finally:
            if blocked:
                self.call_soon(self.node.notify, "worker_unblocked", {"worker_id": self.worker_id})

    def _wait_fetched(self, refs: list[ObjectRef], num_returns: int, timeout_s: float | None,
                      stop_on_error: bool = False) -> bool:
        """Wait for ``num_returns`` of ``refs`` (see ``_fetch_many``); True if an error
        value ended the wait first (only with ``stop_on_error``)."""
        with self._blocked():
            fut = asyncio.run_coroutine_threadsafe(
                self._fetch_many(refs, num_returns, stop_on_error), self.loop)
            try:
                return fut.result(timeout_s)
            except concurrent.futures.TimeoutError:
                fut.cancel()
                raise GetTimeoutError(
                    f"Get timed out: {len(refs)} object(s) not ready after {timeout_s} s "
                    f"(first: {refs[0].hex()}).") from None
            except KeyboardInterrupt:
                fut.cancel()
                raise

    async def _fetch_many(self, refs: list[ObjectRef], num_returns: int,
                          stop_on_error: bool = False) -> bool:
        """Return once ``num_returns`` of ``refs`` are known here (value or location), or
        with ``stop_on_error`` once one of them is an error; True in the latter case.

        One counter waits on every owned ref's table entry (no future per ref: ``get`` and
        ``wait`` on thousands of refs are hot); a borrowed ref is fetched from its owner.
        """
        entries = self.refs.entries
        pending_owned, borrowed = [], []
        ready = 0
        for ref in refs:
            entry = entries.get(ref._id)
            if entry is not None and entry.state == READY:
                if stop_on_error and entry.is_error:
                    return True
                ready += 1
            elif entry is not None and entry.owned:
                pending_owned.append(ref._id)
            else:
                borrowed.append(ref)
        if ready >= num_returns:
            return False
        counter = ReadyCounter(num_returns - ready, self.loop, stop_on_error)
        self.refs.add_waiter(pending_owned, counter)
        fetches = [asyncio.ensure_future(self.fetch(ref)) for ref in borrowed]
        for fetch in fetches:
            fetch.add_done_callback(counter.fetched)
        try:
            return await counter.future
        finally:
            counter.cancel()
            for fetch in fetches:
                fetch.cancel()

    async def fetch(self, ref: ObjectRef):
        """Wait until this process knows the object's value or location; return its entry."""
        entry = self.refs.entries.get(ref._id)
        if entry is not None and entry.state == READY:
            return entry
        if entry is None or entry.owned:
            if entry is None:
                if ref._owner == self.address:
                    raise ObjectLostError(ref.hex())
                self.refs.add_local(ref._id, ref._owner)
            return await self.refs.wait_ready(ref._id)
        inflight = self._fetches.get(ref._id)
        if inflight is None:
            inflight = self.loop.create_task(self._fetch_from_owner(ref))
            self._fetches[ref._id] = inflight
            inflight.add_done_callback(lambda _f: self._fetches.pop(ref._id, None))
        await asyncio.shield(inflight)
        return self.refs.entries.get(ref._id)

    async def _fetch_from_owner(self, ref: ObjectRef) -> None:
        try:
            conn = await self.peer(ref._owner)
            location = await conn.call("get_object", ref._id)
        except RpcError as exc:
            location = error_location(OwnerDiedError(ref.hex()))
            logger.debug("owner of %s unreachable: %s", ref.hex(), exc)
        self.refs.set_ready(ref._id, location)

    def get_object_refs(self, conn: Connection, _msg) -> dict:
        """This process's object refs, for the state API (``raggio list objects``)."""
        refs = []
        for object_id, entry in list(self.refs.entries.items()):
            size = (sum(len(part) for part in entry.inline if isinstance(part, bytes))
                    if entry.inline is not None else entry.size_bytes)
            refs.append({"object_id": object_id, "size": size, "ready": entry.state == READY,
                         "owned": entry.owned, "local_refs": entry.local_refs,
                         "task_refs": entry.task_refs, "escaped": entry.escaped,
                         "node_id": entry.node_id, "call_site": entry.call_site})
        for actor_id in live_actor_ids():
            refs.append({"object_id": object_id_bytes(creation_task_id(actor_id), 0),
                         "size": 0, "ready": True, "owned": False, "local_refs": 0,
                         "task_refs": 0, "escaped": False, "node_id": None,
                         "call_site": None, "actor_handle": True})
        return {"pid": os.getpid(), "ip": self.node_ip, "type": self.mode.upper(),
                "refs": refs}

    async def get_object(self, conn: Connection, object_id: bytes) -> dict:
        """Owner side: answer a borrower once the object is ready."""
        entry = self.refs.entries.get(object_id)
        if entry is None:
            return error_location(ObjectLostError(object_id.hex()))
        if entry.state != READY:
            entry = await self.refs.wait_ready(object_id)
            if entry is None:
                return error_location(ObjectLostError(object_id.hex()))
        return entry.location()

    def _materialize(self, ref: ObjectRef, deadline: float | None = None) -> Any:
        entry = self.refs.entries.get(ref._id)
        if entry is None:
            raise ObjectLostError(ref.hex())
        if entry.inline is not None:
            value = deserialize_inline(entry.inline)
        else:
            value = self._read_from_arena(ref, entry, deadline)
        if entry.is_error:
            if isinstance(value, RayTaskError):
                raise value.as_instanceof_cause()
            raise value
        return value

    def _read_from_arena(self, ref: ObjectRef, entry, deadline: float | None) -> Any:
        """Map the object from this node's arena, pulling or rebuilding it as needed (a
        rebuild ends by ``deadline``, a ``time.monotonic()`` value, if given)."""
        for _ in range(MAX_RECOVERIES_PER_GET):
            try:
                if entry.node_id != self.node_id:
                    self.run_sync(self._pull(ref, entry))
                pinned = self.request("node", "pin_objects", [ref._id])
                if pinned[0] is None:
                    raise ObjectLostError(ref.hex())
                break
            except ObjectLostError:
                timeout_s = None if deadline is None else max(0.0, deadline - time.monotonic())
                with self._blocked():
                    try:
                        self.run_sync(self.recovery.recover(ref, entry.node_id), timeout_s)
                    except concurrent.futures.TimeoutError:
                        raise GetTimeoutError(
                            f"Get timed out: {ref.hex()} was lost and is being rebuilt; it "
                            "was not ready in time.") from None
                entry = self.refs.entries[ref._id]
                if entry.inline is not None or entry.is_error:
                    return deserialize_inline(entry.inline)  # the rebuild failed, or is small
        else:
            raise ObjectLostError(ref.hex())
        offset, size_bytes = pinned[0]
        object_id, node = ref._id, self.node
        return self.arena.read(offset, size_bytes,
                               lambda: self._unpin_later(node, object_id))

    async def _pull(self, ref: ObjectRef, entry) -> None:
        """Have this node copy the object from the node that holds it; tell the owner."""
        try:
            await self.node.call("pull_object", [ref._id, entry.node_address, entry.size_bytes])
        except RpcError as exc:
            raise ObjectLostError(ref.hex()) from exc
        here = self.node_info["address"]
        if ref._owner == self.address:
            self.add_object_location(None, [ref._id, here])
        else:
            (await self.peer(ref._owner)).notify("add_object_location", [ref._id, here])

    def _unpin_later(self, node: Connection, object_id: bytes) -> None:
        if not self._closed:
            try:
                self.loop.call_soon_threadsafe(node.notify, "unpin_objects", [object_id])
            except RuntimeError:
                pass

    def wait(self, refs: list[ObjectRef], num_returns: int, timeout_s: float | None,
             fetch_local: bool) -> tuple[list[ObjectRef], list[ObjectRef]]:
        ready, not_ready = self._split_ready(refs, num_returns)
        if len(ready) < num_returns and timeout_s != 0:
            fut = asyncio.run_coroutine_threadsafe(
                self._fetch_many(not_ready, num_returns - len(ready)), self.loop)
            try:
                fut.result(timeout_s)
            except concurrent.futures.TimeoutError:
                fut.cancel()
            ready, not_ready = self._split_ready(refs, num_returns)
        return ready, not_ready

    def _split_ready(self, refs: list[ObjectRef],
                     num_returns: int) -> tuple[list[ObjectRef], list[ObjectRef]]:
        """(the first `num_returns` ready refs, the rest), each in the order given. It stops
        looking at the `num_returns`-th ready ref: a loop draining a long list one `wait` at
        a time then costs a list copy per call, not a lookup per ref."""
        entries = self.refs.entries
        ready, not_ready = [], []
        for index, ref in enumerate(refs):
            entry = entries.get(ref._id)
            if entry is not None and entry.state == READY:
                ready.append(ref)
                if len(ready) == num_returns:
                    not_ready += refs[index + 1:]
                    break
            else:
                not_ready.append(ref)
        return ready, not_ready

    def get_future(self, ref: ObjectRef) -> concurrent.futures.Future:
        out: concurrent.futures.Future = concurrent.futures.Future()

        def done(fut: concurrent.futures.Future) -> None:
            if fut.cancelled():
                out.cancel()
                return
            exc = fut.exception()
            if exc is not None:
                out.set_exception(exc)
                return
            try:
                out.set_result(self._materialize(ref))
            except BaseException as err:
                out.set_exception(err)

        asyncio.run_coroutine_threadsafe(self.fetch(ref), self.loop).add_done_callback(done)
        return out

