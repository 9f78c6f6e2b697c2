"""The cluster launcher's commands, with Ray's names and flags: ``raggio up cluster.yaml``...

``up``, ``down``, ``attach``, ``exec``, ``submit``, ``rsync-up``,
``rsync-down``, ``get-head-ip``, ``get-worker-ips`` and ``monitor`` are
declared here and added to ``raggio`` by ``main.py`` (as is ``dashboard``'s
cluster-file form); the work is in ``raggio/launcher/``, imported when a
command runs. The launcher's errors become one message and a non-zero exit.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys

import click

_CONFIG = click.argument("cluster_config_file", type=click.Path(exists=True, dir_okay=False))
_NAME = click.option("-n", "--cluster-name", default=None,
                     help="Override the cluster file's cluster_name.")
_NO_CACHE = click.option("--no-config-cache", is_flag=True,
                         help="Accepted for Ray's command lines: raggio reads the cluster file "
                         "afresh every time and keeps no cache of it.")
_YES = click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
_START = click.option("--start", is_flag=True, help="Bring the cluster up first if needed.")
_STOP = click.option("--stop", is_flag=True, help="Tear the cluster down afterwards.")


def _launcher_errors(command):
    """Turn the launcher's errors into click's: one message, exit status 1."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from raggio.exceptions import (
            ClusterConfigError, ClusterLaunchError, NodeCommandError, NodeUnreachableError)

        try:
            return command(*args, **kwargs)
        except (ClusterConfigError, ClusterLaunchError, NodeCommandError,
                NodeUnreachableError) as exc:
            raise click.ClickException(str(exc)) from None
    return wrapper


def load_config(path: str, cluster_name: str | None = None):
    from raggio.launcher import cluster_config

    config = cluster_config.load(path)
    if cluster_name:
        config = dataclasses.replace(config, cluster_name=cluster_name)
    return config


@click.command()
@_CONFIG
@click.option("--min-workers", type=int, default=None,
              help="Start at least this many workers (overrides the file).")
@click.option("--max-workers", type=int, default=None,
              help="Start at most this many workers (overrides the file's max_workers).")
@click.option("--no-restart", is_flag=True,
              help="Run changed setup, but do not restart raggio on running nodes.")
@click.option("--restart-only", is_flag=True,
              help="Skip setup: only restart raggio on every node.")
@_YES
@_NAME
@_NO_CACHE
@_launcher_errors
def up(cluster_config_file, min_workers, max_workers, no_restart, restart_only, yes,
       cluster_name, no_config_cache) -> None:
    """Create or update a cluster from its file: the head, then every worker in parallel."""
    from raggio.launcher import cluster_ops
    from raggio.launcher.updater import UpdatePlan

    if restart_only and no_restart:
        raise click.UsageError("--restart-only and --no-restart contradict each other.")
    cluster_ops.up(load_config(cluster_config_file, cluster_name),
                   plan=UpdatePlan(restart_only=restart_only, no_restart=no_restart),
                   min_workers=min_workers, max_workers=max_workers, yes=yes)


@click.command()
@_CONFIG
@_YES
@click.option("--workers-only", is_flag=True, help="Stop the workers only; keep the head.")
@click.option("--keep-min-workers", is_flag=True,
              help="Keep each worker type's min_workers running.")
@_NAME
@_launcher_errors
def down(cluster_config_file, yes, workers_only, keep_min_workers, cluster_name) -> None:
    """Stop raggio on every node of the cluster and release the nodes."""
    from raggio.launcher import cluster_ops

    cluster_ops.down(load_config(cluster_config_file, cluster_name), yes=yes,
                     workers_only=workers_only, keep_min_workers=keep_min_workers)


@click.command()
@_CONFIG
@_NAME
@_NO_CACHE
@_launcher_errors
def attach(cluster_config_file, cluster_name, no_config_cache) -> None:
    """Open a shell on the cluster's head (the system's ssh client)."""
    from raggio.launcher import remote_ops

    argv = remote_ops.attach_argv(load_config(cluster_config_file, cluster_name))
    sys.stdout.flush()
    os.execvp(argv[0], argv)


def _run_on_head(config, start: bool, stop: bool, run) -> None:
    """``--start``: bring the cluster up first; ``--stop``: tear it down after; exit with
    ``run()``'s status."""
    from raggio.launcher import cluster_ops
    from raggio.launcher.updater import UpdatePlan

    if start:
        cluster_ops.up(config, plan=UpdatePlan(), yes=True)
    status = run()
    if stop:
        cluster_ops.down(config, yes=True)
    sys.exit(status)


@click.command(name="exec")
@_CONFIG
@click.argument("cmd")
@_START
@_STOP
@click.option("-p", "--port-forward", type=int, multiple=True,
              help="Forward this port of the head to this machine while the command runs.")
@_NAME
@_NO_CACHE
@_launcher_errors
def exec_(cluster_config_file, cmd, start, stop, port_forward, cluster_name,
          no_config_cache) -> None:
    """Run CMD on the cluster's head; its output here, its exit status ours."""
    from raggio.launcher import remote_ops

    config = load_config(cluster_config_file, cluster_name)
    _run_on_head(config, start, stop,
                 lambda: remote_ops.exec_command(config, cmd, port_forward))


