"""Building task specs in the caller's thread: ids, encoded arguments, options.

A spec is a plain dict that travels by msgpack to the worker. Arguments are
encoded one by one: a top-level ObjectRef is passed by reference (the worker
fetches it; the caller holds it until the task ends), a small value inline,
a large value through the object store. Refs nested in containers are
pickled with the value and stay refs on the other side.

Arguments are bound against the function's (or method's, or actor
constructor's) signature at submission, so that a wrong call fails in the
caller with Python's own TypeError, as Ray's ``.remote()`` does. Each
function's *call shape* is worked out once (``call_shape``), and a call with
no keywords and a plausible number of positional arguments passes on two
comparisons; anything else goes through ``check_call``.
"""

from __future__ import annotations

import inspect
import os
import reprlib
import sys

import cloudpickle
from raggio.core import context
from raggio.common.ids import object_id_bytes
from raggio.core.object_ref import ObjectRef
from raggio.core.serialization import serialize
from raggio.common.states import PENDING_ARGS_AVAIL, PENDING_NODE_ASSIGNMENT


#: The most positional arguments any call can have (for a signature with ``*args``).
_UNBOUNDED = 2**62

#: The call shape of a callable whose signature cannot be read: every call passes.
UNCHECKED = (0, _UNBOUNDED, None)


def call_shape(fn, *, skip_first: bool = False) -> tuple[int, int, list | None]:
    """``(fewest, most, parameters)``: a call with no keyword arguments and between
    ``fewest`` and ``most`` positional ones binds to ``fn``; ``parameters`` lists
    ``[name, kind, default]`` with ``default`` the repr of the default value or None
    (plain values, so that shapes travel by msgpack).

    Args:
        fn: the function, method or class constructor.
        skip_first: drop the first parameter (``self`` of a method).

    Raises:
        ValueError: ``skip_first`` and ``fn`` takes no parameter (a method without self).
    """
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # a builtin or extension without a signature
        return UNCHECKED
    if skip_first:
        if not parameters:
            raise ValueError("Methods must take a 'self' argument, but the method "
                             f"'{fn.__name__}' does not have one.")
        parameters = parameters[1:]
    fewest = most = 0
    required_keyword = False
    for parameter in parameters:
        required = parameter.default is inspect.Parameter.empty
        if parameter.kind <= inspect.Parameter.POSITIONAL_OR_KEYWORD:
            most += 1
            fewest += required
        elif parameter.kind == inspect.Parameter.VAR_POSITIONAL:
            most = _UNBOUNDED
        elif parameter.kind == inspect.Parameter.KEYWORD_ONLY:
            required_keyword |= required
    if required_keyword:
        fewest, most = 1, 0  # no call without keywords binds: always check
    return fewest, most, [[p.name, int(p.kind), None if p.default is inspect.Parameter.empty
                           else reprlib.repr(p.default)] for p in parameters]


def check_call(parameters: list | None, args: tuple, kwargs: dict) -> None:
    """Raise Python's TypeError where ``args`` and ``kwargs`` do not bind to ``parameters``
    (from ``call_shape``), with the message Ray gives ("missing a required argument: 'x'",
    "too many positional arguments", "got an unexpected keyword argument 'y'")."""
    if parameters is None or _binds(parameters, args, kwargs):
        return
    try:
        signature_of(parameters).bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(str(exc)) from None


def signature_of(parameters: list | None) -> inspect.Signature | None:
    """The signature ``parameters`` (from ``call_shape``) describe (defaults as their repr)."""
    if parameters is None:
        return None
    return inspect.Signature([
        inspect.Parameter(name, inspect._ParameterKind(kind),
                          default=inspect.Parameter.empty if default is None
                          else _Default(default))
        for name, kind, default in parameters])


class _Default:
    """A default value seen from another process: only its repr travels."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _binds(parameters: list, args: tuple, kwargs: dict) -> bool:
    """True only where the call surely binds (a cheap pass for calls with keywords);
    False sends the call to ``inspect.Signature.bind`` for the verdict and its message."""
    left = len(args)
    matched = 0
    any_keyword = False
    for name, kind, default in parameters:
        has_default = default is not None
        if kind <= 1:  # positional-only or positional-or-keyword
            if left:
                left -= 1
                if kind == 1 and name in kwargs:
                    return False  # given twice
            elif kind == 1 and name in kwargs:
                matched += 1
            elif not has_default:
                return False
        elif kind == 2:  # *args
            left = 0
        elif kind == 3:  # keyword-only
            if name in kwargs:
                matched += 1
            elif not has_default:
                return False
        else:  # **kwargs
            any_keyword = True
    return not left and (any_keyword or matched == len(kwargs))


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
