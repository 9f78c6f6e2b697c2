"""One-shot requests to a cluster's control store from outside a driver.

Used by the CLI and by the state API when no driver is connected: finds the
cluster (an address, RAGGIO_ADDRESS/RAY_ADDRESS, or this machine's current
cluster file) and its token as ``init()`` does, runs the requests on a
short-lived event loop and closes the connection. Raises ``ConnectionError``
(no cluster, no token, nobody answering) or the ``RayError`` a request got.
"""

from __future__ import annotations

import asyncio

from raggio.config import get_config
from raggio.core.api import find_cluster
from raggio.rpc import connect

#: How long to keep dialling: a command pointed at nothing should say so at once.
CONNECT_TIMEOUT_S = 2.0


def find(address: str | None, temp_dir: str | None = None) -> dict:
    """{"gcs_address", "token", ...} of the cluster at `address` (None: this machine's)."""
    cfg = get_config()
    cluster = find_cluster(address or "auto", cfg, temp_dir or cfg.temp_dir)
    if not cluster.get("token"):
        raise ConnectionError(
            f"No token for the cluster at {cluster['gcs_address']}: pass --token or set "
            "RAGGIO_AUTH_TOKEN (the head keeps it in <session dir>/token).")
    return cluster


def query(cluster: dict, requests: list[tuple[str, object]], timeout_s: float = 10.0) -> list:
    """Run ``(op, payload)`` requests against the control store; return their replies."""
    async def run():
        conn = await connect(cluster["gcs_address"], token=cluster["token"], info={"role": "cli"},
                             timeout_s=min(timeout_s, CONNECT_TIMEOUT_S))
        try:
            return [await conn.call_with_timeout(op, payload, timeout_s)
                    for op, payload in requests]
        finally:
            conn.close()
    return asyncio.run(run())


def query_control_store(address: str | None, requests: list[tuple[str, object]],
                        timeout_s: float = 10.0) -> list:
    return query(find(address), requests, timeout_s)
