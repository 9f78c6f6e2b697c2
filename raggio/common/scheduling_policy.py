"""Where a lease request should run: here, another node, or nowhere yet.

A pure policy over the cluster view (each node's total and available
resources and its labels, as last reported to the control store); no I/O.
The node manager asks it for every lease request it cannot grant at once;
the control store asks it which node an actor's lease goes to first, as a
policy with no node of its own ("here" is then never an answer):

- DEFAULT (hybrid): here if it fits now; else the other node with the most
  free CPU where it fits now; else wait here if this node could ever fit it;
  else a node that could; else it is infeasible everywhere.
- SPREAD: round robin over the nodes where it fits now (this one included).
- Node affinity: that node; if it is dead or can never fit the request, run
  as DEFAULT when ``soft``, else fail.

Label constraints (``label_selector``, ``fallback_strategy``,
``NodeLabelSchedulingStrategy``; their wire form is a dict with the base
strategy under ``"base"``) first narrow the nodes the base strategy may
choose from: the nodes that meet the hard conditions and could ever fit the
request, else those meeting the first fallback selector that any such node
meets; among them, those that also meet the soft conditions and fit now when
there are any. With no node left the request is infeasible (it waits, with
the reason), as in Ray.
"""

from __future__ import annotations

from dataclasses import dataclass

from raggio.common.labels import allowed_nodes, unmatched_reason
from raggio.common.resources import fits

LOCAL, SPILL, QUEUE, INFEASIBLE, FAIL = "local", "spill", "queue", "infeasible", "fail"


@dataclass(frozen=True)
class Decision:
    kind: str
    node_id: bytes | None = None
    reason: str = ""


class SchedulingPolicy:
    """See the module docstring. ``view`` maps node id -> {"total", "available", "labels"};
    ``local_node_id`` is None for the control store."""

    def __init__(self, local_node_id: bytes | None):
        self.local_node_id = local_node_id
        self._spread_next = 0

    def decide(self, request: dict, strategy, view: dict[bytes, dict],
               local_available: dict) -> Decision:
        if isinstance(strategy, dict) and "base" in strategy:
            allowed = allowed_nodes(
                strategy, {node_id: info.get("labels") or {} for node_id, info in view.items()},
                feasible={node_id for node_id, info in view.items()
                          if fits(info["total"], request)},
                fit_now={node_id for node_id, info in view.items()
                         if fits(local_available if node_id == self.local_node_id
                                 else info["available"], request)})
            if not allowed:
                return Decision(INFEASIBLE, reason=unmatched_reason(strategy))
            view = {node_id: view[node_id] for node_id in allowed}
            strategy = strategy["base"]
        here = view.get(self.local_node_id)
        if isinstance(strategy, dict):
            target = bytes.fromhex(strategy["node_id"])
            node = view.get(target)
            if node is not None and fits(node["total"], request):
                if target == self.local_node_id:
                    return Decision(LOCAL if fits(local_available, request) else QUEUE)
                return Decision(SPILL, target)
            if not strategy.get("soft"):
                why = "is not alive" if node is None else f"cannot fit {request}"
                return Decision(FAIL, reason=(
                    f"The node {strategy['node_id']} requested by NodeAffinitySchedulingStrategy "
                    f"{why}, and soft=False."))
        if strategy == "SPREAD":
            fits_now = sorted(n for n, info in view.items()
                              if fits(local_available if n == self.local_node_id
                                       else info["available"], request))
            if fits_now:
                chosen = fits_now[self._spread_next % len(fits_now)]
                self._spread_next += 1
                return Decision(LOCAL if chosen == self.local_node_id else SPILL, chosen)
        if here is not None and fits(local_available, request):
            return Decision(LOCAL)
        others = [(info["available"].get("CPU", 0.0), n) for n, info in view.items()
                  if n != self.local_node_id and fits(info["available"], request)]
        if others:
            return Decision(SPILL, max(others)[1])
        if here is not None and fits(here["total"], request):
            return Decision(QUEUE)
        feasible = sorted(n for n, info in view.items()
                          if n != self.local_node_id and fits(info["total"], request))
        if feasible:
            return Decision(SPILL, feasible[0])
        return Decision(INFEASIBLE)
