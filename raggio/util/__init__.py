"""``raggio.util``: Ray's utility namespace: placement groups and scheduling strategies."""

from raggio.util import scheduling_strategies
from raggio.util.placement_group import (PlacementGroup, get_current_placement_group,
                                         get_placement_group, placement_group,
                                         placement_group_table, remove_placement_group)

__all__ = [
    "PlacementGroup", "get_current_placement_group", "get_placement_group", "placement_group",
    "placement_group_table", "remove_placement_group", "scheduling_strategies",
]
