"""``raggio start``: start a head (``--head``) or join a node to a cluster (``--address``).

The options become ``NodeSpec``s (``node_spec.py``), and their processes are
daemonized (their own session, output in the session's ``logs/``); the
command returns once the node is up and prints how to use it, or fails with
the node's own error (wrong address, wrong token, port in use) within seconds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import click
import psutil

from raggio import cluster_file
from raggio.config import DEFAULT_GCS_PORT, get_config
from raggio.exceptions import RaySystemError
from raggio.common.labels import check_node_labels, parse_labels_flag
from raggio.launch import wait_ready
from raggio.node.node_info import new_session_dir
from raggio.node_spec import FROM_STDIN, NodeSpec
from raggio.rpc import local_ip_for, split_address

#: How long ``start`` waits for its node to come up, and a joining node for the head.
START_TIMEOUT_S = 30.0
JOIN_CONNECT_TIMEOUT_S = 5.0


def default_head_ip() -> str:
    """This machine's address: the one its host name resolves to when an interface holds it
    (no traffic), else its first non-loopback interface address, else loopback. (A host name
    can resolve to an address this network namespace does not have.)"""
    own = [address.address for addresses in psutil.net_if_addrs().values()
           for address in addresses
           if address.family == socket.AF_INET and not address.address.startswith("127.")]
    try:
        by_name = socket.gethostbyname(socket.gethostname())
    except OSError:
        by_name = None
    if by_name in own or (by_name or "").startswith("127.") and not own:
        return by_name
    return own[0] if own else "127.0.0.1"


def _node_spec(options: dict, **fields) -> NodeSpec:
    """The node the options describe: its resources and labels, its temp dir, and ``fields``."""
    return NodeSpec(num_cpus=options["num_cpus"], num_gpus=options["num_gpus"],
                    memory=options["memory"], object_store_memory=options["object_store_memory"],
                    resources=_resources(options["resources"]),
                    labels=_labels(options.get("labels"), options.get("labels_file")),
                    temp_dir=options["temp_dir"],
                    metrics_export_port=options["metrics_export_port"] or 0,
                    node_manager_port=options["node_manager_port"] or 0, **fields)


def _resources(flag: str | None) -> dict:
    """The node's custom resources from ``--resources`` (a JSON object)."""
    if not flag:
        return {}
    try:
        value = json.loads(flag)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON ({exc}): {flag!r}; write "
                                 "it like '{\"name\": 1}'", param_hint="--resources")
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--resources")
    return value


def _labels(flag: str | None, path: str | None) -> dict[str, str]:
    """The node's labels from ``--labels-file`` then ``--labels`` (Ray 2.60's flags)."""
    labels = {}
    if path:
        import yaml
        try:
            with open(path) as file:
                from_file = yaml.safe_load(file)
            if not isinstance(from_file, dict):
                raise ValueError("The format after deserialization is not a key-value pair map.")
            labels.update(check_node_labels(from_file, reserved_ok=True))
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise click.BadParameter(str(exc), param_hint="--labels-file") from None
    if flag:
        try:
            labels.update(parse_labels_flag(flag))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--labels") from None
    return labels


def _abspath(path: str | None) -> str:
    """A file flag's path as the daemon (which may run elsewhere in the tree) reads it; ``~``
    expanded, which the shell leaves in ``--flag=~/file``."""
    return os.path.abspath(os.path.expanduser(path)) if path else ""


class _Daemon:
    """A node's process started in the background, and its log for error messages."""

    def __init__(self, name: str, log_path: str, process: subprocess.Popen):
        self.name = name
        self.log_path = log_path
        self.process = process

    @classmethod
    def start(cls, spec: NodeSpec, name: str) -> "_Daemon":
        log_path = os.path.join(spec.session_dir, "logs", f"{name}.err")
        with open(log_path, "ab") as log:
            return cls(name, log_path, spec.start_process(stderr=log, start_new_session=True))

    def hand_off(self, info: dict) -> None:
        """Send what the daemon waits for on stdin (``gcs_address=FROM_STDIN``)."""
        try:
            self.process.stdin.write(json.dumps(info).encode() + b"\n")
            self.process.stdin.close()
        except BrokenPipeError:
            pass  # it died already: ready() reports why

    def ready(self) -> dict:
        """Its ready line, or fail with the last line it logged."""
        try:
            ready = wait_ready(self.process, START_TIMEOUT_S, self.name)
        except RaySystemError as exc:
            with open(self.log_path) as f:
                lines = [line for line in f.read().splitlines() if line.strip()]
            reason = lines[-1] if lines else str(exc)
            raise click.ClickException(
                f"The {self.name} did not start: {reason}\n(full log: {self.log_path})")
        self.process.stdout.close()
        return ready

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


