"""``raggio.util``: Ray's utility namespace (scheduling strategies for now)."""

from raggio.util import scheduling_strategies

__all__ = ["scheduling_strategies"]
