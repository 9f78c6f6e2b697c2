"""The control store's task history: every attempt of every task and its state changes.

Fed by the ``add_task_events`` batches of drivers and workers (see
``core/task_events.py``) and by the actor directory (actor creation tasks).
A record per attempt, the submitter's flat list (``common/task_records.py``)
with its info (name, type, job, resources) and its worker looked up, holds
its events (state, time), where it ran and how it failed; ``describe`` turns
it into what the state API reads. Its state is its latest event's, except
that a finished or failed attempt stays so whatever late event arrives
(clocks of several machines).

At most ``max_tasks`` attempts are kept: the oldest go first, and are
counted, as are the events processes dropped before sending. With a durable
backend the changed records are written through in one batch a second, and
reloaded at start, so the history outlives a control-store restart.
``pending_reason`` says why an attempt that has not started yet waits.
"""

from __future__ import annotations

import asyncio
import collections
import time

from raggio.common.states import (ALIVE, DEAD, FAILED, FINISHED, PENDING_ARGS_AVAIL,
                                  PENDING_NODE_ASSIGNMENT, RUNNING, STATE_NAMES,
                                  SUBMITTED_TO_WORKER, TERMINAL_STATES)
from raggio.common.task_records import (R_ARGS, R_ATTEMPT, R_ERROR, R_EVENTS, R_INFO, R_PARENT,
                                        R_TASK, R_WHERE)
from raggio.common.placement_group_resources import placement_group_of
from raggio.common.resources import why_waiting

SAVE_PERIOD_S = 1.0
_STARTED = (RUNNING, *TERMINAL_STATES)


#: How many evicted attempts are remembered, so that their late records are not taken back.
DROPPED_KEYS_KEPT = 10_000


def _key(task_id: bytes, attempt: int) -> bytes:
    return task_id if attempt == 0 else task_id + attempt.to_bytes(4, "big")


def _lookup(table: list, number: int | None):
    return table[number] if number is not None and number < len(table) else None


def _events(record: list) -> list[tuple[int, float]]:
    pairs = [(record[i], record[i + 1]) for i in range(R_EVENTS, len(record) - 1, 2)]
    pairs.sort(key=lambda pair: pair[1])
    return pairs


def state_of(events: list[tuple[int, float]]) -> int | None:
    """An attempt's state: its last event's, unless it has ended (whatever came later)."""
    ended = [state for state, _ in events if state in TERMINAL_STATES]
    if ended:
        return ended[-1]
    return events[-1][0] if events else None


def current_state(record: list) -> int | None:
    """``state_of`` the record's events, without sorting them (the dashboard's page scans
    every record: ~1 us each here instead of ~5)."""
    states = record[R_EVENTS::2]
    finished, failed = FINISHED in states, FAILED in states
    if finished and failed:  # both: the later one counts
        return state_of(_events(record))
    if finished or failed:
        return FINISHED if finished else FAILED
    if not states:
        return None
    times = record[R_EVENTS + 1::2]
    return states[times.index(max(times))]


def describe(record: list) -> dict:
    """An attempt's record as the state API reads it."""
    events = _events(record)
    times = {state: ts for state, ts in events}
    where = record[R_WHERE] or (None, None, None)
    error = record[R_ERROR] or (None, None)
    end = next((ts for state, ts in reversed(events) if state in TERMINAL_STATES), None)
    state = state_of(events)
    return {"task_id": record[R_TASK], "attempt": record[R_ATTEMPT],
            "state": None if state is None else STATE_NAMES[state],
            "events": [(STATE_NAMES[state], ts) for state, ts in events], "info": record[R_INFO],
            "parent_task_id": record[R_PARENT], "arg_ids": record[R_ARGS], "node_id": where[0], "worker_id": where[1],
            "worker_pid": where[2], "start_time": times.get(RUNNING), "end_time": end,
            "error_type": error[0], "error_message": error[1]}