@click.command(context_settings={"ignore_unknown_options": True})
@_CONFIG
@click.argument("script", type=click.Path(exists=True, dir_okay=False))
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED)
@_START
@_STOP
@_NAME
@_NO_CACHE
@_launcher_errors
def submit(cluster_config_file, script, script_args, start, stop, cluster_name,
           no_config_cache) -> None:
    """Copy SCRIPT to the head and run it there with python, passing SCRIPT_ARGS."""
    from raggio.launcher import remote_ops

    config = load_config(cluster_config_file, cluster_name)
    _run_on_head(config, start, stop, lambda: remote_ops.submit(config, script, script_args))


def _rsync_command(name: str, up: bool):
    @click.command(name=name)
    @_CONFIG
    @click.argument("source")
    @click.argument("target")
    @_NAME
    @_launcher_errors
    def command(cluster_config_file, source, target, cluster_name, all_nodes=False) -> None:
        from raggio.launcher import remote_ops

        remote_ops.rsync(load_config(cluster_config_file, cluster_name), source, target,
                         up=up, all_nodes=all_nodes)
    return command


rsync_up = click.option("-A", "--all-nodes", is_flag=True,
                        help="Copy to every node, not only the head.")(
    _rsync_command("rsync-up", up=True))
rsync_up.help = "Copy SOURCE on this machine to TARGET on the head (or every node)."
rsync_down = _rsync_command("rsync-down", up=False)
rsync_down.help = "Copy SOURCE on the head to TARGET on this machine."


@click.command(name="get-head-ip")
@_CONFIG
@_NAME
@_launcher_errors
def get_head_ip(cluster_config_file, cluster_name) -> None:
    """Print the head's address."""
    from raggio.launcher import remote_ops

    click.echo(remote_ops.head_ip(load_config(cluster_config_file, cluster_name)))


@click.command(name="get-worker-ips")
@_CONFIG
@_NAME
@_launcher_errors
def get_worker_ips(cluster_config_file, cluster_name) -> None:
    """Print the workers' addresses, one a line."""
    from raggio.launcher import remote_ops

    for ip in remote_ops.worker_ips(load_config(cluster_config_file, cluster_name)):
        click.echo(ip)


@click.command()
@_CONFIG
@click.option("--lines", type=int, default=100, show_default=True,
              help="Lines of the log shown before following it.")
@_NAME
@_launcher_errors
def monitor(cluster_config_file, lines, cluster_name) -> None:
    """Follow the autoscaler's log on the cluster's head."""
    from raggio.launcher import remote_ops

    sys.exit(remote_ops.monitor(load_config(cluster_config_file, cluster_name), lines))


@_launcher_errors
def forward_dashboard(cluster_config_file: str, port: int, cluster_name: str | None) -> None:
    """``raggio dashboard CLUSTER_CONFIG_FILE``: forward the head's dashboard until Ctrl-C."""
    from raggio.cli.dashboard import login_url
    from raggio.launcher import remote_ops

    def ready(url: str, token: str) -> None:
        click.echo(f"The head's dashboard is forwarded to {url}; Ctrl-C stops.")
        click.echo(f"Open it logged in (keep this URL private): {login_url(url, token)}")

    try:
        remote_ops.forward_dashboard(load_config(cluster_config_file, cluster_name), port,
                                     ready)
    except KeyboardInterrupt:
        pass


@click.command(name="head-info", hidden=True)
@click.option("--temp-dir", default=None)
def head_info(temp_dir: str | None) -> None:
    """On a head: what the launcher asks it over SSH, as one JSON line (see
    launcher/head_info.py): whether a head runs here, its addresses, its live nodes."""
    import json

    from raggio import cluster_file
    from raggio.cli import gcs_client
    from raggio.config import get_config

    current = cluster_file.read(temp_dir or get_config().temp_dir)
    if not cluster_file.daemon_running(current):
        click.echo(json.dumps({"running": False}))
        return
    (nodes,) = gcs_client.query(gcs_client.resolve(current["gcs_address"], temp_dir),
                                ("get_nodes", None))
    click.echo(json.dumps({
        "running": True, "gcs_address": current["gcs_address"],
        "dashboard_url": current.get("dashboard_url"),
        "ray_client_address": current.get("ray_client_address"),
        "alive_ips": sorted(node["node_ip"] for node in nodes if node["state"] == "ALIVE")}))


@click.command(name="merge-cluster-record", hidden=True)
@click.option("--cluster-name", required=True)
@click.argument("record_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("node_ids", nargs=-1)
def merge_cluster_record(cluster_name: str, record_file: str, node_ids: tuple[str, ...]) -> None:
    """On a head: take these nodes' records from RECORD_FILE (the launcher's record, which
    ``raggio up`` copied here) into this machine's record of the cluster, under its lock,
    so that its autoscaler's own changes stay (see ``_push_record`` in
    launcher/cluster_ops.py). The file is removed."""
    import json

    from raggio.launcher.cluster_state import ClusterState

    with open(record_file) as f:
        nodes = json.load(f)["nodes"]
    missing = [node_id for node_id in node_ids if node_id not in nodes]
    if missing:
        raise click.ClickException(f"{record_file} has no record of node(s) {missing}.")
    ClusterState(cluster_name).merge({node_id: nodes[node_id] for node_id in node_ids})
    os.remove(record_file)


COMMANDS = [head_info, merge_cluster_record, up, down, attach, exec_, submit, rsync_up,
            rsync_down, get_head_ip, get_worker_ips, monitor]
