"""Leaving the cluster without losing an object: the node side of Ray's ``DrainNode``.

The autoscaler drains a node before it removes it (``drain_node`` on the control
store, which stops placing work there and asks the node manager to ``drain``;
``raggio drain-node`` asks the same). For ``DRAIN_IDLE_TERMINATION``
(``common/states.py``) the node accepts only while it is idle (``busy_reason``
says why not); for ``DRAIN_PREEMPTION`` (the machine is being taken away) at
once, its running work going on. It stops taking leases (requests that reach
it are sent on to other nodes), and ``move_objects`` gives each of its primary
copies (in the arena or spilled) to another live node:

1. that node pulls the object and keeps it as its primary copy
   (``adopt_object``: spilled under pressure, never evicted);
2. the owner is told where it now lives (``object_moved`` on the owner's core
   worker), so that readers, borrowers and the final free go there; an owner
   that no longer holds the object, or is gone, has it dropped at the new node;
3. this node drops its own copy.

An object that no other node takes (none alive, every one failed) ends the
drain: the node takes work again and says why, and nothing is lost."""

from __future__ import annotations

import logging
from typing import Awaitable, Callable

from raggio.exceptions import RpcError
from raggio.node.object_store import ObjectStore

logger = logging.getLogger(__name__)


class DrainFailed(Exception):
    """An object could not be moved off this node; the drain is given up."""


def busy_reason(*, leases: int, waiting: int, bundles: int, drivers: int,
                owners: int) -> str | None:
    """Why a node may not be drained now (it would lose work or objects), or None."""
    reasons = []
    if leases:
        reasons.append(f"{leases} worker lease(s) in use")
    if waiting:
        reasons.append(f"{waiting} lease request(s) waiting")
    if bundles:
        reasons.append(f"{bundles} placement group(s) hold bundles here")
    if drivers:
        reasons.append(f"{drivers} driver(s) connected")
    if owners:
        reasons.append(f"{owners} worker(s) here own objects that others hold (they would "
                       "be lost with the node)")
    return "; ".join(reasons) or None


async def move_objects(store: ObjectStore, targets: list[dict],
                       peer: Callable[[str], Awaitable], here: str) -> tuple[int, int]:
    """Give every primary copy in ``store`` to one of ``targets`` (the other live nodes'
    view entries, with ``node_id`` and ``address``; most object store memory first) and
    tell its owner; return (objects moved, bytes moved). ``here`` is this node's address.

    Raises:
        DrainFailed: an object no target would take, or one without a known owner.
    """
    moved = moved_bytes = 0
    for object_id, size_bytes, owner in store.primary_objects():
        if owner is None:
            raise DrainFailed(f"object {object_id.hex()} has no known owner to tell where it "
                              "goes")
        try:
            target = await _adopt(object_id, size_bytes, owner, targets, peer, here)
        except DrainFailed:
            if not store.wanted(object_id):
                continue  # its owner freed it meanwhile: nothing to move
            raise
        if await _tell_owner(object_id, owner, target, peer):
            moved, moved_bytes = moved + 1, moved_bytes + size_bytes
        else:  # freed meanwhile, or its owner is gone: nobody can ask for it
            (await peer(target["address"])).notify("free_objects", [object_id])
        store.free(object_id)
    return moved, moved_bytes


async def _adopt(object_id: bytes, size_bytes: int, owner: str, targets: list[dict],
                 peer: Callable[[str], Awaitable], here: str) -> dict:
    """The target that took the object (the first of ``targets`` that did)."""
    if not targets:
        raise DrainFailed(f"no other live node to take object {object_id.hex()}")
    failures = []
    for target in targets:
        try:
            await (await peer(target["address"])).call(
                "adopt_object", [object_id, here, size_bytes, owner])
            return target
        except Exception as exc:  # gone, full, or the pull failed: try the next node
            failures.append(f"{target['address']}: {type(exc).__name__}: {exc}")
    raise DrainFailed(f"no node took object {object_id.hex()} ({size_bytes} bytes): "
                      + "; ".join(failures))


async def _tell_owner(object_id: bytes, owner: str, target: dict,
                      peer: Callable[[str], Awaitable]) -> bool:
    """Whether the owner still holds the object (and now knows where it lives)."""
    try:
        return await (await peer(owner)).call(
            "object_moved", [object_id, target["node_id"], target["address"]])
    except (RpcError, OSError) as exc:  # its process ended
        logger.info("the owner of %s is gone (%s); dropping the object", object_id.hex(), exc)
        return False