def start_head(options: dict) -> None:
    temp_dir = options["temp_dir"]
    current = cluster_file.read(temp_dir)
    if cluster_file.daemon_running(current):
        raise click.ClickException(
            f"raggio is already running on this machine (head at {current['gcs_address']}). "
            "Stop it with `raggio stop`, or join it with `raggio start --address=...`.")
    node_ip = options["node_ip_address"] or default_head_ip()
    port = DEFAULT_GCS_PORT if options["port"] is None else options["port"]
    session_dir, _ = new_session_dir(temp_dir)
    # The control store and the head node are two processes, so that either can be
    # restarted without the other (a killed control store leaves the head's workers running).
    control_store = NodeSpec(
        head=True, no_node=True, cluster_file=True, port=port, node_ip_address=node_ip,
        storage=options["storage"] or cluster_file.default_store_path(temp_dir),
        temp_dir=temp_dir, session_dir=session_dir,
        token=options["token"] or get_config().auth_token,
        include_dashboard=options["include_dashboard"],
        dashboard_host=options["dashboard_host"], dashboard_port=options["dashboard_port"],
        alerting_config=_abspath(options["alerting_config"]),
        monitoring_config=_abspath(options["monitoring_config"]),
        autoscaling_config=_abspath(options["autoscaling_config"]),
        ray_client_server_port=options["ray_client_server_port"])
    # The node starts (imports) while the control store does, and waits on stdin for the
    # address and token, which the control store knows once it has read its storage.
    node = _Daemon.start(_node_spec(options, head=True, gcs_address=FROM_STDIN,
                              node_ip_address=node_ip, session_dir=session_dir,
                              token=control_store.token), "node")
    try:
        ready = _Daemon.start(control_store, "head").ready()
    except click.ClickException:
        node.kill()
        raise
    node.hand_off({"gcs_address": ready["gcs_address"], "token": ready["token"]})
    try:
        node.ready()
    except click.ClickException:
        os.kill(ready["pid"], signal.SIGTERM)
        raise
    address = ready["gcs_address"]
    click.echo(f"Local node IP: {node_ip}\n")
    click.echo("--------------------\nraggio runtime started.\n--------------------\n")
    click.echo("Next steps")
    click.echo("  To add another node to this raggio cluster, run")
    click.echo(f"    RAGGIO_AUTH_TOKEN=$(cat {ready['token_path']}) raggio start --address='{address}'\n")
    click.echo("  To connect to this raggio cluster:")
    click.echo("    import raggio as ray\n    ray.init()\n")
    if "ray_client_address" in ready:
        click.echo("  To connect from another machine (with the token in RAGGIO_AUTH_TOKEN):")
        click.echo(f"    ray.init('ray://{ready['ray_client_address']}')\n")
    else:
        click.secho(f"  Warning: not serving ray:// clients (port "
                    f"{options['ray_client_server_port']} in use?); see "
                    f"{session_dir}/logs/head.err.", fg="yellow", err=True)
    click.echo(f"  The cluster token is in {ready['token_path']} (mode 0600); other machines pass "
               "it as --token or RAGGIO_AUTH_TOKEN.\n")
    click.echo("  To terminate the raggio runtime, run\n    raggio stop\n")
    click.echo("  To view the status of the cluster, use\n    raggio status")
    if "dashboard_url" in ready:
        click.echo(f"\n  View the dashboard at {ready['dashboard_url']}\n"
                   "    (`raggio dashboard` prints a URL that logs you in)")
        warning = control_store.dashboard_warning()
        if warning:
            click.secho(f"  Warning: {warning}", fg="yellow", err=True)
    if options["block"]:
        _block(ready["pid"])


def start_worker_node(options: dict) -> None:
    cfg = get_config()
    address = options["address"].removeprefix("raggio://")
    try:
        host, _ = split_address(address)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--address")
    token = options["token"] or cfg.auth_token
    current = cluster_file.read(options["temp_dir"])
    if not token and current is not None and current.get("gcs_address") == address:
        token = cluster_file.read_token(current)
    if not token:
        raise click.ClickException(
            f"No token for the cluster at {address}: pass --token or set RAGGIO_AUTH_TOKEN "
            "(`raggio start --head` printed where the head keeps it).")
    node_ip = options["node_ip_address"] or local_ip_for(host)
    session_dir, _ = new_session_dir(options["temp_dir"])
    spec = _node_spec(options, gcs_address=address, node_ip_address=node_ip,
                      session_dir=session_dir, token=token,
                      config={"connect_timeout_s": JOIN_CONNECT_TIMEOUT_S})
    ready = _Daemon.start(spec, "node").ready()
    click.echo(f"Local node IP: {node_ip}\n")
    click.echo("--------------------\nraggio runtime started.\n--------------------\n")
    click.echo(f"This node ({ready['node_id'][:16]}...) joined the cluster at {address}.")
    click.echo("To terminate the raggio runtime, run\n  raggio stop")
    if options["block"]:
        _block(ready["pid"])


def _block(pid: int) -> None:
    """``--block``: stay until the daemon exits; Ctrl-C or SIGTERM stops it."""
    def forward(signum, frame):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        time.sleep(0.2)
