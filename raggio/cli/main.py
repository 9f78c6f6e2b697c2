"""``raggio`` / ``python -m raggio``: the command-line entry point.

Each command lives in a module of its own (start, stop, status); this one
declares their flags, with Ray's names, and turns errors into one line on
stderr and a non-zero exit. A command imports its module when it runs, so
that ``raggio start`` does not pay for the driver API that ``status`` uses.
"""

from __future__ import annotations

import click

import raggio
from raggio.common.states import DRAIN_DEADLINE_S, DRAIN_REASONS
from raggio.config import DEFAULT_CLIENT_PORT, DEFAULT_DASHBOARD_PORT, get_config


@click.group()
@click.version_option(raggio.__version__, prog_name="raggio")
def main() -> None:
    """raggio: Ray's programming model and cluster management, in pure Python."""


@main.command()
@click.option("--head", is_flag=True, help="Start the head node (control store + node manager).")
@click.option("--address", default=None, help="Join the cluster whose head is at HOST:PORT.")
@click.option("--port", type=int, default=None, help="The head's port (default 6379).")
@click.option("--num-cpus", type=float, default=None)
@click.option("--num-gpus", type=float, default=None)
@click.option("--resources", default=None, help='Custom resources as JSON: \'{"name": 1}\'.')
@click.option("--labels", default=None,
              help="Node labels: key1=value1,key2=value2 (or a JSON object of strings).")
@click.option("--labels-file", default=None,
              help="A YAML file of node labels (key: value); --labels wins where both set one.")
@click.option("--memory", type=int, default=None, help="Memory for tasks, in bytes.")
@click.option("--object-store-memory", type=int, default=None, help="Object store size, bytes.")
@click.option("--node-ip-address", default=None, help="This node's address.")
@click.option("--include-dashboard", type=bool, default=True, show_default=True,
              help="Run the dashboard (web UI and HTTP API) on the head.")
@click.option("--dashboard-host", default="127.0.0.1", show_default=True,
              help="The dashboard's address: 0.0.0.0 makes it reachable from the network.")
@click.option("--dashboard-port", type=int, default=DEFAULT_DASHBOARD_PORT, show_default=True,
              help="The dashboard's port (0: any free one).")
@click.option("--metrics-export-port", type=int, default=0,
              help="The port of this node's Prometheus metrics (default: any free one).")
