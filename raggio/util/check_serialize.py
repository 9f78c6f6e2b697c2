"""``inspect_serializability``: which part of an object keeps it from being pickled (Ray's
``ray.util.inspect_serializability``).

raggio ships functions, classes and what pickle refuses with cloudpickle, so this walks
what cloudpickle would take with the object: a function's globals and closure variables,
an object's attributes, a class's members. It goes ``depth`` levels down, stops at the
first part that fails at each level (as Ray does) and reports the innermost ones that
fail, printing the walk as it goes.
"""

from __future__ import annotations

import inspect
from typing import Any, Iterator

import cloudpickle


class FailureTuple:
    """One part that does not pickle: the object, the names leading to it, its parent."""

    def __init__(self, obj: Any, path: tuple[str, ...], parent: Any):
        self.obj = obj
        self.path = path
        self.parent = parent

    def __repr__(self) -> str:
        names = [str(name) for name in self.path] or ["unknown"]
        return (f"FailTuple({names[-1]} [path={' -> '.join(names)}, obj={self.obj}, "
                f"parent={self.parent}])")


def inspect_serializability(base_obj: Any, name: str | None = None, depth: int = 3,
                            print_file: Any = None) -> tuple[bool, set[FailureTuple]]:
    """Find what keeps ``base_obj`` from being serialized, printing what it checks.

    Args:
        base_obj: the object, function or class to check.
        name: what to call it in the report.
        depth: how many levels of globals, closure variables and attributes to walk.
        print_file: where to print the report (``print``'s ``file``; stdout when None).

    Returns:
        (whether it serializes, the innermost parts found that do not).
    """
    report = _Report(print_file)
    title = f"Checking Serializability of {base_obj}"
    report.line("=" * min(len(title), 80))
    report.line(title)
    report.line("=" * min(len(title), 80))
    failures: set[FailureTuple] = set()
    serializable = _inspect(base_obj, name, depth, None, (), failures, report)
    if not serializable:
        report.line("Variable(s) found to be non-serializable:")
        for failure in failures:
            report.line(f"    {failure}")
        report.line("Consider creating them inside the function or class instead, or "
                    "registering a serializer (raggio.util.register_serializer).")
    report.line("=" * min(len(title), 80))
    return serializable, failures


def _inspect(obj: Any, name: str | None, depth: int, parent: Any, path: tuple[str, ...],
             failures: set[FailureTuple], report: _Report) -> bool:
    """True if ``obj`` serializes; else record its innermost failing parts in ``failures``."""
    try:
        cloudpickle.dumps(obj)
        return True
    except Exception as exc:  # noqa: BLE001 (any error of pickling is the finding)
        report.line(f"!!! FAIL serialization: {exc}")
    here = path + ((name,) if name is not None else ())
    found_inside = False
    if depth > 0:
        report.level += 1
        for part_name, part in _parts(obj):
            report.line(f"Serializing {part_name!r} {part}...")
            if not _inspect(part, part_name, depth - 1, obj, here, failures, report):
                found_inside = True
                break
        report.level -= 1
    if not found_inside:
        failures.add(FailureTuple(obj, here, parent))
    return False


def _parts(obj: Any) -> Iterator[tuple[str, Any]]:
    """What cloudpickle takes along with ``obj``."""
    if inspect.isfunction(obj):
        closure = inspect.getclosurevars(obj)
        yield from closure.globals.items()
        yield from closure.nonlocals.items()
        return
    # An instance's own attributes first: its bound methods fail whenever it does, and
    # would hide the attribute to blame.
    members = vars(obj).items() if hasattr(obj, "__dict__") else inspect.getmembers(obj)
    for member_name, member in list(members):
        if (member_name.startswith("__") and member_name.endswith("__")
                or inspect.isbuiltin(member)
                or inspect.ismethod(member) and member.__self__ is obj):
            continue
        yield member_name, member


class _Report:
    def __init__(self, print_file: Any):
        self.print_file = print_file
        self.level = 0

    def line(self, text: str) -> None:
        print("    " * self.level + text, file=self.print_file)
