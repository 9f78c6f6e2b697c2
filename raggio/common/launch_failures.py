"""The autoscaler's record of nodes it failed to launch, kept in the control store's KV.

The autoscaler (issue #17) reports each failed launch by rewriting one KV key,
``LAUNCH_FAILURES_KEY``, through the control store's ``kv_get``/``kv_put``
(the surface every process with a control-store connection has): a JSON list
of the latest ``MAX_KEPT`` failures, oldest first, each

    {"id": "<unique>", "time": <unix s>, "node_type": "...", "count": <nodes asked>,
     "error": "<the provider's words>"}

``with_failure`` makes the new value from the old; the autoscaler is the one
writer. Readers: the alert manager (``raggio/alerts``: an alert per failure)
and, later, ``raggio status``'s "recent failures". No I/O here.
"""

from __future__ import annotations

import json
import os
import time

LAUNCH_FAILURES_KEY = "autoscaler:launch_failures"
#: How many failures the record keeps (the newest): enough for any reader polling every few
#: seconds, small enough to rewrite on every failure.
MAX_KEPT = 100


def read(value: bytes | None) -> list[dict]:
    """The failures in a value of ``LAUNCH_FAILURES_KEY`` (None: none recorded)."""
    return json.loads(value) if value else []


def with_failure(value: bytes | None, node_type: str, count: int, error: str,
                 now: float | None = None) -> bytes:
    """The value of ``LAUNCH_FAILURES_KEY`` with one more failure: ``count`` nodes of
    ``node_type`` could not be launched, because of ``error``."""
    failures = read(value)
    failures.append({"id": os.urandom(8).hex(), "time": time.time() if now is None else now,
                     "node_type": node_type, "count": count, "error": error})
    return json.dumps(failures[-MAX_KEPT:]).encode()
