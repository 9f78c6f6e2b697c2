"""One-shot requests to a cluster's control store from the CLI.

Finds the cluster (``--address``, RAGGIO_ADDRESS/RAY_ADDRESS, or this
machine's current-cluster file) and its token the same way ``init()`` does,
runs a few requests on a short-lived event loop, and turns failures into
``click.ClickException`` messages that say what to do.
"""

from __future__ import annotations

import asyncio

import click

from raggio.config import get_config
from raggio.core.api import find_cluster
from raggio.exceptions import RayError
from raggio.rpc import connect


def resolve(address: str | None, temp_dir: str | None = None) -> dict:
    cfg = get_config()
    try:
        cluster = find_cluster(address or "auto", cfg, temp_dir or cfg.temp_dir)
    except ConnectionError as exc:
        raise click.ClickException(str(exc)) from None
    if not cluster.get("token"):
        raise click.ClickException(
            f"No token for the cluster at {cluster['gcs_address']}: pass --token or set "
            "RAGGIO_AUTH_TOKEN (the head keeps it in <session dir>/token).")
    return cluster


def query(cluster: dict, *requests: tuple[str, object], timeout_s: float = 10.0) -> list:
    """Run ``(op, payload)`` requests against the control store; return their replies."""
    async def run():
        conn = await connect(cluster["gcs_address"], token=cluster["token"], info={"role": "cli"},
                             timeout_s=timeout_s)
        try:
            return [await conn.call_with_timeout(op, payload, timeout_s)
                    for op, payload in requests]
        finally:
            conn.close()
    try:
        return asyncio.run(run())
    except RayError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
