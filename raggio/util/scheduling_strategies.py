"""Scheduling strategies, with Ray's names: where a task or actor may run.

Besides these classes, ``scheduling_strategy`` takes the strings "DEFAULT"
(hybrid: the local node until it is busy, then the best other node) and
"SPREAD" (across the nodes, round robin).
"""

from __future__ import annotations


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


def in_placement_group(resources: dict, pg_id: bytes, bundle_index: int) -> dict:
    """A resource request rewritten onto a group's reserved resources (Ray's names)."""
    hex_id = pg_id.hex()
    suffix = f"_group_{hex_id}" if bundle_index < 0 else f"_group_{bundle_index}_{hex_id}"
    out = {key + suffix: value for key, value in resources.items() if value > 0}
    out["bundle" + suffix] = 0.001  # so that even a zero-resource task lands in the group
    return out


def resolve(strategy, resources: dict, captured: dict | None) -> tuple[dict, str | dict, dict | None]:
    """(resources, wire strategy, placement group to capture) for a task or an actor.

    ``captured`` is the group of the calling task when it captures child tasks.
    """
    if strategy is None and captured is not None:
        return (in_placement_group(resources, captured["pg_id"], -1), "DEFAULT", captured)
    if isinstance(strategy, PlacementGroupSchedulingStrategy):
        pg = strategy.placement_group
        if pg is None:
            return resources, "DEFAULT", None
        index = strategy.placement_group_bundle_index
        if index >= len(pg.bundle_specs) or index < -1:
            raise ValueError(f"placement_group_bundle_index {index} is out of range for a "
                             f"group of {len(pg.bundle_specs)} bundles.")
        capture = ({"pg_id": pg.id.binary()} if strategy.placement_group_capture_child_tasks
                   else None)
        return in_placement_group(resources, pg.id.binary(), index), "DEFAULT", capture
    return resources, encode(strategy), None


def encode(strategy) -> str | dict:
    """The wire form of a strategy: a string, or a dict for node affinity."""
    if strategy is None:
        return "DEFAULT"
    if isinstance(strategy, str):
        return strategy
    if isinstance(strategy, NodeAffinitySchedulingStrategy):
        return {"node_id": strategy.node_id, "soft": strategy.soft}
    raise ValueError(f"Unsupported scheduling_strategy {strategy!r}.")