class TaskEventStore:
    """See the module docstring."""

    def __init__(self, tables, max_tasks: int):
        self._tables = tables
        self.max_tasks = max_tasks
        #: task attempt key -> its record (``core.task_events.R_*``, R_INFO the info itself)
        self.records: collections.OrderedDict[bytes, list] = collections.OrderedDict()
        self.dropped = 0  #: attempts evicted to stay within max_tasks
        #: The latest evicted attempts: a late record of one (its end, after an open record
        #: was sent and evicted) is not taken back, so each attempt is dropped and counted once.
        self._dropped_keys: collections.OrderedDict[bytes, None] = collections.OrderedDict()
        self.dropped_at_source = 0  #: ended attempts the processes dropped before sending them
        #: Counts the batches and events taken: the dashboard's pages refetch when it grows
        #: (``GcsServer.table_versions``).
        self.version = 0
        #: worker id -> the infos and wheres it numbered (see core.task_events)
        self._tables_of: dict[bytes, dict[str, list]] = {}
        self._dirty: set[bytes] = set()
        self._evicted: list[bytes] = []
        self._save_scheduled = False
        #: (state, task name, job id) -> attempts kept in that state, kept up to date as
        #: records come and go (~1 us a record), so that ``ray_tasks`` costs no scan.
        self._counts: collections.Counter = collections.Counter()

    def state_counts(self) -> list[list]:
        """``[state name, task name, job id, count]`` over the kept attempts (``ray_tasks``)."""
        return [[STATE_NAMES[state], name, job, count]
                for (state, name, job), count in self._counts.items() if count]

    def _count(self, record: list, by: int) -> None:
        state = current_state(record)
        if state is not None:
            info = record[R_INFO] or {}
            self._counts[state, info.get("name", ""), info.get("job_id")] += by

    # -- taking events --

    def add_batch(self, batch: dict) -> bool:
        """One process's records (``add_task_events``); True if it is the first of its
        process (whose numbering is then kept until ``forget``)."""
        where = batch["where"]
        first = where[1] not in self._tables_of
        tables = self._tables_of.setdefault(where[1], {"infos": [], "wheres": []})
        for name in ("infos", "wheres"):
            del tables[name][batch[name + "_from"]:]
            tables[name].extend(batch[name])
        infos, wheres = tables["infos"], tables["wheres"]
        self.dropped_at_source += batch["dropped"]
        self.version += 1
        records, durable = self.records, self._tables.durable
        for record in batch["tasks"]:  # the hot loop: a record per task a second
            record[R_INFO] = _lookup(infos, record[R_INFO])
            record[R_WHERE] = _lookup(wheres, record[R_WHERE])
            key = _key(record[R_TASK], record[R_ATTEMPT])
            known = records.get(key)
            if known is None:
                if key not in self._dropped_keys:
                    self._insert(key, record)
            else:
                self._merge(key, record, known)
                if durable:
                    self._dirty.add(key)
        for task_id, attempt, started in batch["running"]:
            self.add(task_id, attempt, RUNNING, started, where=where)
        self._schedule_save()
        return first

    def forget(self, worker_id: bytes) -> None:
        """A process's connection closed: drop its numbering (it sends it all again if it
        comes back)."""
        self._tables_of.pop(worker_id, None)

    def _merge(self, key: bytes, record: list, known: list) -> None:
        """An attempt's record as its submitter has it now replaces what we had, keeping
        what only we know (the RUNNING its worker reported, the info of attempt 0)."""
        self._count(known, -1)
        for slot in (R_INFO, R_PARENT, R_ARGS, R_WHERE, R_ERROR):
            if record[slot] is None:
                record[slot] = known[slot]
        states = set(record[R_EVENTS::2])
        for state, ts in _events(known):
            if state not in states:
                record += (state, ts)
        self.records[key] = record
        self._count(record, 1)

    def add(self, task_id: bytes, attempt: int, state: int, ts: float, info: dict | None = None,
            error: list | None = None, where: list | None = None) -> None:
        """One event of an attempt (a worker's RUNNING report, an actor creation's)."""
        self.version += 1
        key = _key(task_id, attempt)
        record = self.records.get(key)
        if record is None:
            if key in self._dropped_keys:
                return
            record = [task_id, attempt, info, None, None, None, None, 0]
            self._insert(key, record)
        self._count(record, -1)
        for slot, value in ((R_INFO, info), (R_WHERE, where), (R_ERROR, error)):
            if value is not None:
                record[slot] = value
        record += (state, ts)
        self._count(record, 1)
        if self._tables.durable:
            self._dirty.add(key)

    def add_local(self, task_id: bytes, attempt: int, state: int, info: dict | None = None,
                  error: list | None = None, where: list | None = None) -> None:
        """An event the control store saw itself (an actor's creation task)."""
        self.add(task_id, attempt, state, time.time(), info, error, where)
        self._schedule_save()

    def _insert(self, key: bytes, record: list) -> None:
        if record[R_ATTEMPT] and record[R_INFO] is None:
            first = self.records.get(record[R_TASK])
            if first is not None:
                record[R_INFO], record[R_PARENT] = first[R_INFO], first[R_PARENT]
        self.records[key] = record
        self._count(record, 1)
        if self._tables.durable:
            self._dirty.add(key)
        if len(self.records) > self.max_tasks:
            old_key, old_record = self.records.popitem(last=False)
            self._count(old_record, -1)
            self.dropped += 1
            self._dropped_keys[old_key] = None
            if len(self._dropped_keys) > DROPPED_KEYS_KEPT:
                self._dropped_keys.popitem(last=False)
            if self._tables.durable:
                self._dirty.discard(old_key)
                self._evicted.append(old_key)

    # -- durability --

    def _schedule_save(self) -> None:
        if self._tables.durable and not self._save_scheduled and (self._dirty or self._evicted):
            self._save_scheduled = True
            asyncio.get_running_loop().call_later(SAVE_PERIOD_S, self.save)

    def save(self) -> None:
        """Write the changed records, the evictions and the drop counts through."""
        self._save_scheduled = False
        if not self._tables.durable:
            return
        dirty, self._dirty = self._dirty, set()
        evicted, self._evicted = self._evicted, []
        self._tables.save_many("task_events", [(key, self.records[key]) for key in dirty
                                               if key in self.records])
        self._tables.delete_many("task_events", evicted)
        self._tables.save("task_events_meta", "dropped", [self.dropped, self.dropped_at_source])

    def recover(self) -> None:
        """Reload the history a previous control store saved (oldest first)."""
        saved = self._tables.load("task_events")
        saved.sort(key=lambda record: min(record[R_EVENTS + 1::2], default=0))
        for record in saved:
            self.records[_key(record[R_TASK], record[R_ATTEMPT])] = record
            self._count(record, 1)
        for counts in self._tables.load("task_events_meta"):
            self.dropped, self.dropped_at_source = counts

    # -- reading --

    def attempts(self, task_id: bytes) -> list[dict]:
        """Every attempt of one task that the history still has, described, oldest first."""
        found = [describe(record) for key, record in self.records.items()
                 if key[:24] == task_id]
        return sorted(found, key=lambda task: task["attempt"])

    def listing(self, limit: int | None, waiting_only: bool = False) -> dict:
        """The newest ``limit`` attempts (all when None; only those not running yet with
        ``waiting_only``), described, and the totals."""
        records = list(self.records.values())
        if waiting_only:
            records = [r for r in records if state_of(_events(r)) not in _STARTED]
        if limit is not None:
            records = records[-limit:]
        return {"tasks": [describe(record) for record in records], "total": len(self.records),
                "dropped": self.dropped, "dropped_at_source": self.dropped_at_source}

    def page(self, filters: dict, offset: int, limit: int) -> dict:
        """A page of the history, newest first, for the dashboard's Tasks page.

        ``filters``: any of ``job_id`` (int), ``actor_id``, ``node_id`` (bytes), ``type``,
        ``state`` (names), ``name`` (a substring), and ``name_is`` and
        ``func_or_class_name`` (whole names; case does not count, as in the state API). Only the page is described, so a page
        of a 10,000-attempt history costs a scan of the states, not 10,000 descriptions.
        Returns the page (``tasks``), ``matched`` (all attempts matching ``filters``) and
        ``state_counts`` of the attempts matching the filters other than ``state``.
        """
        wanted_state = filters.get("state")
        others = {key: value for key, value in filters.items() if key != "state" and value}
        counts: collections.Counter = collections.Counter()
        page: list[list] = []
        matched = 0
        for record in reversed(self.records.values()):
            if others and not _record_matches(record, others):
                continue
            state = current_state(record)
            name = None if state is None else STATE_NAMES[state]
            counts[name] += 1
            if wanted_state and name != wanted_state:
                continue
            if offset <= matched < offset + limit:
                page.append(record)
            matched += 1
        return {"tasks": [describe(record) for record in page], "matched": matched,
                "state_counts": {name: count for name, count in counts.items() if name},
                "total": len(self.records), "dropped": self.dropped,
                "dropped_at_source": self.dropped_at_source}


