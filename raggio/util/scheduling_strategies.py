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


def encode(strategy) -> str | dict:
    """The wire form of a strategy: a string, or a dict for node affinity."""
    if strategy is None:
        return "DEFAULT"
    if isinstance(strategy, str):
        return strategy
    if isinstance(strategy, NodeAffinitySchedulingStrategy):
        return {"node_id": strategy.node_id, "soft": strategy.soft}
    raise ValueError(f"Unsupported scheduling_strategy {strategy!r}.")
