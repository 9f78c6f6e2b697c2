"""The autoscaler's records in the control store's KV, and reading them back.

- ``RESOURCE_REQUEST_KEY``: the bundles of the latest
  ``raggio.autoscaler.sdk.request_resources`` call (a JSON list; absent or
  empty: no request), written by the driver that called it.
- ``STATUS_KEY``: the monitor's view after its latest round (JSON): nodes
  running and launching per type, idle nodes, shapes no node type fits, and
  why it did or did not scale, in plain words.

Written by the autoscaler (and the sdk); read by ``raggio status`` and the
dashboard through ``read``. Launch failures have their own record
(``launch_failures.py``). No I/O here.
"""

from __future__ import annotations

import json
import time

from raggio.common.launch_failures import LAUNCH_FAILURES_KEY

#: Every key of the autoscaler's records starts so; the control store counts their writes
#: (``table_versions``' ``autoscaler``), which the dashboard's pages follow.
KV_PREFIX = "autoscaler:"
#: (Ray's ``AUTOSCALER_RESOURCE_REQUEST_CHANNEL``)
RESOURCE_REQUEST_KEY = "autoscaler:resource_request"
STATUS_KEY = "autoscaler:status"
#: The KV keys a reader asks for (one ``kv_multi_get``), in the order ``read`` takes their
#: values.
KEYS = (STATUS_KEY, RESOURCE_REQUEST_KEY, LAUNCH_FAILURES_KEY)


def read(status: bytes | None, request: bytes | None, failures: bytes | None,
         now: float | None = None) -> dict | None:
    """The autoscaler's view for ``cluster_status.render`` and the dashboard, from the values
    of ``KEYS``: its latest round, the standing
    request, and the recent launch failures (``recent_failures``); None when no autoscaler
    runs."""
    if status is None:
        return None
    return {"status": json.loads(status), "requests": json.loads(request) if request else [],
            "failures": recent_failures(json.loads(failures) if failures else [],
                                        time.time() if now is None else now)}


def recent_failures(failures: list[dict], now: float, within_s: float = 600) -> list[dict]:
    """The launch failures of the last ``within_s``, one per node type and error, newest
    last: ``{"node_type", "error", "count" (nodes asked), "times" (failures), "last"}``."""
    grouped: dict[tuple, dict] = {}
    for failure in failures:
        if now - failure["time"] >= within_s:
            continue
        key = (failure["node_type"], failure["error"])
        group = grouped.pop(key, {"node_type": failure["node_type"], "error": failure["error"],
                                  "count": failure["count"], "times": 0})
        group["times"] += 1
        group["last"] = failure["time"]
        grouped[key] = group  # re-inserted: the most recent failures come last
    return list(grouped.values())
