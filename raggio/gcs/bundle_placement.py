"""Choosing nodes for a placement group's bundles: PACK, SPREAD, STRICT_PACK, STRICT_SPREAD.

A pure function over the nodes' available resources; no I/O. It returns one
node per bundle, or None with the reason the group cannot be placed now.
"""

from __future__ import annotations

from raggio.common.resources import fits, take

STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")


def _sum(bundles: list[dict]) -> dict:
    total: dict = {}
    for bundle in bundles:
        for key, value in bundle.items():
            total[key] = total.get(key, 0.0) + value
    return total


def plan(bundles: list[dict], strategy: str,
         available: dict[bytes, dict]) -> tuple[list[bytes] | None, str]:
    """One node id per bundle, or (None, why not)."""
    free = {node_id: dict(resources) for node_id, resources in available.items()}
    if not free:
        return None, "there are no live nodes"
    if strategy in ("PACK", "STRICT_PACK"):
        whole = _sum(bundles)
        for node_id in sorted(free, key=lambda n: -free[n].get("CPU", 0.0)):
            if fits(free[node_id], whole):
                return [node_id] * len(bundles), ""
        if strategy == "STRICT_PACK":
            return None, f"STRICT_PACK needs one node with {whole}; no node has that free"
    distinct = strategy in ("SPREAD", "STRICT_SPREAD")
    chosen: list[bytes | None] = [None] * len(bundles)
    used: set[bytes] = set()
    order = sorted(range(len(bundles)), key=lambda i: -sum(bundles[i].values()))
    for index in order:
        bundle = bundles[index]
        candidates = [n for n in free if fits(free[n], bundle)]
        if distinct:
            fresh = [n for n in candidates if n not in used]
            if fresh or strategy == "STRICT_SPREAD":
                candidates = fresh
        elif used:  # PACK: stay on nodes already used when they fit
            candidates = sorted(candidates, key=lambda n: n not in used)
        if not candidates:
            if strategy == "STRICT_SPREAD":
                return None, (f"STRICT_SPREAD needs {len(bundles)} different nodes that each "
                              f"fit a bundle; only {len(used)} could be found free")
            return None, f"no node has {bundle} free"
        if distinct or not used:
            node_id = max(candidates, key=lambda n: free[n].get("CPU", 0.0))
        else:
            node_id = candidates[0]
        chosen[index] = node_id
        used.add(node_id)
        take(free[node_id], bundle)
    return chosen, ""
