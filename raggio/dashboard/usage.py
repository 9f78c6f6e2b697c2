"""How much of each resource the nodes use, from the control store's node records.

One computation for the web UI's views (``ui_api.py``: the Nodes page, the
totals of the Overview and Cluster pages) and Ray's ``/api/cluster_status`` and
``/nodes?view=summary`` (``rest.py``): a resource's use is its total less what
is available, the object store's the bytes the node reports in use. Placement
groups' resources (``CPU_group_...``) are left out: a bundle's resources are
counted in the node's own. ``node:<ip>`` resources are in, as Ray's load
metrics have them; the web UI leaves them out of what it shows.
"""

from __future__ import annotations

from typing import Iterable

from raggio.common.placement_group_resources import is_group_resource


def node_usage(node: dict) -> dict[str, list[float]]:
    """``{resource: [used, total]}`` of a live node; ``{}`` for one that is not alive."""
    if node["state"] != "ALIVE":
        return {}
    available = node.get("available") or {}
    usage = {}
    for key, total in node["resources"].items():
        if is_group_resource(key):
            continue
        used = (node.get("object_store_used", 0) if key == "object_store_memory"
                else total - available.get(key, 0.0))
        usage[key] = [float(used), float(total)]
    return usage


def summed_usage(usages: Iterable[dict[str, list[float]]]) -> dict[str, list[float]]:
    """``{resource: [used, total]}`` summed over ``node_usage`` answers."""
    summed: dict[str, list[float]] = {}
    for usage in usages:
        for key, (used, total) in usage.items():
            pair = summed.setdefault(key, [0.0, 0.0])
            pair[0] += used
            pair[1] += total
    return summed
