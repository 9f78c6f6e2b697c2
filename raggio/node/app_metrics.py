"""The application metrics of this node's processes, as the metrics endpoint exports them.

Drivers and workers send ``report_metrics`` (``common/metric_records.py``).
Kept per process;
``export()`` sums counters and histograms over the processes, those that
exited included (a count once exported never goes back), and keeps a gauge
per process, which goes when its process does (its last value is no longer
true of anything).
"""

from __future__ import annotations

import logging

from raggio.common.metric_records import GAUGE

logger = logging.getLogger(__name__)


def _add(total, value):
    if total is None:
        return list(value) if isinstance(value, list) else value
    if isinstance(value, list):
        return [a + b for a, b in zip(total, value)]
    return total + value


class AppMetrics:
    """See the module docstring."""

    def __init__(self):
        #: name -> [kind, description, tag keys, boundaries]; the first process's definition
        self.defs: dict[str, list] = {}
        #: process (worker id) -> {(name, tag values): value}
        self.by_process: dict[bytes, dict[tuple, object]] = {}
        #: (name, tag values) -> what exited processes counted (counters, histograms)
        self.exited: dict[tuple, object] = {}

    def report(self, process: bytes, metrics: list) -> None:
        values = self.by_process.setdefault(process, {})
        for name, kind, description, tag_keys, boundaries, series in metrics:
            known = self.defs.setdefault(name, [kind, description, tag_keys, boundaries])
            if known[0] != kind or known[2] != tag_keys or known[3] != boundaries:
                logger.warning("metric %r from process %s is a %s with tag keys %s; another "
                               "process on this node declared it a %s with tag keys %s: "
                               "ignored", name, process.hex(), kind, tag_keys, known[0],
                               known[2])
                continue
            for tag_values, value in series:
                values[name, tuple(tag_values)] = value

    def process_gone(self, process: bytes) -> None:
        for key, value in self.by_process.pop(process, {}).items():
            if self.defs[key[0]][0] != GAUGE:
                self.exited[key] = _add(self.exited.get(key), value)

    def export(self) -> list:
        """``[[name, kind, description, tag keys, boundaries, [[tag values, value,
        worker id hex or None], ...]], ...]``: what the endpoint turns into families."""
        series: dict[str, dict[tuple, list]] = {name: {} for name in self.defs}
        for key, value in self.exited.items():
            series[key[0]][key[1], None] = value
        for process, values in self.by_process.items():
            for (name, tags), value in values.items():
                if self.defs[name][0] == GAUGE:
                    series[name][tags, process.hex()] = value
                else:
                    summed = series[name]
                    summed[tags, None] = _add(summed.get((tags, None)), value)
        return [[name, *self.defs[name],
                 [[list(tags), value, worker] for (tags, worker), value in rows.items()]]
                for name, rows in series.items() if rows]
