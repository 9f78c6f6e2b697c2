"""This process's application metrics (``raggio.util.metrics``), kept until they are sent.

``Counter.inc``, ``Gauge.set`` and ``Histogram.observe`` update a value here,
in the caller's thread, under a lock (~1 us); nothing else happens on the
caller's path. The core worker sends what changed to its node manager every
``metrics_report_period_s`` (``report_metrics``, ``common/metric_records.py``),
which exports it (``node/app_metrics.py``). Metrics recorded before ``init()`` wait here.

A counter is sent as its running total, a gauge as its last value, a
histogram as its bucket counts, sum and count: each report replaces the
last, so a lost report costs nothing but freshness.
"""

from __future__ import annotations

import bisect
import threading


class MetricsRecorder:
    """See the module docstring. One per process: ``RECORDER``."""

    def __init__(self):
        self._lock = threading.Lock()
        #: name -> [kind, description, tag keys, histogram boundaries or None]
        self._defs: dict[str, list] = {}
        #: name -> {tag values: value}; a histogram's value is [bucket counts..., sum, count]
        self._values: dict[str, dict[tuple, object]] = {}
        self._changed: dict[str, set] = {}  #: name -> tag values changed since the last take

    def define(self, name: str, kind: str, description: str, tag_keys: tuple,
               boundaries: list | None = None) -> None:
        """Declare a metric; the same name again must be the same kind (Ray keeps one metric
        per name in a process too).

        Raises:
            ValueError: ``name`` is already a metric of another kind or shape.
        """
        definition = [kind, description, list(tag_keys), list(boundaries) if boundaries else None]
        with self._lock:
            known = self._defs.setdefault(name, definition)
            self._values.setdefault(name, {})
        if known[0] != kind or known[2] != definition[2] or known[3] != definition[3]:
            raise ValueError(
                f"Metric {name!r} is already a {known[0]} with tag keys {tuple(known[2])}"
                + (f" and boundaries {known[3]}" if known[3] else "")
                + f" in this process; a {kind} with tag keys {tuple(tag_keys)} needs another "
                "name.")

    def add(self, name: str, tags: tuple, amount: float) -> None:
        with self._lock:
            values = self._values[name]
            values[tags] = values.get(tags, 0.0) + amount
            self._changed.setdefault(name, set()).add(tags)

    def set(self, name: str, tags: tuple, value: float) -> None:
        with self._lock:
            self._values[name][tags] = value
            self._changed.setdefault(name, set()).add(tags)

    def observe(self, name: str, tags: tuple, value: float) -> None:
        boundaries = self._defs[name][3]
        bucket = bisect.bisect_left(boundaries, value)
        with self._lock:
            values = self._values[name]
            counts = values.get(tags)
            if counts is None:
                counts = values[tags] = [0] * (len(boundaries) + 1) + [0.0, 0]
            counts[bucket] += 1
            counts[-2] += value
            counts[-1] += 1
            self._changed.setdefault(name, set()).add(tags)

    def take_changes(self) -> list:
        """What changed since the last call, as ``report_metrics`` sends it:
        ``[[name, kind, description, tag keys, boundaries, [[tag values, value], ...]], ...]``."""
        with self._lock:
            changed, self._changed = self._changed, {}
            return [[name, *self._defs[name],
                     [[list(tags), _copy(self._values[name][tags])] for tags in tag_sets]]
                    for name, tag_sets in changed.items()]


def _copy(value):
    return list(value) if isinstance(value, list) else value


RECORDER = MetricsRecorder()
