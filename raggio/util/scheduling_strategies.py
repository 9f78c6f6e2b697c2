"""``raggio.util.scheduling_strategies``: Ray's scheduling strategy classes.

They are defined in ``core/scheduling_strategies.py``, beside what the core
worker makes of them when it submits a task or creates an actor; this module
is their public path.
"""

from raggio.core.scheduling_strategies import (DoesNotExist, Exists, In,
                                               NodeAffinitySchedulingStrategy,
                                               NodeLabelSchedulingStrategy, NotIn,
                                               PlacementGroupSchedulingStrategy)

__all__ = [
    "DoesNotExist", "Exists", "In", "NodeAffinitySchedulingStrategy",
    "NodeLabelSchedulingStrategy", "NotIn", "PlacementGroupSchedulingStrategy",
]
