"""Ray's ``ray.util.annotations``: the stability marks of an API, and raggio's deprecation
warning category.

``PublicAPI``, ``DeveloperAPI`` and ``Deprecated`` are the decorators that libraries built
on Ray put on their own classes and functions: each adds Ray's note to the docstring and
marks the object as Ray does (``obj._annotated_type``), so tools that read Ray's marks
read these. ``Deprecated(warning=True)`` also warns when the object is called.

``RayDeprecationWarning`` is shown once per module by default, as in Ray (a plain
DeprecationWarning is hidden outside ``__main__``), so users see which old names they use.
"""

from __future__ import annotations

import enum
import functools
import inspect
import warnings
from typing import Any, Callable


class RayDeprecationWarning(DeprecationWarning):
    """A deprecated raggio (Ray) API was used; the message names its replacement."""


warnings.filterwarnings("module", category=RayDeprecationWarning)


class AnnotationType(enum.Enum):
    """Which of Ray's marks an API carries."""

    PUBLIC_API = "PublicAPI"
    DEVELOPER_API = "DeveloperAPI"
    DEPRECATED = "Deprecated"
    UNKNOWN = "Unknown"


def PublicAPI(*args: Any, stability: str = "stable", api_group: str = "Others"):  # noqa: N802
    """Mark a class or function as public API: ``@PublicAPI`` or
    ``@PublicAPI(stability="beta", api_group="...")``.

    Args:
        stability: "stable" (kept compatible across minor releases), "beta" or "alpha"
            (may change; the docstring says so).
        api_group: the group the API is documented under.

    Raises:
        ValueError: an unknown ``stability``.
    """
    if args:
        return PublicAPI()(*args)
    if stability not in ("stable", "beta", "alpha"):
        raise ValueError(f"stability must be 'stable', 'beta' or 'alpha', got {stability!r}")

    def mark(obj):
        if stability != "stable":
            _append_doc(obj, f"**PublicAPI ({stability}):** This API is in {stability} and "
                             "may change before becoming stable.")
        return _mark(obj, AnnotationType.PUBLIC_API, api_group)
    return mark


def DeveloperAPI(*args: Any):  # noqa: N802
    """Mark a class or function as a developer API (``@DeveloperAPI``): lower level, for
    advanced users and library authors; it may change across minor releases."""
    if args:
        return DeveloperAPI()(*args)

    def mark(obj):
        _append_doc(obj, "**DeveloperAPI:** This API may change across minor Ray releases.")
        return _mark(obj, AnnotationType.DEVELOPER_API)
    return mark


def Deprecated(*args: Any, message: str = "", warning: bool = False):  # noqa: N802
    """Mark a class or function as deprecated: ``@Deprecated`` or
    ``@Deprecated(message="Use h() instead.", warning=True)``.

    Args:
        message: why, and what to use instead; added to the docstring (and the warning).
        warning: also warn (``RayDeprecationWarning``) each time it is called or, for a
            class, instantiated.
    """
    if args:
        return Deprecated()(*args)
    note = "\n".join(filter(None, ["**DEPRECATED**: This API is deprecated and may be "
                                   "removed in future Ray releases.", message]))
    text = "\n".join(filter(None, ["This API is deprecated and may be removed in future Ray "
                                   "releases.", message]))

    def mark(obj):
        _append_doc(obj, note)
        _mark(obj, AnnotationType.DEPRECATED)
        if not warning:
            return obj
        if inspect.isclass(obj):
            obj.__init__ = _warning_before(obj.__init__, text)
            return obj
        return _warning_before(obj, text)
    return mark


def _warning_before(function: Callable, text: str) -> Callable:
    @functools.wraps(function)
    def warn_then_call(*args, **kwargs):
        warnings.warn(text, RayDeprecationWarning, stacklevel=2)
        return function(*args, **kwargs)
    return warn_then_call


def _append_doc(obj, note: str) -> None:
    """Add ``note`` as a last paragraph of the docstring, at the body's indentation."""
    doc = (obj.__doc__ or "").rstrip()
    body = [line for line in doc.splitlines()[1:] if line.strip()]
    indent = " " * (len(body[0]) - len(body[0].lstrip())) if body else ""
    obj.__doc__ = f"{doc}\n\n{indent}" + note.replace("\n", "\n" + indent) + "\n"


def _mark(obj, annotation: AnnotationType, api_group: str = "Others"):
    """Ray's marks (``_annotated`` names the object itself, so subclasses are not marked)."""
    if hasattr(obj, "__name__"):
        obj._annotated = obj.__name__
        obj._annotated_type = annotation
        obj._annotated_api_group = api_group
    return obj
