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

#: Every key of the autoscaler's records starts so; the control store counts their writes
#: (``table_versions``' ``autoscaler``), which the dashboard's pages follow.
KV_PREFIX = "autoscaler:"
#: (Ray's ``AUTOSCALER_RESOURCE_REQUEST_CHANNEL``)
RESOURCE_REQUEST_KEY = "autoscaler:resource_request"
STATUS_KEY = "autoscaler:status"
#: The KV keys a reader asks for, in the order ``read`` takes their values.
KEYS = (STATUS_KEY, RESOURCE_REQUEST_KEY)


def read(status: bytes | None, request: bytes | None, failures: bytes | None) -> dict | None:
    """The autoscaler's view for ``cluster_status.render``, from the values of ``KEYS`` and
    ``launch_failures.LAUNCH_FAILURES_KEY``; None when no autoscaler runs."""
    if status is None:
        return None
    return {"status": json.loads(status), "requests": json.loads(request) if request else [],
            "failures": json.loads(failures) if failures else []}
