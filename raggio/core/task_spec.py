"""Building task specs in the caller's thread: ids, encoded arguments, options.

A spec is a plain dict that travels by msgpack to the worker. Arguments are
encoded one by one: a top-level ObjectRef is passed by reference (the worker
fetches it; the caller holds it until the task ends), a small value inline,
a large value through the object store. Refs nested in containers are
pickled with the value and stay refs on the other side.
"""

from __future__ import annotations

import os
import sys

import cloudpickle
from raggio.core import context
from raggio.core.ids import object_id_bytes
from raggio.core.object_ref import ObjectRef
from raggio.core.serialization import serialize
from raggio.core.task_events import PENDING_ARGS_AVAIL, PENDING_NODE_ASSIGNMENT


def encode_args(core, args: tuple, kwargs: dict, name: str) -> tuple[list, list[str], list]:
    """Encode arguments; return (encoded, kwarg names, refs the task must hold)."""
    encoded = []
    held: list[ObjectRef] = []
    values = list(args) + list(kwargs.values())
    for position, value in enumerate(values):
        if isinstance(value, ObjectRef):
            encoded.append(["r", value._id, value._owner])
            held.append(value)
            continue
        try:
            serialized = serialize(value)
        except TypeError as exc:
            where = (f"argument {position}" if position < len(args)
                     else f"keyword argument {list(kwargs)[position - len(args)]!r}")
            raise TypeError(f"Could not serialize {where} of {name}: {exc}") from exc
        if serialized.size_bytes < core.cfg.max_inline_bytes:
            encoded.append(["v", serialized.to_inline()])
        else:
            ref = core.put_serialized(serialized)
            encoded.append(["r", ref._id, ref._owner])
            held.append(ref)
    return encoded, list(kwargs), held


def return_ids(core, task_id: bytes, num_returns: int,
               kind: str = "task call") -> tuple[list[bytes], list[ObjectRef]]:
    ids = [object_id_bytes(task_id, i) for i in range(num_returns)]
    site = user_call_site(kind) if core.cfg.record_ref_creation_sites else None
    for object_id in ids:
        core.refs.create_owned(object_id).call_site = site
    return ids, [ObjectRef(object_id, core.address) for object_id in ids]


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def user_call_site(kind: str) -> str:
    """``(kind) | file:line:function`` of the innermost frame outside raggio, as Ray's
    call sites read."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    if frame is None:
        return f"({kind}) | <unknown>"
    code = frame.f_code
    return f"({kind}) | {code.co_filename}:{frame.f_lineno}:{code.co_name}"


def encode_retry_exceptions(value) -> bool | list[bytes]:
    if isinstance(value, bool):
        return value
    return [cloudpickle.dumps(t) for t in value]


def track_submission(core, spec: dict, held: list[ObjectRef], info_id: int) -> None:
    """Keep the task's argument objects alive until it finishes; open its record in the
    task history (in the caller's thread, which knows the parent task). A task submitted
    by another task names it (``parent_task_id``), for a recursive ``cancel``."""
    parent = context.current_task_id(core)
    if parent is not None:
        spec["parent_task_id"] = parent
    if held:
        arg_ids = [ref._id for ref in held]
        core.refs.hold_task_args(spec["task_id"], arg_ids)
        core.task_events.submitted(spec["task_id"], 0, info_id, PENDING_ARGS_AVAIL, parent,
                                   arg_ids)
    else:
        core.task_events.submitted(spec["task_id"], 0, info_id, PENDING_NODE_ASSIGNMENT, parent)
