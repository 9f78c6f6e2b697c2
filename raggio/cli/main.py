"""``raggio`` / ``python -m raggio``: the command-line entry point.

Cluster commands (start, stop, status, ...) arrive with raggio issue #3.
"""

from __future__ import annotations

import click

import raggio


@click.group()
@click.version_option(raggio.__version__, prog_name="raggio")
def main() -> None:
    """raggio: Ray's programming model and cluster management, in pure Python."""
