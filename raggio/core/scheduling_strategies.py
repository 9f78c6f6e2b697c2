"""Scheduling strategies, with Ray's names: where a task or actor may run.

The classes: NodeAffinitySchedulingStrategy, PlacementGroupSchedulingStrategy and
NodeLabelSchedulingStrategy (with its operators In, NotIn, Exists, DoesNotExist).
Besides them, ``scheduling_strategy`` takes the strings "DEFAULT"
(hybrid: the local node until it is busy, then the best other node) and
"SPREAD" (across the nodes, round robin).

``resolve`` turns a task's or actor's strategy, ``label_selector`` and
``fallback_strategy`` into the wire form its lease request carries (a
string, a node-affinity dict, or a dict with label conditions and the base
strategy under ``"base"``; see ``raggio/common/labels.py`` for conditions).
The classes' public path is ``raggio.util.scheduling_strategies``.
"""

from __future__ import annotations

from raggio.common.labels import selector_conditions
from raggio.common.placement_group_resources import in_placement_group


class NodeAffinitySchedulingStrategy:
    """Run on the node with ``node_id`` (hex). With ``soft=True`` run elsewhere if that
    node is dead or cannot fit the task; otherwise such a task fails with
    TaskUnschedulableError (an actor with ActorUnschedulableError)."""

    def __init__(self, node_id: str, soft: bool, _spill_on_unavailable: bool = False,
                 _fail_on_unavailable: bool = False):
        if not isinstance(node_id, str):
            node_id = node_id.hex()
        self.node_id = node_id
        self.soft = soft
        self._spill_on_unavailable = _spill_on_unavailable
        self._fail_on_unavailable = _fail_on_unavailable

    def __repr__(self):
        return f"NodeAffinitySchedulingStrategy(node_id={self.node_id!r}, soft={self.soft})"


class PlacementGroupSchedulingStrategy:
    """Run inside a placement group: in bundle ``placement_group_bundle_index``, or any of its
    bundles with -1. With ``placement_group_capture_child_tasks`` the tasks and actors this
    one starts run in the group too."""

    def __init__(self, placement_group, placement_group_bundle_index: int = -1,
                 placement_group_capture_child_tasks: bool | None = None):
        self.placement_group = placement_group
        self.placement_group_bundle_index = placement_group_bundle_index
        self.placement_group_capture_child_tasks = placement_group_capture_child_tasks


def _check_operator_values(values: tuple, operator: str) -> None:
    if not values:
        raise ValueError(f"The variadic parameter of the {operator} operator must be a non-empty "
                         f'tuple: e.g. {operator}("value1", "value2").')
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise ValueError(f"Type of value in position {index} for the {operator} operator "
                             f'must be str (e.g. {operator}("value1", "value2")) but got '
                             f"{value} of type {type(value)}.")


class In:
    """The node's label has one of ``values``."""

    def __init__(self, *values: str):
        _check_operator_values(values, "In")
        self.values = list(values)


class NotIn:
    """The node's label is missing or has none of ``values``."""

    def __init__(self, *values: str):
        _check_operator_values(values, "NotIn")
        self.values = list(values)


class Exists:
    """The node has the label, with any value."""


class DoesNotExist:
    """The node does not have the label."""


_OPERATORS = {In: "in", NotIn: "!in", Exists: "exists", DoesNotExist: "!exists"}


def _conditions(expressions, param: str) -> list[list]:
    if expressions is None:
        return []
    if not isinstance(expressions, dict):
        raise ValueError(f'The {param} parameter must be a map (e.g. {{"key1": In("value1")}}) '
                         f"but got type {type(expressions)}.")
    conditions = []
    for key, operator in expressions.items():
        if not isinstance(key, str):
            raise ValueError(f"The map key of the {param} parameter must be of type str (e.g. "
                             f'{{"key1": In("value1")}}) but got {key} of type {type(key)}.')
        if type(operator) not in _OPERATORS:
            raise ValueError(
                f"The map value for key {key} of the {param} parameter must be one of the `In`, "
                "`NotIn`, `Exists` or `DoesNotExist` operator (e.g. {\"key1\": In(\"value1\")}) "
                f"but got {operator} of type {type(operator)}.")
        conditions.append([key, _OPERATORS[type(operator)], getattr(operator, "values", [])])
    return conditions