def _record_matches(record: list, filters: dict) -> bool:
    info = record[R_INFO] or {}
    where = record[R_WHERE] or (None, None, None)
    for key, value in filters.items():
        if key == "name":
            if value.lower() not in (info.get("name") or "").lower():
                return False
        elif key in ("name_is", "func_or_class_name"):
            field = "name" if key == "name_is" else key
            if value.lower() != (info.get(field) or "").lower():
                return False
        elif key == "node_id":
            if where[0] != value:
                return False
        elif info.get(key) != value:  # job_id, actor_id, type
            return False
    return True


def pending_reason(record: dict, store: TaskEventStore, nodes: list[dict],
                   placement_groups: dict, actors: dict) -> str | None:
    """Why an attempt that has not started waits, in a sentence (None once it runs)."""
    state = STATE_NAMES.index(record["state"]) if record["state"] else None
    info = record["info"] or {}
    if state == PENDING_ARGS_AVAIL:
        waiting = [_describe_object(object_id, store) for object_id in record["arg_ids"] or ()]
        return ("waiting for its argument" + ("s " if len(waiting) > 1 else " ")
                + "; ".join(waiting[:3]) + (f" and {len(waiting) - 3} more" if len(waiting) > 3
                                            else "") + " to be ready")
    if state == SUBMITTED_TO_WORKER:
        return "sent to a worker; waiting for it to start there (behind the worker's other calls)"
    if state != PENDING_NODE_ASSIGNMENT:
        return None
    if info.get("type") == "ACTOR_TASK":
        actor = actors.get(info["actor_id"])
        if actor is None or actor.state == ALIVE:
            return "waiting for the actor's earlier calls to be sent"
        why = f" ({actor.death_cause})" if actor.state == DEAD and actor.death_cause else ""
        return (f"waiting for its actor {info['actor_id'].hex()} ({actor.spec['class_name']}) "
                f"to be ALIVE; it is {actor.state}{why}")
    resources = info.get("required_resources") or {}
    group = placement_group_of(resources)
    if group is not None:
        record_pg = placement_groups.get(bytes.fromhex(group))
        if record_pg is None or record_pg.state == "REMOVED":
            return f"its placement group {group} was removed"
        if record_pg.state == "PENDING":
            return (f"waiting for its placement group {group} to be placed: "
                    f"{record_pg.pending_reason}")
        return (f"waiting for room in its placement group {group}: its bundles are taken by "
                "other tasks or actors")
    labels = info.get("label_constraints")
    if not resources and not labels:
        return "waiting for a worker"
    return why_waiting(resources, nodes, labels)


def _describe_object(object_id: bytes, store: TaskEventStore) -> str:
    producer = store.records.get(object_id[:24])
    if producer is None:
        return f"object {object_id.hex()}"
    name = (producer[R_INFO] or {}).get("name", "?")
    return (f"object {object_id.hex()} (returned by task {object_id[:24].hex()} {name}, "
            f"{STATE_NAMES[state_of(_events(producer))]})")
