"""Which alerts go out: each once while it holds, and no more than a rate. No I/O.

The manager hands the gate what a rule says holds now, for one ``scope`` (a
rule, or a rule on one node: ``object_store:<node>``). An alert whose key the
scope held at the previous look is not sent again; a key that no longer holds
is forgotten, so the alert goes out again if it comes back (a store that
fills, empties and fills again: two alerts).

What is new then passes a token bucket of ``max_per_minute`` tokens (refilled
evenly). An alert that finds no token is not sent but counted, and once a token
is back the gate sends one summary alert with the count and the names, so that
a flood (a rack of nodes lost at once) is neither lost silently nor a storm.
"""

from __future__ import annotations

import collections

from raggio.alerts.rules import WARNING, Alert


class AlertGate:
    """See the module docstring."""

    def __init__(self, max_per_minute: int):
        self.max_per_minute = max_per_minute
        #: scope -> the keys that held at its last look
        self._held: dict[str, set[str]] = {}
        self._tokens = float(max_per_minute)
        self._refilled_at: float | None = None
        #: alerts not sent for want of a token since the last summary, by rule
        self.suppressed: collections.Counter = collections.Counter()

    def admit(self, scope: str, holding: list[Alert], now: float) -> list[Alert]:
        """The alerts of ``holding`` (all that hold in ``scope`` now) to send now."""
        held = self._held.get(scope, set())
        self._held[scope] = {alert.key for alert in holding}
        if not self._held[scope]:
            del self._held[scope]
        out = []
        for alert in holding:
            if alert.key in held:
                continue
            if self._take(now):
                out.append(alert)
            else:
                self.suppressed[alert.name] += 1
        return out

    def forget(self, scope: str) -> None:
        """Drop what ``scope`` held (a node that left: its store's alerts end with it)."""
        self._held.pop(scope, None)

    def scopes(self, prefix: str) -> list[str]:
        return [scope for scope in self._held if scope.startswith(prefix)]

    def holding(self) -> dict[str, list[str]]:
        """What every scope holds: for ``hold`` in a gate that takes over (a restarted
        dashboard), so that it does not send again what still holds."""
        return {scope: sorted(keys) for scope, keys in self._held.items()}

    def hold(self, holding: dict[str, list[str]]) -> None:
        """Take over what another gate's ``holding`` said."""
        for scope, keys in holding.items():
            self._held[scope] = set(keys)

    def summary_nowait(self, now: float) -> Alert | None:
        """The summary of the alerts not sent, once a token is back; None if there is none
        to send now."""
        if not self.suppressed or not self._take(now):
            return None
        count = sum(self.suppressed.values())
        names = ", ".join(f"{name} x{n}" for name, n in self.suppressed.most_common())
        self.suppressed.clear()
        return Alert("alerts_suppressed", WARNING, f"alerts_suppressed:{now}",
                     f"{count} alerts were not sent: more than {self.max_per_minute} a minute "
                     f"({names}). The dashboard shows the cluster's state.", now,
                     details={"count": count, "max_per_minute": self.max_per_minute})

    def _take(self, now: float) -> bool:
        if self._refilled_at is not None:
            self._tokens = min(float(self.max_per_minute), self._tokens + (
                now - self._refilled_at) * self.max_per_minute / 60.0)
        self._refilled_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
