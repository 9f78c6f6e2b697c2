"""Rebuilding lost objects from lineage, and failing over when a node dies.

An owner keeps, for each of its objects stored in an arena, the spec of the
task that made it (its lineage) and holds that task's arguments, until the
object is freed. When a reader finds the object gone (its node died, or the
copy vanished), it asks the owner to ``reconstruct_object``: the owner runs
the task again, within the task's ``max_retries`` budget, and the reader
fetches the new copy. Arguments lost too are rebuilt the same way, because
the re-run task is itself a reader of them. Objects made by ``put`` have no
lineage and raise ``ObjectReconstructionFailedError``.

The control store tells every core worker when a node dies (``node_dead``);
connections to workers on that node are closed at once, so their tasks are
retried and their actors' calls fail over without waiting for TCP.
"""

from __future__ import annotations

import logging

from raggio.common.ids import object_id_bytes
from raggio.core.object_table import READY
from raggio.exceptions import ObjectLostError, ObjectReconstructionFailedError, RpcError

logger = logging.getLogger(__name__)

#: How many times one get() rebuilds an object that keeps getting lost.
MAX_RECOVERIES_PER_GET = 3


class Recovery:
    """See the module docstring. Owned by the core worker; runs on its loop."""

    def __init__(self, core):
        self.core = core
        #: Peer address -> the node it runs on, for the connections to close when a node dies.
        self.peer_nodes: dict[str, bytes] = {}
        self.dead_nodes: set[bytes] = set()

    # -- node deaths --

    def node_dead(self, conn, msg: dict) -> None:
        node_id = msg["node_id"]
        self.dead_nodes.add(node_id)
        logger.info("node %s died: %s", node_id.hex()[:16], msg.get("reason"))
        for address, peer_node in list(self.peer_nodes.items()):
            if peer_node == node_id:
                del self.peer_nodes[address]
                fut = self.core._peers.get(address)
                if fut is not None and fut.done() and not fut.cancelled() \
                        and fut.exception() is None:
                    fut.result().close()

    # -- lineage --

    def keep_lineage(self, spec: dict) -> bool:
        """Keep ``spec`` as the lineage of its returns stored in an arena; False if none were."""
        entries = self.core.refs.entries
        stored = [entries[i] for i in spec["return_ids"]
                  if i in entries and entries[i].node_id is not None and not entries[i].is_error]
        for entry in stored:
            entry.lineage = spec
        return bool(stored) or spec.get("stored_items", False)  # a generator's (generators.py)

    def lineage_dropped(self, spec: dict) -> None:
        """The objects a spec made are freed: let its arguments go."""
        self.core.refs.release_task_args(spec["task_id"])

    async def reconstruct_object(self, conn, msg: list) -> None:
        """Owner side: rebuild ``object_id``, lost from ``lost_node_id``; return when ready."""
        object_id, lost_node_id = msg
        entry = self.core.refs.entries.get(object_id)
        if entry is None:
            raise ObjectLostError(object_id.hex())
        if entry.state == READY and entry.node_id != lost_node_id:
            return  # someone else already rebuilt it elsewhere
        spec = entry.lineage
        if entry.state == READY:
            if spec is None:
                raise ObjectReconstructionFailedError(
                    object_id.hex(), ObjectReconstructionFailedError.PUT
                    if object_id[-4:] == b"\x00\x00\x00\x00" else
                    ObjectReconstructionFailedError.LINEAGE_EVICTED)
            if spec["task_id"] not in self.core.submitter.pending:
                self._run_again(spec, object_id)
            self.core.refs.reset_pending(object_id)  # also a generator's item, not a return
        await self.core.refs.wait_ready(object_id)

    def _run_again(self, spec: dict, object_id: bytes) -> None:
        if spec["retries_left"] == 0:
            raise ObjectReconstructionFailedError(
                object_id.hex(), ObjectReconstructionFailedError.RETRIES_DISABLED
                if spec.get("max_retries") == 0 else
                ObjectReconstructionFailedError.MAX_ATTEMPTS_EXCEEDED)
        spec["retries_left"] -= 1
        logger.info("rebuilding %s by running %s again", object_id.hex(), spec["name"])
        for return_id in spec["return_ids"]:
            self.core.refs.reset_pending(return_id)
        if "items_reported" in spec:  # a generator must yield as many again (task_executor)
            spec["rebuild_items"] = spec["items_reported"]
        self.core.submitter.resubmit(spec)

    def rerun_ended(self, spec: dict, completion: dict) -> None:
        """A generator task that ran again to rebuild lost items ended (``completion`` is
        the location of its own return). If it failed, the items it did not yield again
        (still pending, or on a dead node: items come before the reply) take its error,
        as in Ray."""
        if not completion.get("is_error"):
            return  # it yielded at least as many items as before (task_executor checks)
        refs = self.core.refs
        for index in range(spec["rebuild_items"]):
            item_id = object_id_bytes(spec["task_id"], index + 1)
            entry = refs.entries.get(item_id)
            if entry is not None and (entry.state != READY or entry.node_id in self.dead_nodes):
                refs.set_ready(item_id, completion)

    async def recover(self, ref, lost_node_id: bytes) -> None:
        """Reader side: have the owner rebuild ``ref``'s object, then learn its new place."""
        if ref._owner == self.core.address:
            await self.reconstruct_object(None, [ref._id, lost_node_id])
            return
        try:
            owner = await self.core.peer(ref._owner)
            await owner.call("reconstruct_object", [ref._id, lost_node_id])
        except RpcError as exc:
            raise ObjectLostError(ref.hex()) from exc
        self.core.refs.reset_pending(ref._id)
        await self.core._fetch_from_owner(ref)
