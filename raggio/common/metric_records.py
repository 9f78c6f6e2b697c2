"""The application metrics' report, as its writers and its keeper share it.

Drivers and workers (``core/app_metrics.py``) send their node manager
``report_metrics``: ``{"worker_id": bytes, "metrics": [[name, kind,
description, tag keys, boundaries, [[tag values, value], ...]], ...]}``, only
the series that changed; the node manager (``node/app_metrics.py``) keeps and
exports them. A counter's value is its running total in that process, a
gauge's its last value, a histogram's ``[bucket counts..., sum, count]`` with
one bucket more than it has boundaries (the last is +Inf).
"""

COUNTER, GAUGE, HISTOGRAM = "counter", "gauge", "histogram"
