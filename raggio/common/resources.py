"""Resource arithmetic: does a request fit, take it, and why a request waits.

Resources are ``{name: quantity}`` dicts of floats (fractional CPUs are
allowed). The node manager accounts its own node with them
(``node/resources.py``), the scheduling policy and the control store's
bundle placement compare nodes with them, and the control store and
``raggio status`` explain pending requests with ``why_waiting``.
"""

from __future__ import annotations

from raggio.common.labels import matches, unmatched_reason


def fits(available: dict[str, float], request: dict[str, float]) -> bool:
    """Does `request` fit in `available`? (Zero and negative asks always fit.)"""
    return all(available.get(k, 0.0) >= v - 1e-9 for k, v in request.items() if v > 0)


def take(available: dict[str, float], request: dict[str, float]) -> None:
    """Subtract `request` from `available` in place (which may go below zero)."""
    for key, value in request.items():
        available[key] = available.get(key, 0.0) - value


def why_waiting(request: dict, nodes: list[dict], constraints: dict | None = None) -> str:
    """Why a resource request waits, in a sentence, given the cluster's nodes (the control
    store's node records) and the request's label ``constraints`` if it has any."""
    alive = [n for n in nodes if n["state"] == "ALIVE"]
    if constraints:
        selectors = [constraints["hard"], *constraints.get("fallback", [])]
        alive = [n for n in alive
                 if any(matches(n.get("labels") or {}, conditions) for conditions in selectors)]
        if not alive or not any(fits(n["resources"], request) for n in alive):
            return unmatched_reason(constraints)
    if any(all(n["resources"].get(k, 0) >= v for k, v in request.items()) for n in alive):
        return "waiting for resources: every node that fits it is busy"
    missing = []
    for key, value in request.items():
        most = max((n["resources"].get(key, 0) for n in alive), default=0)
        if most < value:
            missing.append(f"no node has {key}" if most == 0 else
                           f"no node has {value:g} {key} (the most is {most:g})")
    return "infeasible: " + "; ".join(missing) + ". Add a node that has it."