class NodeLabelSchedulingStrategy:
    """Run on a node whose labels meet every ``hard`` condition, preferring one that also
    meets the ``soft`` ones: ``NodeLabelSchedulingStrategy({"region": In("us")},
    soft={"gpu": Exists()})``. With no such node the task or actor waits (infeasible)."""

    def __init__(self, hard: dict, *, soft: dict | None = None):
        self.hard = _conditions(hard, "hard")
        self.soft = _conditions(soft, "soft")
        if not (self.hard or self.soft):
            raise ValueError("The `hard` and `soft` parameter of NodeLabelSchedulingStrategy "
                             "cannot both be empty.")

    def __repr__(self):
        return f"NodeLabelSchedulingStrategy(hard={self.hard}, soft={self.soft})"


def label_constraints(strategy, label_selector: dict | None,
                      fallback_strategy: list | None) -> dict | None:
    """``{"hard", "soft", "fallback"}`` label conditions of a task or actor, or None.

    ``hard`` joins a NodeLabelSchedulingStrategy's hard conditions and ``label_selector``;
    ``fallback`` lists the conditions of each ``fallback_strategy`` entry, tried in order
    when no node meets ``hard``.
    """
    hard, soft = [], []
    if isinstance(strategy, NodeLabelSchedulingStrategy):
        hard, soft = list(strategy.hard), list(strategy.soft)
    if label_selector:
        hard += selector_conditions(label_selector)
    fallback = [selector_conditions(option.get("label_selector") or {})
                for option in fallback_strategy or []]
    if not (hard or soft or fallback):
        return None
    return {"hard": hard, "soft": soft, "fallback": fallback}


def resolve(strategy, resources: dict, captured: dict | None, labels: dict | None = None,
            what: str = "") -> tuple[dict, str | dict, dict | None]:
    """(resources, wire strategy, placement group to capture) for a task or an actor.

    ``captured`` is the group of the calling task when it captures child tasks;
    ``labels`` comes from ``label_constraints``; ``what`` names the function or actor
    class in errors.

    Raises:
        ValueError: a bundle index out of range, or a request no bundle of the group holds.
    """
    capture = None
    if isinstance(strategy, PlacementGroupSchedulingStrategy):
        pg = strategy.placement_group
        wire = "DEFAULT"
        if pg is not None:
            resources = _in_group(strategy, resources, what)
            if strategy.placement_group_capture_child_tasks:
                capture = {"pg_id": pg.id.binary()}
    elif strategy is None and captured is not None:
        resources, wire, capture = in_placement_group(resources, captured["pg_id"], -1), \
            "DEFAULT", captured
    elif labels is not None and isinstance(strategy, NodeLabelSchedulingStrategy):
        wire = "DEFAULT"  # (such a strategy always comes with labels)
    else:
        wire = encode(strategy)
    if labels is not None:
        wire = dict(labels, base=wire)
    return resources, wire, capture


def _in_group(strategy: PlacementGroupSchedulingStrategy, resources: dict, what: str) -> dict:
    """``resources`` moved onto the group's bundles, once checked to fit one of them."""
    pg = strategy.placement_group
    index = strategy.placement_group_bundle_index
    bundles = pg.bundle_specs
    if index >= len(bundles) or index < -1:
        raise ValueError(f"placement group bundle index {index} is invalid. Valid placement "
                         f"group indexes: 0-{len(bundles)}")
    if not any(all(bundle.get(key, 0) >= amount for key, amount in resources.items())
               for bundle in bundles):
        raise ValueError(
            f"Cannot schedule {what} with the placement group because the resource request "
            f"{resources} cannot fit into any bundles for the placement group, {bundles}.")
    return in_placement_group(resources, pg.id.binary(), index)


def encode(strategy) -> str | dict:
    """The wire form of a strategy: a string, or a dict for node affinity."""
    if strategy is None:
        return "DEFAULT"
    if isinstance(strategy, str):
        return strategy
    if isinstance(strategy, NodeAffinitySchedulingStrategy):
        return {"node_id": strategy.node_id, "soft": strategy.soft}
    raise ValueError(f"Unsupported scheduling_strategy {strategy!r}.")
