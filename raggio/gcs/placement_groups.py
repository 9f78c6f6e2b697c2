"""The placement group table: reserving bundles of resources across nodes.

Owns every group's record (bundles, strategy, state, the node of each
bundle, why it is still pending). A pending group is planned against the
nodes' available resources (``bundle_placement.plan``); its bundles are then
reserved on their nodes (``reserve_bundles``), which turns each bundle into
resources named ``<resource>_group_<index>_<group id>`` and
``<resource>_group_<group id>``, as in Ray, so tasks and actors scheduled
into the group are placed by the ordinary lease logic. A reservation that
fails (the node filled up meanwhile) is rolled back and the group planned
again. Called by the control store's RPC handlers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from raggio.common.waiting import wait_event
from raggio.exceptions import RpcError
from raggio.gcs.bundle_placement import plan

logger = logging.getLogger(__name__)

PENDING, CREATED, REMOVED = "PENDING", "CREATED", "REMOVED"


@dataclass
class PlacementGroupRecord:
    pg_id: bytes
    bundles: list[dict]
    strategy: str
    name: str = ""
    namespace: str = ""
    job_id: int | None = None
    lifetime: str | None = None
    state: str = PENDING
    bundle_nodes: list = field(default_factory=list)
    pending_reason: str = "waiting to be scheduled"
    created_at: float = field(default_factory=time.time)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def persistent(self) -> dict:
        return {"pg_id": self.pg_id, "bundles": self.bundles, "strategy": self.strategy,
                "name": self.name, "namespace": self.namespace, "job_id": self.job_id,
                "lifetime": self.lifetime, "state": self.state,
                "bundle_nodes": self.bundle_nodes, "created_at": self.created_at}

    def info(self) -> dict:
        return {
            "placement_group_id": self.pg_id.hex(), "name": self.name,
            "strategy": self.strategy, "state": self.state,
            "bundles": {i: b for i, b in enumerate(self.bundles)},
            "bundles_to_node_id": {i: n.hex() for i, n in enumerate(self.bundle_nodes) if n},
            "pending_reason": self.pending_reason if self.state == PENDING else "",
            "namespace": self.namespace, "job_id": self.job_id,
            "is_detached": self.lifetime == "detached",
        }


class PlacementGroupTable:
    """See the module docstring."""

    def __init__(self, available_nodes: Callable[[], dict], node_conn: Callable[[bytes], object],
                 update_node: Callable[[bytes, dict], None],
                 save: Callable[[PlacementGroupRecord], None] = lambda record: None):
        self._save = save  #: writes a record through to the control store's storage
        self._available_nodes = available_nodes
        self._node_conn = node_conn
        self._update_node = update_node  #: record a node's resources as it just reported them
        self.groups: dict[bytes, PlacementGroupRecord] = {}
        #: Counts the records' changes (one added, placed, removed, a new pending reason):
        #: the dashboard's pages refetch when it grows (``GcsServer.table_versions``).
        self.version = 0
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._schedule_forever())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def cluster_changed(self) -> None:
        """Nodes or their free resources changed: pending groups may fit now."""
        self._wakeup.set()

    def create(self, spec: dict) -> None:
        name = spec.get("name") or ""
        if name and any(g.name == name and g.namespace == spec.get("namespace")
                        and g.state != REMOVED for g in self.groups.values()):
            raise ValueError(f"A placement group named {name!r} already exists in namespace "
                             f"{spec.get('namespace')!r}; pick another name.")
        record = PlacementGroupRecord(spec["pg_id"], spec["bundles"], spec["strategy"], name,
                                      spec.get("namespace") or "", spec.get("job_id"),
                                      spec.get("lifetime"))
        self.groups[record.pg_id] = record
        self._changed(record)
        self._wakeup.set()

    def recover(self, saved: list[dict]) -> None:
        """Reload groups after a control-store restart: detached ones are placed again, the
        others are removed with their (gone) jobs."""
        for fields in saved:
            record = PlacementGroupRecord(fields["pg_id"], fields["bundles"], fields["strategy"],
                                          fields["name"], fields["namespace"], fields["job_id"],
                                          fields["lifetime"], created_at=fields["created_at"])
            if fields["state"] != REMOVED and fields["lifetime"] == "detached":
                record.pending_reason = "placed again after a control-store restart"
            else:
                record.state = REMOVED
            self.groups[record.pg_id] = record
            self._save(record)

    async def wait(self, pg_id: bytes, timeout_s: float) -> dict | None:
        record = self.groups.get(pg_id)
        if record is None:
            return None
        deadline = time.monotonic() + timeout_s
        while record.state == PENDING and time.monotonic() < deadline:
            record.changed.clear()
            try:
                await asyncio.wait_for(record.changed.wait(), deadline - time.monotonic())
            except asyncio.TimeoutError:
                break
        return record.info()

    async def remove(self, pg_id: bytes) -> None:
        record = self.groups.get(pg_id)
        if record is None or record.state == REMOVED:
            return
        was_created = record.state == CREATED
        record.state = REMOVED
        record.changed.set()
        self._changed(record)
        if was_created:
            await self._release(record, set(record.bundle_nodes))

    def node_lost(self, node_id: bytes) -> list:
        """Coroutines that place again every group that had bundles on a dead node."""
        return [self._reschedule(record, node_id) for record in self.groups.values()
                if record.state == CREATED and node_id in record.bundle_nodes]

    async def _reschedule(self, record: PlacementGroupRecord, lost_node: bytes) -> None:
        await self._release(record, set(record.bundle_nodes) - {lost_node})
        record.state, record.bundle_nodes = PENDING, []
        record.pending_reason = "a node holding some of its bundles died"
        self._changed(record)
        self._wakeup.set()

    def job_finished(self, job_id: int) -> list:
        return [self.remove(pg_id) for pg_id, g in self.groups.items()
                if g.job_id == job_id and g.lifetime != "detached" and g.state != REMOVED]

    def lookup(self, name: str, namespace: str) -> PlacementGroupRecord | None:
        for record in self.groups.values():
            if record.name == name and record.namespace == namespace and record.state != REMOVED:
                return record
        return None

    def pending(self) -> list[dict]:
        return [g.info() for g in self.groups.values() if g.state == PENDING]

    # -- scheduling --

    async def _schedule_forever(self) -> None:
        while True:
            self._wakeup.clear()
            for record in [g for g in self.groups.values() if g.state == PENDING]:
                try:
                    await self._try_place(record)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("placing group %s failed", record.pg_id.hex())
            await wait_event(self._wakeup, 1.0)  # not wait_for: see common/waiting.py

    async def _try_place(self, record: PlacementGroupRecord) -> None:
        nodes, reason = plan(record.bundles, record.strategy, self._available_nodes())
        if nodes is None:
            self._set_pending_reason(record, reason)
            return
        reserved: set[bytes] = set()
        for node_id in set(nodes):
            indexes = [i for i, n in enumerate(nodes) if n == node_id]
            try:
                state = await self._node_conn(node_id).call("reserve_bundles", {
                    "pg_id": record.pg_id, "bundles": {i: record.bundles[i] for i in indexes}})
            except (RpcError, KeyError):
                state = None
            if state is None:
                self._set_pending_reason(
                    record, "a node filled up while the group was being reserved")
                await self._release(record, reserved)
                return
            self._update_node(node_id, state)
            reserved.add(node_id)
        if record.state == REMOVED:  # removed while being reserved
            await self._release(record, reserved)
            return
        record.bundle_nodes = nodes
        record.state = CREATED
        record.changed.set()
        self._changed(record)

    def _changed(self, record: PlacementGroupRecord) -> None:
        """Write the record through and count the change."""
        self.version += 1
        self._save(record)

    def _set_pending_reason(self, record: PlacementGroupRecord, reason: str) -> None:
        if reason != record.pending_reason:  # planned again every second while pending
            record.pending_reason = reason
            self.version += 1

    async def _release(self, record: PlacementGroupRecord, node_ids: set[bytes]) -> None:
        for node_id in node_ids:
            try:
                state = await self._node_conn(node_id).call("release_bundles",
                                                            {"pg_id": record.pg_id})
            except (KeyError, RpcError):
                continue  # the node is gone, and its reservation with it
            self._update_node(node_id, state)
