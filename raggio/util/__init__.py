"""``raggio.util``: Ray's utility namespace.

Placement groups, scheduling strategies, custom serializers and the ``log_once``
helpers are imported here; ``ActorPool``, ``as_completed``, ``map_unordered``,
``list_named_actors``, ``get_node_ip_address``, ``get_node_instance_id``,
``inspect_serializability`` and the submodules Ray programs reach as attributes
(``ray.util.state.list_actors``, ``ray.util.queue.Queue``, ``ray.util.metrics``,
``ray.util.accelerators``) load on first use, since they sit on the driver API
that itself imports this package.
"""

import importlib

from raggio.util import scheduling_strategies
from raggio.util.debug import disable_log_once_globally, enable_periodic_logging, log_once
from raggio.util.placement_group import (PlacementGroup, get_current_placement_group,
                                         get_placement_group, placement_group,
                                         placement_group_table, remove_placement_group)
from raggio.util.serialization import deregister_serializer, register_serializer

#: Name -> (module, attribute in it; None for the module itself), loaded on first use.
_LAZY = {
    "ActorPool": ("raggio.util.actor_pool", "ActorPool"),
    "as_completed": ("raggio.util.completion_order", "as_completed"),
    "map_unordered": ("raggio.util.completion_order", "map_unordered"),
    "get_node_ip_address": ("raggio.core.api", "get_node_ip_address"),
    "get_node_instance_id": ("raggio.core.api", "get_node_instance_id"),
    "list_named_actors": ("raggio.core.api", "list_named_actors"),
    "inspect_serializability": ("raggio.util.check_serialize", "inspect_serializability"),
    "accelerators": ("raggio.util.accelerators", None),
    "metrics": ("raggio.util.metrics", None),
    "queue": ("raggio.util.queue", None),
    "state": ("raggio.util.state", None),
}

__all__ = [
    "ActorPool", "PlacementGroup", "accelerators", "as_completed", "deregister_serializer",
    "disable_log_once_globally", "enable_periodic_logging", "get_current_placement_group",
    "get_node_instance_id", "get_node_ip_address", "get_placement_group",
    "inspect_serializability", "list_named_actors", "log_once", "map_unordered",
    "placement_group", "placement_group_table", "register_serializer",
    "remove_placement_group", "scheduling_strategies",
]


def __getattr__(name: str):
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'raggio.util' has no attribute {name!r}") from None
    value = importlib.import_module(module_name)
    return value if attribute is None else getattr(value, attribute)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
