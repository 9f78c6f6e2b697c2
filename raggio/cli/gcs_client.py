"""One-shot requests to a cluster's control store from the CLI.

Finds the cluster (``--address``, RAGGIO_ADDRESS/RAY_ADDRESS, or this
machine's current-cluster file) and its token the same way ``init()`` does,
runs a few requests on a short-lived event loop, and turns failures into
``click.ClickException`` messages that say what to do.
"""

from __future__ import annotations

import click

from raggio.core import one_shot
from raggio.exceptions import RayError


def resolve(address: str | None, temp_dir: str | None = None) -> dict:
    try:
        return one_shot.find(address, temp_dir)
    except ConnectionError as exc:
        raise click.ClickException(str(exc)) from None


def query(cluster: dict, *requests: tuple[str, object], timeout_s: float = 10.0) -> list:
    """Run ``(op, payload)`` requests against the control store; return their replies."""
    try:
        return one_shot.query(cluster, list(requests), timeout_s)
    except RayError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