@click.option("--alerting-config", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Head: alert rules and webhooks (a cluster file or its `alerting:` section).")
@click.option("--monitoring-config", default=None,
              type=click.Path(exists=True, dir_okay=False),
              help="Head: a cluster file's `monitoring_config:` (e.g. start Prometheus).")
@click.option("--autoscaling-config", default=None, type=click.Path(dir_okay=False),
              help="Head: the cluster file (the launcher's bootstrap config), checked and kept "
                   "in the control store for the autoscaler.")
@click.option("--node-manager-port", type=int, default=0,
              help="The node manager's port (default: any free one).")
@click.option("--object-manager-port", type=int, default=None,
              help="Accepted for Ray's start commands; raggio has no object manager port: "
                   "objects move over the node manager's (--node-manager-port).")
@click.option("--disable-usage-stats", is_flag=True,
              help="Accepted for Ray's start commands; raggio collects no usage stats.")
@click.option("--ray-client-server-port", type=int, default=DEFAULT_CLIENT_PORT)
@click.option("--temp-dir", default=None, help="Where session directories live.")
@click.option("--storage", default=None)
@click.option("--token", default=None, help="The cluster token (else RAGGIO_AUTH_TOKEN).")
@click.option("--block", is_flag=True, help="Stay in the foreground until the node exits.")
def start(**options) -> None:
    """Start raggio on this machine: a head, or a node joining a head."""
    from raggio.cli import start as start_module

    options["temp_dir"] = options["temp_dir"] or get_config().temp_dir
    if options["head"] == bool(options["address"]):
        raise click.UsageError("Pass either --head (start a cluster) or --address=HOST:PORT "
                               "(join one).")
    if options["head"]:
        start_module.start_head(options)
    else:
        start_module.start_worker_node(options)


@main.command()
@click.option("-f", "--force", is_flag=True, help="Kill at once (SIGKILL).")
@click.option("-g", "--grace-period", type=float, default=16.0,
              help="Seconds to wait for a clean exit before SIGKILL.")
@click.option("--temp-dir", default=None)
def stop(force: bool, grace_period: float, temp_dir: str | None) -> None:
    """Stop every raggio process on this machine."""
    from raggio.cli import stop as stop_module

    stop_module.stop(force, grace_period, temp_dir or get_config().temp_dir)


@main.command()
@click.option("--address", default=None, help="The head's HOST:PORT (default: this machine's).")
@click.option("--temp-dir", default=None)
def status(address: str | None, temp_dir: str | None) -> None:
    """Show nodes, resource usage and pending demand."""
    from raggio import cluster_file
    from raggio import cluster_status
    from raggio.cli import gcs_client
    from raggio.common import autoscaler_status

    cluster = gcs_client.resolve(address, temp_dir)
    nodes, groups, tasks, dashboard_url, autoscaler = gcs_client.query(
        cluster, ("get_nodes", None), ("placement_group_table", None), ("pending_tasks", None),
        ("kv_get", cluster_file.DASHBOARD_URL_KEY),
        ("kv_multi_get", autoscaler_status.KEYS))
    click.echo(cluster_status.render(
        nodes, groups, tasks, dashboard_url=dashboard_url.decode() if dashboard_url else None,
        autoscaler=autoscaler_status.read(*autoscaler)))


@main.command(name="drain-node")
@click.option("--address", default=None, help="The head's HOST:PORT (default: this machine's).")
@click.option("--node-id", required=True, help="The node to drain (`raggio list nodes`).")
@click.option("--reason", required=True, type=click.Choice(DRAIN_REASONS),
              help="IDLE_TERMINATION: refused while the node runs work. PREEMPTION: the "
                   "machine is going away; accepted at once, running work goes on.")
@click.option("--reason-message", required=True, help="Why, in words (shown as the "
                                                      "node's death reason once it stops).")
@click.option("--deadline-remaining-seconds", type=float, default=None,
              help=f"How long moving its objects may take (default {DRAIN_DEADLINE_S:.0f}).")
@click.option("--temp-dir", default=None)
def drain_node(address: str | None, node_id: str, reason: str, reason_message: str,
               deadline_remaining_seconds: float | None, temp_dir: str | None) -> None:
    """Take a node out of scheduling and move its objects to other nodes, so that it can
    be stopped losing nothing."""
    from raggio.cli import drain

    drain.drain_node(address, node_id, reason, reason_message, deadline_remaining_seconds,
                     temp_dir)


@main.command()
@click.argument("cluster_config_file", required=False)
@click.option("--address", default=None, help="The head's HOST:PORT (default: this machine's).")
@click.option("--open", "open_browser", is_flag=True, help="Open the URL in a web browser.")
@click.option("-p", "--port", type=int, default=DEFAULT_DASHBOARD_PORT, show_default=True,
              help="With CLUSTER_CONFIG_FILE: the local port the dashboard is forwarded to.")
@click.option("-n", "--cluster-name", default=None,
              help="With CLUSTER_CONFIG_FILE: override its cluster_name.")
@click.option("--temp-dir", default=None)
def dashboard(cluster_config_file: str | None, address: str | None, open_browser: bool,
              port: int, cluster_name: str | None, temp_dir: str | None) -> None:
    """Print a URL that opens the running cluster's dashboard, logged in.

    The URL carries the cluster token after '#', which the browser keeps to itself (it is
    never sent to a server); keep the URL private. With CLUSTER_CONFIG_FILE (a cluster
    `raggio up` started), forward the head's dashboard to this machine over SSH until
    Ctrl-C, and print the URL of the forwarded port.
    """
    if cluster_config_file is not None:
        from raggio.cli import launcher

        launcher.forward_dashboard(cluster_config_file, port, cluster_name)
        return
    from raggio.cli import dashboard as dashboard_module

    dashboard_module.dashboard(address, temp_dir, open_browser)


@main.command()
@click.argument("path")
@click.option("--address", default=None, help="The head's HOST:PORT (default: this machine's).")
@click.option("--temp-dir", default=None)
def backup(path: str, address: str | None, temp_dir: str | None) -> None:
    """Save the running control store's data to a new SQLite file."""
    from raggio.cli import backup as backup_module

    backup_module.backup(path, address, temp_dir)


@main.command()
@click.argument("path")
@click.option("--temp-dir", default=None)
@click.option("--storage", default=None, help="Where to install it (default: the head's store).")
def restore(path: str, temp_dir: str | None, storage: str | None) -> None:
    """Install a backup as the store the next `raggio start --head` recovers from."""
    from raggio.cli import backup as backup_module

    backup_module.restore(path, temp_dir or get_config().temp_dir, storage)


STATE_RESOURCES = ["nodes", "actors", "tasks", "jobs", "workers", "objects", "placement-groups"]


@main.command(name="list")
@click.argument("resource", type=click.Choice(STATE_RESOURCES))
@click.option("-f", "--filter", "filters", multiple=True,
              help='KEY=VALUE or KEY!=VALUE over the listed fields; repeat to combine.')
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--detail", is_flag=True, help="Show every field.")
@click.option("--format", "output_format", type=click.Choice(["table", "json", "yaml"]),
              default="table", show_default=True)
@click.option("--address", default=None, help="The head's HOST:PORT (default: this machine's).")
def list_(resource, filters, limit, detail, output_format, address) -> None:
    """List the cluster's nodes, actors, tasks, jobs, workers, objects or placement groups."""
    from raggio.cli import state

    click.echo(state.list_command(resource, filters, limit, detail, output_format, address))


@main.command(name="get")
@click.argument("resource", type=click.Choice(STATE_RESOURCES))
@click.argument("resource_id")
@click.option("--address", default=None, help="The head's HOST:PORT (default: this machine's).")
def get_(resource, resource_id, address) -> None:
    """Show one node, actor, task, job or placement group, with every field."""
    from raggio.cli import state

    click.echo(state.get_command(resource, resource_id, address))


@main.group()
def summary() -> None:
    """Summaries of the cluster's state."""


@summary.command(name="actors")
@click.option("--address", default=None, help="The head's HOST:PORT (default: this machine's).")
def summary_actors(address) -> None:
    """Actors grouped by class, with a count per state."""
    from raggio.cli import state

    click.echo(state.summary_actors_command(address))


@summary.command(name="tasks")
@click.option("--address", default=None, help="The head's HOST:PORT (default: this machine's).")
def summary_tasks(address) -> None:
    """Tasks grouped by function or class, with a count per state."""
    from raggio.cli import state

    click.echo(state.summary_tasks_command(address))


@summary.command(name="objects")
@click.option("--address", default=None, help="The head's HOST:PORT (default: this machine's).")
def summary_objects(address) -> None:
    """Object refs grouped by call site, with counts by state and reference type."""
    from raggio.cli import state

    click.echo(state.summary_objects_command(address))


@main.command()
@click.option("--group-by", type=click.Choice(["NODE_ADDRESS", "STACK_TRACE"]),
              default="NODE_ADDRESS", show_default=True)
@click.option("--sort-by", type=click.Choice(["PID", "OBJECT_SIZE", "REFERENCE_TYPE"]),
              default="OBJECT_SIZE", show_default=True)
@click.option("--stats-only", is_flag=True, help="Only the object stores' usage.")
@click.option("--address", default=None, help="The head's HOST:PORT (default: this machine's).")
def memory(group_by, sort_by, stats_only, address) -> None:
    """Every object reference in the cluster, and how full each object store is."""
    from raggio.cli import memory as memory_module

    click.echo(memory_module.memory(group_by, sort_by, stats_only, address))


@main.command()
@click.argument("words", nargs=-1)
@click.option("--node-id", default=None, help="Only this node's files (default: every node).")
@click.option("--id", "resource_id", default=None,
              help="With `actor` or `task` (Ray's forms): the actor's or the task's id.")
@click.option("--actor-id", default=None, help="The output of this actor's worker.")
@click.option("--task-id", default=None, help="The output of this task (its latest attempt).")
@click.option("--pid", type=int, default=None, help="The output of the worker with this pid.")
@click.option("--err", is_flag=True, help="With --actor-id or --pid: stderr, not stdout.")
@click.option("--tail", type=int, default=1000, show_default=True,
              help="Print the last N lines (-1: the whole file).")
@click.option("-f", "--follow", is_flag=True, help="Keep printing what the file gets.")
@click.option("--address", default=None, help="The head's HOST:PORT (default: this machine's).")
def logs(words, node_id, resource_id, actor_id, task_id, pid, err, tail, follow,
         address) -> None:
    """List the log files of the cluster's nodes, or print one.

    \b
    raggio logs [GLOB]               list the files, or print the one GLOB names
    raggio logs cluster [GLOB]       the same (Ray's form)
    raggio logs actor --id ID        an actor's worker output (also --actor-id)
    raggio logs task --id ID         a task's own lines (also --task-id)
    raggio logs worker --pid PID     a worker's output (also --pid)
    """
    from raggio.cli import logs as logs_module

    glob, actor_id, task_id = logs_module.parse_words(words, resource_id, actor_id, task_id,
                                                      pid)
    try:
        logs_module.logs(glob, node_id, actor_id, task_id, pid, err, tail, follow, address)
    except KeyboardInterrupt:
        pass


@main.group()
def metrics() -> None:
    """A local Prometheus that scrapes the cluster's metrics (Ray's `ray metrics`)."""


@metrics.command(name="launch-prometheus")
@click.option("--port", type=int, default=9090, show_default=True,
              help="Prometheus's port on 127.0.0.1 (0: any free one).")
@click.option("--temp-dir", default=None)
def launch_prometheus(port: int, temp_dir: str | None) -> None:
    """Start Prometheus (Debian's `prometheus` package) scraping every node of this
    machine's cluster, found through the head's service discovery file."""
    from raggio.cli import metrics as metrics_module

    metrics_module.launch_prometheus(port, temp_dir or get_config().temp_dir)


@metrics.command(name="shutdown-prometheus")
@click.option("--temp-dir", default=None)
def shutdown_prometheus(temp_dir: str | None) -> None:
    """Stop the Prometheus that launch-prometheus (or the head's monitoring_config) started."""
    from raggio.cli import metrics as metrics_module

    metrics_module.shutdown_prometheus(temp_dir or get_config().temp_dir)


@main.command()
@click.option("--quick", is_flag=True, help="0.5 s per row and one startup probe (rough).")
@click.option("--filter", "name_filter", envvar="TESTS_TO_RUN", default="",
              help="Only rows whose name contains this (also $TESTS_TO_RUN, as in Ray).")
@click.option("--json", "json_path", default=None, help="Also write the results here.")
def microbenchmark(quick: bool, name_filter: str, json_path: str | None) -> None:
    """Run the rows of `ray microbenchmark` on a local raggio cluster."""
    from raggio import microbenchmark as bench

    raise SystemExit(bench.run("raggio", quick=quick, name_filter=name_filter,
                               json_path=json_path))


@main.group()
def job() -> None:
    """Submit jobs to a cluster's dashboard and follow them (Ray's `ray job`)."""


_ADDRESS = click.option("--address", default=None,
                        help="The dashboard (http://HOST:8265); RAY_ADDRESS, or this "
                        "machine's cluster, when not given.")
_HEADERS = click.option("--headers", default=None,
                        help='JSON of headers sent with every request: {"KEY": "VALUE"}.')


@job.command(name="submit", context_settings={"ignore_unknown_options": True})
@_ADDRESS
@click.option("--no-wait", is_flag=True, help="Do not tail the job's logs until it exits.")
@click.option("--submission-id", "--job-id", "submission_id", default=None,
              help="The job's id (generated when not given).")
@click.option("--runtime-env-json", default=None, help="The job's runtime_env, as JSON.")
@click.option("--working-dir", default=None, help="The job's working_dir.")
@click.option("--metadata-json", default=None, help="The job's metadata, as JSON.")
@click.option("--entrypoint-num-cpus", type=float, default=None,
              help="CPUs reserved for the entrypoint itself.")
@click.option("--entrypoint-num-gpus", type=float, default=None,
              help="GPUs reserved for the entrypoint itself.")
@click.option("--entrypoint-memory", type=int, default=None,
              help="Memory (bytes) reserved for the entrypoint itself.")
@click.option("--entrypoint-resources", default=None,
              help="Custom resources reserved for the entrypoint, as JSON.")
@_HEADERS
@click.argument("entrypoint", nargs=-1, required=True, type=click.UNPROCESSED)
def job_submit(**options) -> None:
    """Submit a job: raggio job submit [OPTIONS] -- COMMAND..."""
    from raggio.cli import job as job_module
    job_module.submit(**options)


@job.command(name="status")
@_ADDRESS
@click.argument("job_id")
@_HEADERS
def job_status(address, job_id, headers) -> None:
    """A job's status and its message."""
    from raggio.cli import job as job_module
    job_module.status(address, job_id, headers)


@job.command(name="stop")
@_ADDRESS
@click.option("--no-wait", is_flag=True, help="Do not wait for the job to exit.")
@click.argument("job_id")
@_HEADERS
def job_stop(address, no_wait, job_id, headers) -> None:
    """Stop a job: SIGTERM to its process group, SIGKILL after a grace period."""
    from raggio.cli import job as job_module
    job_module.stop(address, no_wait, job_id, headers)


@job.command(name="logs")
@_ADDRESS
@click.argument("job_id")
@click.option("-f", "--follow", is_flag=True, help="Follow the log until the job exits.")
@_HEADERS
def job_logs(address, job_id, follow, headers) -> None:
    """What a job's entrypoint printed."""
    from raggio.cli import job as job_module
    job_module.logs(address, job_id, follow, headers)


@job.command(name="list")
@_ADDRESS
@_HEADERS
def job_list(address, headers) -> None:
    """Every submitted job and every driver."""
    from raggio.cli import job as job_module
    job_module.list_jobs(address, headers)


@job.command(name="delete")
@_ADDRESS
@click.argument("job_id")
@_HEADERS
def job_delete(address, job_id, headers) -> None:
    """Forget an ended job."""
    from raggio.cli import job as job_module
    job_module.delete(address, job_id, headers)


@main.group()
def alerts() -> None:
    """The alerts of the head's alerting config (`raggio start --head --alerting-config`)."""


@alerts.command(name="test")
@click.option("--address", default=None, help="The head's HOST:PORT (default: this machine's).")
@click.option("--alerting-config", "config_path", default=None,
              type=click.Path(exists=True, dir_okay=False),
              help="Test this file's webhooks instead of the running cluster's.")
@click.option("--temp-dir", default=None)
def alerts_test(address: str | None, config_path: str | None, temp_dir: str | None) -> None:
    """Send one test alert to each webhook and say whether it was delivered."""
    from raggio.cli import alerts as alerts_module

    alerts_module.test(address, config_path, temp_dir)


def _add_launcher_commands() -> None:
    from raggio.cli import launcher

    for command in launcher.COMMANDS:
        main.add_command(command)


_add_launcher_commands()

if __name__ == "__main__":
    main()
