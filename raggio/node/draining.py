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

An object that no other node takes (none alive, every one failed), or whose
owner does not answer, ends the drain: the node takes work again and says why,
and the object stays. A node being drained adopts nothing (``adopt_object``
refuses), so two drains at once never hand an object to each other."""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from raggio.exceptions import ConnectionLost, RpcError
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
        reasons.append(f"{owners} worker(s) here own objects whose refs they passed on (kept "
                       "until their job ends; they would be lost with the node)")
    return "; ".join(reasons) or None


async def move_objects(store: ObjectStore, targets: Callable[[], list[dict]],
                       peer: Callable[..., Awaitable], here: str, local_owners: set[str],
                       live_hosts: Callable[[], set[str]],
                       owner_timeout_s: float) -> tuple[int, int]:
    """Give every primary copy in ``store`` to another node and tell its owner; return
    (objects moved, bytes moved).

    Args:
        targets: The other nodes that take work now, as view entries with ``node_id`` and
            ``address``, best first; asked again for each object (a node that started to
            drain meanwhile is left out, and would refuse anyway).
        peer: A connection to a node or core worker by address (``peer(address,
            timeout_s)``).
        here: This node's address.
        local_owners: The addresses of this node's workers: what they own dies with them,
            so it is not moved.
        live_hosts: The hosts of the live nodes: an owner elsewhere is gone with its node.
        owner_timeout_s: How long an owner has to accept the connection, and to answer
            (``drain_owner_timeout_s``).

    Raises:
        DrainFailed: an object no node would take, one without a known owner, or an owner
            that did not answer (the object stays, and so does the node).
    """
    gone: set[str] = set()  #: owners found gone during this drain: their objects are dead
    moved = moved_bytes = 0
    for object_id, size_bytes, owner in store.primary_objects():
        if owner in local_owners or owner in gone:
            continue
        if owner is None:
            raise DrainFailed(f"object {object_id.hex()} has no known owner to tell where it "
                              "goes")
        try:
            target = await _adopt(object_id, size_bytes, owner, targets(), peer, here)
        except DrainFailed:
            if not store.wanted(object_id):
                continue  # its owner freed it meanwhile: nothing to move
            raise
        try:
            held = await _tell_owner(object_id, owner, target, peer, live_hosts(),
                                     owner_timeout_s)
        except _OwnerGone:
            gone.add(owner)
            held = False
        except BaseException:  # the owner did not answer, or the drain ran out of time
            await _drop_at(target, object_id, peer)
            raise
        if held:
            moved, moved_bytes = moved + 1, moved_bytes + size_bytes
        else:  # freed meanwhile, or its owner is gone: nobody can ask for it
            await _drop_at(target, object_id, peer)
        store.free(object_id)
    return moved, moved_bytes


class _OwnerGone(Exception):
    """The owner's process has ended: its objects can never be asked for."""


async def _adopt(object_id: bytes, size_bytes: int, owner: str, targets: list[dict],
                 peer: Callable[..., Awaitable], here: str) -> dict:
    """The target that took the object (the first of ``targets`` that did)."""
    if not targets:
        raise DrainFailed(f"no other live node to take object {object_id.hex()}")
    failures = []
    for target in targets:
        try:
            await (await peer(target["address"])).call(
                "adopt_object", [object_id, here, size_bytes, owner])
            return target
        except asyncio.CancelledError:  # the drain's deadline: the copy may be made
            await _drop_at(target, object_id, peer)
            raise
        except Exception as exc:  # gone, draining, full, or the pull failed: the next node
            # (which has undone its own pull: ``NodeManager.adopt_object``)
            failures.append(f"{target['address']}: {type(exc).__name__}: {exc}")
    raise DrainFailed(f"no node took object {object_id.hex()} ({size_bytes} bytes): "
                      + "; ".join(failures))


async def _tell_owner(object_id: bytes, owner: str, target: dict,
                      peer: Callable[..., Awaitable], live_hosts: set[str],
                      timeout_s: float) -> bool:
    """Whether the owner still holds the object (and now knows where it lives); it has
    ``timeout_s`` to accept the connection (where its process has ended, the connection is
    refused all that time) and as long to answer.

    Raises:
        _OwnerGone: its process has ended (nothing listens at its address), or its node
            has left the cluster.
        DrainFailed: it could not be reached otherwise, or did not answer in time.
    """
    if owner.rpartition(":")[0] not in live_hosts:
        raise _OwnerGone()
    try:
        conn = await peer(owner, timeout_s)
    except RpcError as exc:
        if isinstance(exc.__cause__, ConnectionRefusedError):
            raise _OwnerGone() from exc
        raise DrainFailed(f"could not reach the owner of object {object_id.hex()} ({owner}): "
                          f"{exc}") from exc
    try:
        return await conn.call_with_timeout(
            "object_moved", [object_id, target["node_id"], target["address"]], timeout_s)
    except ConnectionLost as exc:
        raise _OwnerGone() from exc
    except RpcError as exc:  # no answer in time: it may still hold the object
        raise DrainFailed(f"the owner of object {object_id.hex()} ({owner}) did not answer: "
                          f"{exc}") from exc


async def _drop_at(target: dict, object_id: bytes, peer: Callable[..., Awaitable]) -> None:
    """Best effort: have ``target`` drop a copy it may have adopted (one no owner knows of
    would stay there for good: a primary copy is never evicted)."""
    try:
        (await peer(target["address"])).notify("free_objects", [object_id])
    except Exception as exc:  # that node is gone, and the copy with it
        logger.info("could not drop %s at %s: %s", object_id.hex(), target["address"], exc)
