"""Placement groups, with Ray's API: reserve bundles of resources across nodes.

``placement_group([{"CPU": 1}, {"CPU": 1}], strategy="STRICT_SPREAD")``
asks the control store to reserve the bundles; ``pg.ready()`` is an
ObjectRef that resolves once they are reserved, ``pg.wait(timeout)`` says
whether they are. Tasks and actors run inside a group with
``scheduling_strategy=PlacementGroupSchedulingStrategy(pg, bundle_index)``.
The handle class, ``PlacementGroup``, is defined in ``core/placement_group.py``
(the core worker needs it); this module is its public path.
"""

from __future__ import annotations

import os
import warnings

from raggio.common.ids import PlacementGroupID
from raggio.common.labels import selector_error
from raggio.common.placement_group_resources import BUNDLE_RESOURCE
from raggio.core import context
from raggio.core.placement_group import PlacementGroup, current_group_hex

#: Ray's name; a set, as Ray's.
VALID_PLACEMENT_GROUP_STRATEGIES = {"PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"}


def placement_group(bundles: list[dict], strategy: str = "PACK", name: str = "",
                    lifetime: str | None = None, _max_cpu_fraction_per_node=None,
                    _soft_target_node_id=None, bundle_label_selector=None) -> PlacementGroup:
    """Reserve ``bundles`` (a list of resource dicts) with ``strategy``.

    Raises:
        ValueError: see ``validate_placement_group``.
    """
    validate_placement_group(bundles, strategy, lifetime, bundle_label_selector)
    core = context.get_core()
    pg_id = os.urandom(PlacementGroupID.size)
    bundles = [{k: float(v) for k, v in b.items()} for b in bundles]
    core.request("gcs", "create_placement_group", {
        "pg_id": pg_id, "bundles": bundles, "strategy": strategy, "name": name,
        "namespace": core.namespace, "job_id": core.job_id, "lifetime": lifetime})
    return PlacementGroup(pg_id, bundles)


def validate_placement_group(bundles, strategy: str = "PACK", lifetime: str | None = None,
                             bundle_label_selector: list | None = None) -> None:
    """Check ``placement_group()``'s arguments as Ray does.

    Raises:
        ValueError: not a list, no bundles, a bundle that is empty, all zeros, not a dict of
            non-negative numbers or that uses the reserved ``bundle`` resource; a bad
            strategy, lifetime or bundle_label_selector.
    """
    example = 'For example: `[{"CPU": 1.0}, {"GPU": 1.0}]`.'
    if not isinstance(bundles, list):
        raise ValueError(f"Placement group bundles must be a list, got {type(bundles)}.")
    if not bundles:
        raise ValueError("Bundles must be a non-empty list of resource dictionaries. "
                         f"{example} Got empty list instead.")
    for bundle in bundles:
        if (not isinstance(bundle, dict) or not all(isinstance(k, str) for k in bundle)
                or not all(isinstance(v, (int, float)) and v >= 0 for v in bundle.values())):
            raise ValueError("Bundles must be a non-empty list of resource dictionaries of "
                             f"non-negative numbers. {example} Got {bundle!r}.")
        if not bundle or all(value == 0 for value in bundle.values()):
            raise ValueError("Bundles cannot be an empty dictionary or resources with only 0 "
                             f"values. Bundles: {bundles}")
        if BUNDLE_RESOURCE in bundle:
            raise ValueError(f"{BUNDLE_RESOURCE} is a system reserved resource and is not "
                             f"allowed to be used in placement group. Bundles: {bundles}")
        if "object_store_memory" in bundle:
            warnings.warn("Setting 'object_store_memory' for bundles is deprecated since it "
                          "doesn't actually reserve the required object store memory.",
                          DeprecationWarning, stacklevel=3)
    if bundle_label_selector is not None:
        if len(bundle_label_selector) != len(bundles):
            raise ValueError(f"Invalid bundle label selector {bundle_label_selector}. The "
                             "length of `bundle_label_selector` should equal the length of "
                             "`bundles`.")
        for selector in bundle_label_selector:
            error = selector_error(selector)
            if error:
                raise ValueError(error)
    if strategy not in VALID_PLACEMENT_GROUP_STRATEGIES:
        raise ValueError(f"Invalid placement group strategy {strategy}. Supported strategies "
                         f"are: {sorted(VALID_PLACEMENT_GROUP_STRATEGIES)}.")
    if lifetime not in (None, "detached"):
        raise ValueError("Placement group `lifetime` argument must be either `None` or "
                         f"'detached'. Got {lifetime}.")


def remove_placement_group(placement_group: PlacementGroup) -> None:
    """Release the group's reservations; tasks and actors inside it lose their resources."""
    core = context.get_core()
    core.request("gcs", "remove_placement_group", placement_group.id.binary())


def placement_group_table(placement_group: PlacementGroup | None = None) -> dict:
    """The state of one group (a dict), or of all of them by hex id."""
    core = context.get_core()
    pg_id = None if placement_group is None else placement_group.id.binary()
    return core.request("gcs", "placement_group_table", pg_id)


def get_placement_group(placement_group_name: str) -> PlacementGroup:
    core = context.get_core()
    info = core.request("gcs", "get_named_placement_group",
                        {"name": placement_group_name, "namespace": core.namespace})
    if info is None:
        raise ValueError(f"Failed to look up placement group with name: {placement_group_name}")
    return PlacementGroup(bytes.fromhex(info["placement_group_id"]),
                          [info["bundles"][i] for i in sorted(info["bundles"])])


def get_current_placement_group() -> PlacementGroup | None:
    """The group the calling task or actor runs in (whether or not it captures its child
    tasks, as in Ray), or None (in a driver, or outside any group)."""
    core = context.current_core_or_none()
    if core is None:
        return None
    current = getattr(core.current, "placement_group", None)
    if current is not None:
        return PlacementGroup(current["pg_id"])
    pg_hex = current_group_hex(core)
    return None if pg_hex is None else PlacementGroup(bytes.fromhex(pg_hex))
