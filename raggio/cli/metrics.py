"""``raggio metrics launch-prometheus`` and ``shutdown-prometheus`` (Ray's commands).

Both act on this machine's current cluster (the current-cluster file in the
temp dir, ``cluster_file.py``): Prometheus reads the service discovery file
and the token in the head's session directory, so they run on the head's
machine. The work is ``monitoring/prometheus.py``'s; this module finds the
session and words the outcome.
"""

from __future__ import annotations

import click

from raggio import cluster_file
from raggio.exceptions import RaySystemError
from raggio.common.prometheus_files import service_discovery_path
from raggio.monitoring import prometheus


def _session_dir(temp_dir: str, *, running: bool) -> str:
    """The current cluster's session directory; with ``running``, only if its head runs."""
    info = cluster_file.read(temp_dir)
    if info is None or (running and not cluster_file.head_running(info)):
        raise click.ClickException(
            f"No raggio cluster runs on this machine (nothing recorded in "
            f"{cluster_file.path(temp_dir)}). Start one with `raggio start --head`, and run "
            "this on the head's machine with the same --temp-dir.")
    return info["session_dir"]


def launch_prometheus(port: int, temp_dir: str) -> None:
    session_dir = _session_dir(temp_dir, running=True)
    try:
        launched = prometheus.launch(session_dir, port=port)
    except RaySystemError as exc:
        raise click.ClickException(str(exc.client_exc)) from None
    except OSError as exc:  # the session directory is not writable
        raise click.ClickException(f"Cannot write Prometheus's files in {session_dir}: "
                                   f"{exc}") from None
    click.echo(f"Prometheus is running at {launched.url} (pid {launched.pid}); it scrapes "
               f"the nodes listed in {service_discovery_path(session_dir)} every "
               f"{prometheus.SCRAPE_INTERVAL_S} s.")
    click.echo("To stop it, run\n  raggio metrics shutdown-prometheus")


def shutdown_prometheus(temp_dir: str) -> None:
    stopped = prometheus.stop(_session_dir(temp_dir, running=False))
    if stopped is None:
        click.echo("No Prometheus started by raggio runs for the current cluster.")
    else:
        click.echo(f"Stopped Prometheus (pid {stopped.pid}, {stopped.url}).")
