"""Validating ``@remote`` and ``.options()`` arguments, with Ray's names and errors.

One table per kind (task, actor) lists each option with its check; an
unknown option or a bad value raises ValueError/TypeError naming it, as Ray
does. ``resources_of`` turns options into the resource request of a lease.
"""

from __future__ import annotations

from typing import Any, Callable


def _non_negative_number(name: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise ValueError(f"The keyword '{name}' only accepts a non-negative number, got {value!r}.")


def _int_at_least(minimum: int) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ValueError(f"The keyword '{name}' only accepts an integer >= {minimum}, "
                             f"got {value!r}.")
    return check


def _resources(name: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise TypeError(f"The keyword 'resources' takes a dict, got {type(value).__name__}.")
    for key, amount in value.items():
        if key in ("CPU", "GPU"):
            raise ValueError(f"Use the 'num_{key.lower()}s' keyword instead of "
                             f"resources={{'{key}': ...}}.")
        _non_negative_number(f"resources[{key!r}]", amount)


def _retry_exceptions(name: str, value: Any) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, (list, tuple)) and all(
            isinstance(t, type) and issubclass(t, BaseException) for t in value):
        return
    raise TypeError("retry_exceptions must be a bool or a list of exception types, "
                    f"got {value!r}.")


def _scheduling_strategy(name: str, value: Any) -> None:
    if value is None or value in ("DEFAULT", "SPREAD"):
        return
    if type(value).__name__ in ("NodeAffinitySchedulingStrategy",
                                "PlacementGroupSchedulingStrategy"):
        return
    raise ValueError(f"Invalid scheduling_strategy {value!r}: use 'DEFAULT', 'SPREAD' or a "
                     "strategy from raggio.util.scheduling_strategies.")


def _runtime_env(name: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise TypeError(f"runtime_env must be a dict, got {type(value).__name__}.")
    env_vars = value.get("env_vars", {})
    if not isinstance(env_vars, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in env_vars.items()):
        raise TypeError("runtime_env['env_vars'] must be a dict of str to str.")


def _num_returns(name: str, value: Any) -> None:
    if value in ("streaming", "dynamic"):  # generators (see core/generators.py)
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError("The keyword 'num_returns' only accepts a non-negative integer, "
                         f"'streaming' (for generators), or 'dynamic'; got {value!r}.")


def _optional_int_at_least_1(name: str, value: Any) -> None:
    if value is not None:
        _int_at_least(1)(name, value)


def _optional_str(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"The keyword '{name}' takes a string, got {type(value).__name__}.")


def _lifetime(name: str, value: Any) -> None:
    if value not in (None, "detached", "non_detached"):
        raise ValueError("actor `lifetime` argument must be one of 'detached', "
                         f"'non_detached' and 'None', got {value!r}.")


def _anything(name: str, value: Any) -> None:
    pass


_COMMON = {
    "num_cpus": _non_negative_number, "num_gpus": _non_negative_number,
    "resources": _resources, "memory": _non_negative_number,
    "accelerator_type": _optional_str, "scheduling_strategy": _scheduling_strategy,
    "runtime_env": _runtime_env, "label_selector": _anything, "_metadata": _anything,
    "placement_group": _anything, "placement_group_bundle_index": _anything,
    "placement_group_capture_child_tasks": _anything,
}

TASK_OPTIONS = dict(_COMMON, **{
    "num_returns": _num_returns, "max_retries": _int_at_least(-1),
    "retry_exceptions": _retry_exceptions, "max_calls": _int_at_least(0), "name": _optional_str,
    "_generator_backpressure_num_objects": _optional_int_at_least_1,
})

ACTOR_OPTIONS = dict(_COMMON, **{
    "max_restarts": _int_at_least(-1), "max_task_retries": _int_at_least(-1),
    "max_concurrency": _int_at_least(1), "name": _optional_str, "namespace": _optional_str,
    "lifetime": _lifetime, "get_if_exists": _anything, "max_pending_calls": _int_at_least(-1),
    "concurrency_groups": _anything,
})

METHOD_OPTIONS = {"num_returns": _num_returns, "max_task_retries": _int_at_least(-1),
                  "retry_exceptions": _retry_exceptions, "name": _optional_str,
                  "concurrency_group": _anything,
                  "_generator_backpressure_num_objects": _optional_int_at_least_1}


def validate(options: dict, table: dict, what: str) -> dict:
    for name, value in options.items():
        check = table.get(name)
        if check is None:
            raise ValueError(f"Invalid option keyword {name} for {what}. Valid ones are "
                             f"{sorted(k for k in table if not k.startswith('_'))}.")
        check(name, value)
    return options


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
