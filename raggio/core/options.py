"""Validating ``@remote`` and ``.options()`` arguments, with Ray's names and errors.

One table per kind (task, actor, actor method) maps each option to the types
it accepts and a check of its value, as Ray's ``ray_option_utils`` does: a
value of the wrong type raises TypeError, a value out of range ValueError,
an unknown option ValueError, each with Ray's message. ``task_options`` and
``actor_options`` then apply the rules between options (no ``max_calls`` in
``.options()``, a name for ``get_if_exists``...), warn about the deprecated
ones and turn ``placement_group=`` into a PlacementGroupSchedulingStrategy.
Everything here runs once per decoration or ``.options()`` call, never per
``.remote()``. ``resources_of`` turns options into a lease's resource request.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

from raggio.common.labels import fallback_strategy_error, selector_error
from raggio.common.placement_group_resources import BUNDLE_RESOURCE
from raggio.common.runtime_env import check_runtime_env
from raggio.core.placement_group import PlacementGroup
from raggio.core.scheduling_strategies import (NodeAffinitySchedulingStrategy,
                                               NodeLabelSchedulingStrategy,
                                               PlacementGroupSchedulingStrategy)

_NONE = type(None)
#: Ray's resource granularity: quantities are kept in units of 1/10,000.
_RESOURCE_UNIT_SCALING = 10_000

#: A check returns None when the value is fine, else the ValueError message.
Check = Callable[[Any], "str | None"]


def _counting(name: str, infinite: bool = True) -> tuple[tuple, Check]:
    if infinite:
        return (int, _NONE), lambda x: None if x is None or x >= -1 else (
            f"The keyword '{name}' only accepts None, 0, -1 or a positive integer, where -1 "
            "represents infinity.")
    return (int, _NONE), lambda x: None if x is None or x >= 0 else (
        f"The keyword '{name}' only accepts None, 0 or a positive integer.")


def _quantity_error(name: str, quantity) -> str | None:
    if not isinstance(quantity, (int, float)):
        raise TypeError(f"The quantity of resource {name} must be a number, got "
                        f"{type(quantity)}")
    if quantity < 0:
        return f"The quantity of resource {name} cannot be negative"
    if (isinstance(quantity, float) and quantity != 0.0
            and int(quantity * _RESOURCE_UNIT_SCALING) == 0):
        return (f"The precision of the fractional quantity of resource {name} cannot go "
                "beyond 0.0001")
    return None


def _resource(name: str) -> tuple[tuple, Check]:
    return (float, int, _NONE), lambda x: None if x is None else _quantity_error(name, x)


def _resources_error(resources: dict | None) -> str | None:
    if resources is None:
        return None
    if "CPU" in resources or "GPU" in resources:
        return ("Use the 'num_cpus' and 'num_gpus' keyword instead of 'CPU' and 'GPU' in "
                "'resources' keyword")
    if "memory" in resources or "object_store_memory" in resources:
        return "The resources dictionary must not contain the key 'memory' or 'object_store_memory'"
    if BUNDLE_RESOURCE in resources:
        return ("The resource should not include `bundle` which is reserved for Ray. "
                f"resources: {resources}")
    for name, quantity in resources.items():
        error = _quantity_error(name, quantity)
        if error:
            return error
    return None


def _retry_exceptions_error(value) -> str | None:
    if isinstance(value, bool) or all(
            isinstance(t, type) and issubclass(t, Exception) for t in value):
        return None
    return "retry_exceptions must be either a boolean or a list of exceptions"


def _num_returns_error(value) -> str | None:
    if value is None or (isinstance(value, int) and value >= 0):
        return None
    if value in ("streaming", "dynamic"):  # generators (see core/generators.py)
        return None
    return ("The keyword 'num_returns' only accepts None, a non-negative integer, "
            "'streaming' (for generators), or 'dynamic'.")


def _namespace_error(value) -> str | None:
    return ('"" is not a valid namespace. Pass None to not specify a namespace.'
            if value == "" else None)


def check_namespace(namespace) -> None:
    """As Ray: a namespace is None or a non-empty string (TypeError, ValueError)."""
    if namespace is not None and not isinstance(namespace, str):
        raise TypeError(f"namespace must be None or a string, got {type(namespace).__name__}.")
    error = _namespace_error(namespace)
    if error:
        raise ValueError(error)


def _runtime_env_error(runtime_env) -> None:
    check_runtime_env(runtime_env)
    return None


def _scheduling_strategy_error(value) -> str | None:
    if not isinstance(value, str) or value in ("DEFAULT", "SPREAD"):
        return None
    return (f"Invalid scheduling_strategy value {value}. Valid values are [\"DEFAULT\", "
            "\"SPREAD\", PlacementGroupSchedulingStrategy, NodeAffinitySchedulingStrategy, "
            "NodeLabelSchedulingStrategy]")


def _lifetime_error(value) -> str | None:
    if value in (None, "detached", "non_detached"):
        return None
    return "actor `lifetime` argument must be one of 'detached', 'non_detached' and 'None'."


def _object_store_memory_for_tasks(value) -> str | None:
    return None if value is None else "Setting 'object_store_memory' is not implemented for tasks"


_COMMON: dict[str, tuple[tuple, Check | None]] = {
    "label_selector": ((dict, _NONE), selector_error),
    "fallback_strategy": ((list, _NONE), fallback_strategy_error),
    "accelerator_type": ((str, _NONE), None),
    "memory": _resource("memory"),
    "name": ((str, _NONE), None),
    "num_cpus": _resource("num_cpus"),
    "num_gpus": _resource("num_gpus"),
    "object_store_memory": _counting("object_store_memory", False),
    "placement_group": ((_NONE, str, PlacementGroup), None),
    "placement_group_bundle_index": ((int,), None),
    "placement_group_capture_child_tasks": ((bool, _NONE), None),
    "resources": ((dict, _NONE), _resources_error),
    "runtime_env": ((dict, _NONE), _runtime_env_error),
    "scheduling_strategy": ((_NONE, str, PlacementGroupSchedulingStrategy,
                             NodeAffinitySchedulingStrategy, NodeLabelSchedulingStrategy),
                            _scheduling_strategy_error),
    "enable_task_events": ((bool,), None),
    "_metadata": ((dict, _NONE), None),
    "_labels": ((dict, _NONE), None),
}

TASK_OPTIONS = dict(_COMMON, **{
    "max_calls": _counting("max_calls", False),
    "max_retries": _counting("max_retries"),
    "num_returns": ((int, str, _NONE), _num_returns_error),
    "object_store_memory": ((int, _NONE), _object_store_memory_for_tasks),
    "retry_exceptions": ((bool, list, tuple), _retry_exceptions_error),
    "_generator_backpressure_num_objects": ((int, _NONE), None),
})

ACTOR_OPTIONS = dict(_COMMON, **{
    "concurrency_groups": ((list, dict, _NONE), None),
    "enable_tensor_transport": ((bool, _NONE), None),
    "lifetime": ((str, _NONE), _lifetime_error),
    "max_concurrency": _counting("max_concurrency", False),
    "max_restarts": _counting("max_restarts"),
    "max_task_retries": _counting("max_task_retries"),
    "max_pending_calls": _counting("max_pending_calls"),
    "namespace": ((str, _NONE), _namespace_error),
    "get_if_exists": ((bool,), None),
    "allow_out_of_order_execution": ((bool, _NONE), None),
})

METHOD_OPTIONS = {
    "num_returns": ((int, str, _NONE), _num_returns_error),
    "max_task_retries": _counting("max_task_retries"),
    "retry_exceptions": ((bool, list, tuple), _retry_exceptions_error),
    "name": ((str, _NONE), None),
    "concurrency_group": ((str, _NONE), None),
    "enable_task_events": ((bool,), None),
    "_generator_backpressure_num_objects": ((int, _NONE), None),
    "tensor_transport": ((str, _NONE), None),
}

def validate(options: dict, table: dict, what: str) -> dict:
    """Check each option's name, type and value against ``table``; return ``options``.

    Raises:
        ValueError: an unknown option, or a value out of range.
        TypeError: a value of the wrong type.
    """
    for name, value in options.items():
        rule = table.get(name)
        if rule is None:
            raise ValueError(f"Invalid option keyword {name} for {what}. "
                             f"Valid ones are {list(table)}.")
        types, check = rule
        if not isinstance(value, types):
            raise TypeError(f"The type of keyword '{name}' must be {types}, but received "
                            f"type {type(value)}")
        error = check(value) if check is not None else None
        if error:
            raise ValueError(error)
    return options


def task_options(defaults: dict, new: dict, *, in_options: bool) -> dict:
    """The options of a remote function: ``defaults`` (already checked) updated by ``new``.

    Raises:
        ValueError, TypeError: as ``validate``, and Ray's rules between options.
    """
    validate(new, TASK_OPTIONS, "remote functions")
    if in_options and "max_calls" in new:
        raise ValueError("Setting 'max_calls' is not supported in '.options()'.")
    return _finish(_merge(defaults, new), new)


def actor_options(defaults: dict, new: dict, *, in_options: bool) -> dict:
    """The options of an actor class: ``defaults`` (already checked) updated by ``new``.

    Raises:
        ValueError, TypeError: as ``validate``, and Ray's rules between options.
    """
    validate(new, ACTOR_OPTIONS, "actors")
    if in_options and "concurrency_groups" in new:
        raise ValueError("Setting 'concurrency_groups' is not supported in '.options()'.")
    options = _merge(defaults, new)
    if options.get("get_if_exists") and not options.get("name"):
        raise ValueError("The actor name must be specified to use `get_if_exists`.")
    if options.get("max_concurrency") == 0:
        raise ValueError("max_concurrency must be >= 1")
    if "object_store_memory" in new:
        warnings.warn(
            "Setting 'object_store_memory' for actors is deprecated since it doesn't actually "
            "reserve the required object store memory. Use object spilling that's enabled by "
            "default instead to bypass the object store memory size limitation.",
            DeprecationWarning, stacklevel=4)
    return _finish(options, new)


def method_options(options: dict) -> dict:
    """Check ``@method(...)`` or ``handle.method.options(...)`` arguments."""
    return validate(options, METHOD_OPTIONS, "actor methods")


def _merge(defaults: dict, new: dict) -> dict:
    """``defaults`` updated by ``new``; ``_metadata`` is merged namespace by namespace."""
    merged = dict(defaults, **new)
    if defaults.get("_metadata") is not None and new.get("_metadata") is not None:
        metadata = dict(defaults["_metadata"])
        for namespace, config in new["_metadata"].items():
            metadata[namespace] = dict(metadata.get(namespace, {}), **config)
        merged["_metadata"] = metadata
    return merged


def _finish(options: dict, new: dict) -> dict:
    """Turn the deprecated placement-group options into a scheduling strategy (with Ray's
    warnings) and drop options set to None (their defaults apply). ``new`` are the options
    just given (a group given earlier is already a strategy, which a new group replaces)."""
    group = options.pop("placement_group", "default")
    index = options.pop("placement_group_bundle_index", -1)
    capture = options.pop("placement_group_capture_child_tasks", None)
    strategy = options.get("scheduling_strategy")
    if (group not in ("default", None) and strategy is not None
            and ("scheduling_strategy" in new
                 or not isinstance(strategy, PlacementGroupSchedulingStrategy))):
        raise ValueError("Placement groups should be specified via the scheduling_strategy "
                         "option. The placement_group option is deprecated.")
    for name, used in (("placement_group", group != "default"),
                       ("placement_group_bundle_index", index != -1),
                       ("placement_group_capture_child_tasks", bool(capture))):
        if used:
            warnings.warn(f"{name} parameter is deprecated. Use scheduling_strategy="
                          "PlacementGroupSchedulingStrategy(...) instead.",
                          DeprecationWarning, stacklevel=4)
    if isinstance(group, PlacementGroup):
        options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(group, index, capture)
    elif group is None and strategy is None:
        options["scheduling_strategy"] = "DEFAULT"  # no group, and none captured from a parent
    elif index != -1:
        raise ValueError("If placement group is not set, the value of bundle index must be -1.")
    return {name: value for name, value in options.items() if value is not None}


def resources_of(options: dict, default_cpus: float) -> dict[str, float]:
    request = dict(options.get("resources") or {})
    cpus = options.get("num_cpus", default_cpus)
    if cpus:
        request["CPU"] = float(cpus)
    if options.get("num_gpus"):
        request["GPU"] = float(options["num_gpus"])
    if options.get("memory"):
        request["memory"] = float(options["memory"])
    return request
