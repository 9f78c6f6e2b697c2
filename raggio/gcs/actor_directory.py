"""The actor table: creating actors on workers, restarting them, killing them.

Owns every actor's record (spec, state, address, restarts, death cause) and
the named-actor index per namespace. Creation leases a worker from a node
manager, asks that worker to construct the instance, and publishes the
address to callers waiting in ``wait_actor``. A worker whose connection drops
takes its actor down; the actor restarts while ``max_restarts`` allows.
Called by the control store's RPC handlers.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import signal
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from raggio.common.ids import creation_task_id
from raggio.common.states import (ALIVE, DEAD, FAILED, FINISHED, PENDING_CREATION,
                                  PENDING_NODE_ASSIGNMENT, RESTARTING, RUNNING,
                                  SUBMITTED_TO_WORKER)
from raggio.common.task_records import task_info
from raggio.rpc import Connection

logger = logging.getLogger(__name__)


_PERSISTENT_FIELDS = ("state", "address", "worker_id", "node_id", "pid", "num_restarts",
                      "incarnation", "death_cause", "creation_error", "start_time", "end_time",
                      "killed", "lease_id", "events")

#: How long a restarted control store tries to reach a live actor's worker before calling
#: the actor lost.
ADOPT_TIMEOUT_S = 2.0
#: Stands for the connection of an actor whose worker could not be reached on adoption.
_LOST = object()

#: How long a dead actor's record waits for its process's exit code (it comes from the zygote
#: through the node manager, normally within milliseconds of the connection closing; on a
#: loaded 2-core machine it once took over a second, and the cause lacked it).
EXIT_CODE_WAIT_S = 5.0

OUT_OF_SCOPE_CAUSE = ("The actor is dead because all references to the actor were removed "
                      "(no process holds a handle to it; make it detached with "
                      "lifetime=\"detached\" to keep it).")
#: Tokens of pickled handles that arrived before the control store heard they were sent.
_EARLY_TOKENS_KEPT = 10_000


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


@dataclass
class ActorRecord:
    actor_id: bytes
    spec: dict  #: what the creator sent: class id, args, options, owner
    state: str = PENDING_CREATION
    address: str = ""
    worker_id: bytes = b""
    node_id: bytes = b""
    pid: int = 0
    num_restarts: int = 0
    incarnation: int = 0  #: bumps on every (re)start, so callers can wait for a newer one
    death_cause: str = ""
    creation_error: bytes | None = None  #: pickled exception raised by __init__
    start_time: float = field(default_factory=time.time)
    end_time: float = 0.0
    killed: bool = False
    node_death: str = ""  #: why the actor's node died, when it did
    exit_detail: str = ""  #: how its last worker process ended, once the zygote reaped it
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    worker_conn: Connection | None = None
    lease_id: int | None = None  #: the worker lease on ``node_id`` the actor runs under
    events: list = field(default_factory=list)  #: ``[state, time, node id]`` of each change
    #: Connections of the processes that hold a counted handle (see core/actor_handles.py).
    holders: set = field(default_factory=set)
    #: Token of a pickled handle on its way -> the connection of the process that sent it.
    transits: dict = field(default_factory=dict)
    #: False after a control-store restart until a holder speaks up: an actor is never
    #: ended for holders the restarted store has not heard of yet.
    holders_known: bool = True

    def persistent(self) -> dict:
        """What storage keeps of the record (no connections, no events)."""
        return {"actor_id": self.actor_id, "spec": self.spec,
                **{name: getattr(self, name) for name in _PERSISTENT_FIELDS}}

    def info(self) -> dict:
        return {
            "actor_id": self.actor_id, "state": self.state, "address": self.address,
            "worker_id": self.worker_id, "node_id": self.node_id, "pid": self.pid,
            "num_restarts": self.num_restarts, "incarnation": self.incarnation,
            "death_cause": self.death_cause, "creation_error": self.creation_error,
            "killed": self.killed,  # ended on purpose (kill, exit_actor, scope, owner)
            "name": self.spec.get("name") or "", "namespace": self.spec.get("namespace") or "",
            "class_name": self.spec["class_name"], "job_id": self.spec["job_id"],
            "is_detached": self.spec.get("lifetime") == "detached",
            "start_time": self.start_time, "end_time": self.end_time, "events": self.events,
            "required_resources": self.spec.get("resources") or {},
        }

    def creation_info(self) -> dict:
        """The task-history info of the actor's creation task (Ray's names)."""
        init = f"{self.spec['class_name']}.__init__"
        name = self.spec.get("name")
        return task_info(f"{name}:{init}" if name else init, init, "ACTOR_CREATION_TASK",
                         self.spec["job_id"], self.actor_id, self.spec["resources"])


class ActorDirectory:
    """See the module docstring."""

    def __init__(self, lease_worker: Callable[[dict], Awaitable[tuple]],
                 connect_worker: Callable[..., Awaitable[Connection]],
                 save: Callable[[ActorRecord], None] = lambda record: None,
                 node_conn: Callable[[bytes], Connection | None] = lambda node_id: None,
                 record_task: Callable[..., None] = lambda *args, **kwargs: None):
        self._node_conn = node_conn  #: the connection to a node, if it is connected
        self._lease_worker = lease_worker
        self._connect_worker = connect_worker
        self._save = save  #: writes a record through to the control store's storage
        #: (task id, attempt, state, info, extra): an event of an actor's creation task
        self._record_task = record_task
        self.actors: dict[bytes, ActorRecord] = {}
        self.named: dict[tuple[str, str], bytes] = {}
        #: Counts the records' changes (one added, a state change): the dashboard's pages
        #: refetch when it grows (``GcsServer.table_versions``).
        self.version = 0
        self._tasks: set[asyncio.Task] = set()
        #: holder connection -> the actors it holds or has handles in transit to
        self._held: dict[Connection, set[bytes]] = {}
        self._early_tokens: collections.OrderedDict = collections.OrderedDict()

    def create(self, spec: dict, creator: Connection | None = None) -> None:
        """Register and start an actor; ``creator`` (its creator's connection) holds it."""
        actor_id = spec["actor_id"]
        if actor_id in self.actors:
            return
        name = spec.get("name")
        if name:
            key = (spec["namespace"], name)
            holder = self.named.get(key)
            if holder is not None and self.actors[holder].state != DEAD:
                raise ValueError(
                    f"The name {name!r} (namespace={spec['namespace']!r}) is already taken "
                    "by another actor. Pick another name, or get the existing one with "
                    "get_actor(name) or .options(name=..., get_if_exists=True).")
            self.named[key] = actor_id
        record = ActorRecord(actor_id, spec)
        record.events.append([PENDING_CREATION, record.start_time, None])
        self.actors[actor_id] = record
        if creator is not None:
            record.holders.add(creator)
            self._hold(creator, actor_id)
        self._record_task(creation_task_id(actor_id), 0, PENDING_NODE_ASSIGNMENT,
                          record.creation_info(), None)
        self._changed(record)
        self._spawn(self._start(record))

    def recover(self, saved: list[dict]) -> None:
        """Reload actors from storage after a control-store restart (see GcsServer.recover)."""
        for fields in saved:
            record = ActorRecord(fields["actor_id"], fields["spec"], holders_known=False)
            for name in _PERSISTENT_FIELDS:
                if name in fields:  # a store from an older raggio may lack some
                    setattr(record, name, fields[name])
            self.actors[record.actor_id] = record
            name = record.spec.get("name")
            if name and record.state != DEAD:
                self.named[(record.spec["namespace"], name)] = record.actor_id
            if record.state == ALIVE:
                record.state = RESTARTING  # callers wait until its worker is reached again
                self._spawn(self._adopt(record))
            elif record.state != DEAD:
                record.state = RESTARTING
                self._spawn(self._start(record))

    async def _adopt(self, record: ActorRecord) -> None:
        """After a control-store restart: watch the actor's worker again if it still answers,
        else treat the actor as lost (restart it, or mark it dead)."""
        try:
            conn = await self._connect_worker(record.address, ADOPT_TIMEOUT_S)
        except Exception:
            if record.spec.get("lifetime") == "detached":
                # It died with the control store's process (the head): a detached actor is
                # the cluster's, not a crash's, so it comes back whatever max_restarts says.
                record.lease_id = None
                self._restart(record)
                return
            record.worker_conn = _LOST
            self._worker_lost(record, _LOST)
            return
        record.worker_conn = conn
        conn.close_callbacks.append(lambda _c: self._worker_lost(record, conn))
        self._set_state(record, ALIVE)

    async def wait(self, actor_id: bytes, after_incarnation: int, timeout_s: float) -> dict:
        """The actor's info once it is ALIVE past ``after_incarnation``, or DEAD."""
        record = self.actors.get(actor_id)
        if record is None:
            return {"state": DEAD, "death_cause": "unknown actor", "actor_id": actor_id}
        deadline = time.monotonic() + timeout_s
        while not (record.state == DEAD or
                   (record.state == ALIVE and record.incarnation > after_incarnation)):
            record.changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(record.changed.wait(), remaining)
            except asyncio.TimeoutError:
                break
        return record.info()

    def lookup(self, name: str, namespace: str) -> ActorRecord | None:
        actor_id = self.named.get((namespace, name))
        record = self.actors.get(actor_id) if actor_id else None
        if record is None or record.state == DEAD:
            return None
        return record

    def kill(self, actor_id: bytes, no_restart: bool) -> None:
        record = self.actors.get(actor_id)
        if record is None or record.state == DEAD:
            return
        if no_restart:
            record.killed = True
        if record.worker_conn is not None:
            record.worker_conn.notify("exit_worker", {"reason": "killed by raggio.kill()"})
        elif no_restart:
            self._mark_dead(record, "The actor was killed by raggio.kill().")

    # -- handle holders: an actor that is not detached lives while a process holds it --

    def handle_acquired(self, holder: Connection, actor_id: bytes, token: bytes | None) -> None:
        record = self.actors.get(actor_id)
        if record is None or record.state == DEAD:
            return
        record.holders.add(holder)
        record.holders_known = True
        self._hold(holder, actor_id)
        if token is not None:
            self.handle_arrived(holder, actor_id, token)

    def handle_in_transit(self, holder: Connection, actor_id: bytes, token: bytes) -> None:
        if self._early_tokens.pop(token, False):
            return  # its receiver already said it arrived
        record = self.actors.get(actor_id)
        if record is None or record.state == DEAD:
            return
        record.transits[token] = holder
        self._hold(holder, actor_id)

    def handle_arrived(self, holder: Connection, actor_id: bytes, token: bytes) -> None:
        record = self.actors.get(actor_id)
        if record is None or record.transits.pop(token, None) is None:
            self._early_tokens[token] = True
            if len(self._early_tokens) > _EARLY_TOKENS_KEPT:
                self._early_tokens.popitem(last=False)
            return
        self._end_if_unheld(record)

    def handle_released(self, holder: Connection, actor_id: bytes) -> None:
        record = self.actors.get(actor_id)
        if record is None:
            return
        record.holders.discard(holder)
        self._end_if_unheld(record)

    def _hold(self, holder: Connection, actor_id: bytes) -> None:
        """Note that ``holder`` holds (or sent a handle to) the actor; its connection
        closing lets go of all of them."""
        held = self._held.get(holder)
        if held is None:
            held = self._held[holder] = set()
            holder.close_callbacks.append(self.holder_gone)
        held.add(actor_id)

    def holder_gone(self, holder: Connection) -> None:
        """A process that held handles (or sent some on their way) disconnected."""
        for actor_id in self._held.pop(holder, ()):
            record = self.actors.get(actor_id)
            if record is None:
                continue
            record.holders.discard(holder)
            for token in [t for t, sender in record.transits.items() if sender is holder]:
                del record.transits[token]
            self._end_if_unheld(record)

    def _end_if_unheld(self, record: ActorRecord) -> None:
        """End an actor no process holds any more, letting it finish gracefully (atexit
        handlers run), as Ray does when an actor goes out of scope."""
        if (record.holders or record.transits or not record.holders_known
                or record.state == DEAD or record.spec.get("lifetime") == "detached"):
            return
        record.killed = True
        record.death_cause = record.death_cause or OUT_OF_SCOPE_CAUSE
        if record.worker_conn is not None:
            record.worker_conn.notify("exit_worker", {"reason": "out of scope", "graceful": True})
        else:
            self._mark_dead(record, OUT_OF_SCOPE_CAUSE)

    def exiting(self, actor_id: bytes, cause: str) -> None:
        """The actor ends itself on purpose (``exit_actor``, ``__ray_terminate__``): no
        restart, and its callers hear why."""
        record = self.actors.get(actor_id)
        if record is not None and record.state != DEAD:
            record.killed = True
            record.death_cause = record.death_cause or cause

    def owner_died(self, job_id: int | None = None, worker_id: bytes | None = None) -> None:
        for record in list(self.actors.values()):
            if record.state == DEAD or record.spec.get("lifetime") == "detached":
                continue
            if (job_id is not None and record.spec["job_id"] == job_id
                    and worker_id is None) or (
                    worker_id is not None and record.spec.get("owner_worker_id") == worker_id):
                record.killed = True
                record.death_cause = "The actor's owner (the driver or worker that created it) died."
                self.kill(record.actor_id, no_restart=True)

    def worker_exited(self, node_id: bytes, pid: int, exit_code: int) -> None:
        """Add the exit code to the death cause of the actor that ran in that process."""
        how = (f"exit code {exit_code}" if exit_code >= 0 else
               f"signal {signal_name(-exit_code)}")
        for record in self.actors.values():
            if record.node_id == node_id and record.pid == pid and not record.exit_detail:
                record.exit_detail = f"its worker process (pid {pid}) exited with {how}"
                record.exited.set()

    def worker_oom_killed(self, node_id: bytes, pid: int, message: str) -> None:
        for record in self.actors.values():
            if record.node_id == node_id and record.pid == pid:
                record.exit_detail = f"it ran out of memory: {message}"
                record.exited.set()

    def node_died(self, node_id: bytes, reason: str) -> None:
        """Treat every actor on a dead node as lost (its connection may not even close)."""
        for record in self.actors.values():
            if record.node_id == node_id and record.worker_conn is not None:
                record.node_death = f"its node {node_id.hex()[:16]} died: {reason}"
                record.worker_conn.close()  # runs _worker_lost: restart or mark dead

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- internals --

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _set_state(self, record: ActorRecord, state: str) -> None:
        record.state = state
        record.events.append([state, time.time(), record.node_id or None])
        record.changed.set()
        self._changed(record)

    def _changed(self, record: ActorRecord) -> None:
        """Write the record through and count the change."""
        self.version += 1
        self._save(record)

    def _mark_dead(self, record: ActorRecord, cause: str, error: list | None = None) -> None:
        """``error``: the task-history error of a creation that failed (default: the cause)."""
        if record.state == DEAD:
            return
        if record.incarnation == record.num_restarts:  # it died before its (re)start finished
            self._record_task(creation_task_id(record.actor_id), record.num_restarts, FAILED,
                              None, error or ["ACTOR_DIED", record.death_cause or cause])
        record.death_cause = record.death_cause or cause
        record.end_time = time.time()
        self._set_state(record, DEAD)
        self._release_lease(record)

    def _release_lease(self, record: ActorRecord) -> None:
        if record.lease_id is not None:
            node_conn = self._node_conn(record.node_id)
            if node_conn is not None:
                node_conn.notify("return_worker_lease", {"lease_id": record.lease_id,
                                                         "kill": True})
            record.lease_id = None

    async def _start(self, record: ActorRecord) -> None:
        spec = record.spec
        task_id, attempt = creation_task_id(record.actor_id), record.num_restarts
        try:
            node_conn, grant = await self._lease_worker(spec)
            if record.killed:
                node_conn.notify("return_worker_lease", {"lease_id": grant["lease_id"], "kill": True})
                self._mark_dead(record, "The actor was killed by raggio.kill().")
                return
            record.node_id, record.lease_id = grant["node_id"], grant["lease_id"]
            conn = await self._connect_worker(grant["address"])
            record.worker_conn = conn
            conn.close_callbacks.append(lambda _c: self._worker_lost(record, conn))
            self._record_task(task_id, attempt, SUBMITTED_TO_WORKER)
            self._record_task(task_id, attempt, RUNNING, None, None,
                              [grant["node_id"], grant["worker_id"], grant["pid"]])
            reply = await conn.call("create_actor", {
                "spec": spec, "gpu_ids": grant.get("gpu_ids", []),
                "incarnation": record.incarnation + 1, "attempt": attempt})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("could not start actor %s", record.actor_id.hex())
            self._mark_dead(record, f"The actor could not be started: {exc}")
            return
        if reply.get("error") is not None:
            record.creation_error = reply["error"]
            record.killed = True
            self._mark_dead(record, "The actor died because its __init__ raised an exception.",
                            reply.get("error_summary"))
            conn.notify("exit_worker", {"reason": "actor __init__ failed"})
            return
        record.address = grant["address"]
        record.worker_id = grant["worker_id"]
        record.node_id = grant["node_id"]
        record.pid = grant["pid"]
        record.incarnation += 1
        self._record_task(task_id, attempt, FINISHED)
        self._set_state(record, ALIVE)

    def _worker_lost(self, record: ActorRecord, conn: Connection) -> None:
        if record.worker_conn is not conn:
            return
        record.worker_conn = None
        self._release_lease(record)
        if record.state == DEAD:
            return
        max_restarts = record.spec.get("max_restarts", 0)
        if record.killed:
            self._mark_dead(record, "The actor was killed by raggio.kill().")
        elif max_restarts == -1 or record.num_restarts < max_restarts:
            self._restart(record)
        elif record.node_death:
            self._die_of_node(record, max_restarts)
        else:
            self._spawn(self._die_of_exit(record, max_restarts))

    def _restart(self, record: ActorRecord) -> None:
        record.num_restarts += 1
        record.node_death = record.exit_detail = ""
        record.exited.clear()
        self._record_task(creation_task_id(record.actor_id), record.num_restarts,
                          PENDING_NODE_ASSIGNMENT, record.creation_info(), None)
        self._set_state(record, RESTARTING)
        self._spawn(self._start(record))

    def _die_of_node(self, record: ActorRecord, max_restarts: int) -> None:
        cause = f"The actor died because {record.node_death}"
        if max_restarts:
            cause += f", and it was already restarted {record.num_restarts} times"
        self._mark_dead(record, cause + ".")

    async def _die_of_exit(self, record: ActorRecord, max_restarts: int) -> None:
        """Mark the actor dead, with its process's exit code when the zygote reports it."""
        try:
            await asyncio.wait_for(record.exited.wait(), EXIT_CODE_WAIT_S)
        except asyncio.TimeoutError:
            pass
        self._mark_dead(record, (
            "The actor died unexpectedly: "
            + (record.exit_detail or "its worker process exited")
            + (f" and it was already restarted {record.num_restarts} times (max_restarts="
               f"{max_restarts})" if max_restarts else " and max_restarts is 0") + "."))

