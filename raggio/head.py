"""The head process: the control store, and (for a private cluster) the head node's manager.

Its flags are a ``NodeSpec``'s (``node_spec.py``), with ``--head`` and no
``--gcs-address``. ``init()`` with no cluster to join runs it ``--tied``: the
head exits when the driver's pipe (its stdin) closes, and other drivers on
the machine that joined it lose their cluster. ``raggio start --head`` runs it
daemonized. Both record the head in the current-cluster file so that
``init()``, ``init(address="auto")`` and the CLI find it. It prints one JSON line with
its addresses when ready. Both servers keep their own RPC surfaces and talk
over loopback, as on a multi-node cluster; sharing a process saves a Python
interpreter (~30 MB and ~100 ms of start-up).
"""

from __future__ import annotations

import logging
import os
import secrets
import sys

from raggio.alerts.config import CONFIG_KEY as ALERTING_CONFIG_KEY, load_file
from raggio.client.server import ClientServer
from raggio.config import get_config
from raggio.dashboard import supervisor
from raggio.gcs.server import GcsServer
from raggio.gcs.storage import open_storage
from raggio import cluster_file
from raggio.launch import print_ready
from raggio.monitoring.head_monitoring import HeadMonitoring
from raggio.node.main import run_main, session_for, start_node_manager, wait_for_exit
from raggio.node_spec import HEAD_MODULE, NodeSpec
from raggio.supervised import Supervised
from raggio.exceptions import RpcError


logger = logging.getLogger(__name__)


async def _start_client_server(spec: NodeSpec, gcs: GcsServer, token: str,
                               session_dir: str) -> ClientServer | None:
    """The ray:// client server on ``spec.ray_client_server_port``; None (with a warning in
    the head's log) when the port is in use: a head is more use without it than not at
    all, and several clusters on one machine would otherwise race for Ray's 10001."""
    clients = ClientServer(listen=f"{spec.node_ip_address}:{spec.ray_client_server_port}",
                           gcs_address=gcs.address, token=token, session_dir=session_dir,
                           cfg=get_config())
    try:
        await clients.start()
    except RpcError as exc:
        logger.warning("Not serving ray:// clients: %s (--ray-client-server-port)", exc)
        return None
    return clients


def _write_token(session_dir: str, token: str) -> str:
    path = os.path.join(session_dir, "token")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    return path


def cluster_token(storage, given: str) -> str:
    """The token given, else the one a previous head of this store used (so that nodes and
    drivers that outlived it can reconnect), else a new one; kept in the store."""
    stored = storage.get("cluster", b"token")
    token = given or (stored.decode() if stored else secrets.token_hex(16))
    storage.put("cluster", b"token", token.encode())
    return token


def _record_dashboard(gcs: GcsServer, dashboard: supervisor.DashboardSupervisor | None) -> None:
    """Keep the dashboard's URL in the control store, or remove the one a previous head of
    this store recorded (see ``cluster_file.DASHBOARD_URL_KEY``)."""
    if dashboard is not None:
        gcs.kv_put(None, [cluster_file.DASHBOARD_URL_KEY, dashboard.url.encode(), True])
    elif gcs.kv_get(None, cluster_file.DASHBOARD_URL_KEY) is not None:
        gcs.kv_del(None, cluster_file.DASHBOARD_URL_KEY)


def _alerting_config(spec: NodeSpec) -> bytes | None:
    """The checked alerting section of ``spec.alerting_config`` as the KV keeps it; None
    without one.

    Raises:
        ValueError: the file is not a valid alerting config (the message names the key and
            the fix), or the head runs no dashboard, where the alerts run.
    """
    if not spec.alerting_config:
        return None
    if not spec.include_dashboard:
        raise ValueError("--alerting-config needs the dashboard, whose process sends the "
                         "alerts; drop --include-dashboard=false.")
    return load_file(spec.alerting_config).to_json()  # jsonschema is imported only now


def _autoscaling_config(spec: NodeSpec) -> bytes | None:
    """The cluster file of ``--autoscaling-config``, checked and normalised, as the KV keeps
    it (``launcher/cluster_config.py``); None without one.

    Raises:
        ClusterConfigError: the file is not a cluster file raggio can run (a ValueError).
    """
    if not spec.autoscaling_config:
        return None
    from raggio.launcher import cluster_config  # yaml and jsonschema only for a head given one

    return cluster_config.load(spec.autoscaling_config).to_json()


def _record_autoscaling(gcs: GcsServer, config: bytes | None) -> None:
    """Keep the cluster config in the control store for the autoscaler, or remove the one a
    previous head of this store kept."""
    from raggio.launcher.cluster_config import CONFIG_KEY

    if config is not None:
        gcs.kv_put(None, [CONFIG_KEY, config, True])
    elif gcs.kv_get(None, CONFIG_KEY) is not None:
        gcs.kv_del(None, CONFIG_KEY)


def _record_alerting(gcs: GcsServer, config: bytes | None) -> None:
    """Keep the alerting section in the control store for the dashboard's alert manager
    (``raggio/alerts/manager.py``), or remove the one a previous head of this store kept."""
    if config is not None:
        gcs.kv_put(None, [ALERTING_CONFIG_KEY, config, True])
    elif gcs.kv_get(None, ALERTING_CONFIG_KEY) is not None:
        gcs.kv_del(None, ALERTING_CONFIG_KEY)


def _monitor(spec: NodeSpec, gcs_address: str, session_dir: str, token_path: str,
             token: str) -> Supervised:
    """The autoscaler's monitor process (``raggio/autoscaler/monitor.py``), not started yet."""
    return Supervised("monitor", [
        sys.executable, "-m", "raggio.autoscaler.monitor", "--gcs-address", gcs_address,
        "--session-dir", session_dir, "--token-path", token_path,
        "--head-ip", spec.node_ip_address,
        "--parent-pid", str(os.getpid())], session_dir,
        env=dict(os.environ, RAGGIO_AUTH_TOKEN=token))


async def run_head(spec: NodeSpec) -> None:
    cfg = get_config()
    alerting = _alerting_config(spec)  # a bad file fails the start before anything runs
    autoscaling = _autoscaling_config(spec)  # so does a bad cluster file
    storage = open_storage(spec.storage)  # raises ValueError, naming the problem, at once
    token = cluster_token(storage, cfg.auth_token)
    session_dir, session_name = session_for(spec)
    token_path = _write_token(session_dir, token)
    # Before anything runs: a bad --monitoring-config, or a Prometheus that cannot run, fails
    # the start with the reason.
    monitoring = HeadMonitoring(session_dir, spec.monitoring_config)
    # The dashboard's port first: a port in use fails the start before anything runs.
    dashboard = None
    if spec.include_dashboard:
        dashboard_socket = supervisor.bind(spec.dashboard_host, spec.dashboard_port,
                                           search=spec.dashboard_port_search)
    gcs = GcsServer(listen=f"{spec.node_ip_address}:{spec.port}", token=token,
                    session_dir=session_dir, storage=storage, cfg=cfg)
    node = clients = monitor = None
    try:
        await gcs.start()
        if spec.ray_client_server_port is not None:
            clients = await _start_client_server(spec, gcs, token, session_dir)
        if spec.include_dashboard:
            dashboard = supervisor.DashboardSupervisor(
                dashboard_socket, gcs_address=gcs.address, session_dir=session_dir,
                node_ip=spec.node_ip_address)
        _record_dashboard(gcs, dashboard)
        _record_alerting(gcs, alerting)
        _record_autoscaling(gcs, autoscaling)
        if autoscaling is not None:
            monitor = _monitor(spec, gcs.address, session_dir, token_path, token)
        helpers = [helper for helper in (dashboard, monitor) if helper is not None]
        gcs.head_components = lambda: {helper.pid(): helper.name for helper in helpers
                                       if helper.pid()}
        if not spec.no_node:
            node = await start_node_manager(spec, cfg, gcs_address=gcs.address, token=token,
                                            session_dir=session_dir, session_name=session_name)
        info = {"gcs_address": gcs.address, "session_dir": session_dir,
                "token_path": token_path, "pid": os.getpid()}
        if dashboard is not None:
            info["dashboard_url"] = dashboard.url
        if clients is not None:
            info["ray_client_address"] = clients.address
        if node is not None:
            info.update(node_address=node.server.address, node_id=node.node_id.hex())
        # A private head (init()) is recorded too, as Ray records the cluster ray.init()
        # starts, so that another driver's init() on this machine joins it; but it leaves
        # alone the record of a running `raggio start --head` (init(address="local") started
        # it beside).
        if spec.cluster_file and not (spec.tied and cluster_file.head_running(
                cluster_file.read(spec.temp_dir))):
            cluster_file.write(spec.temp_dir, dict(info, tied=spec.tied))
        print_ready(dict(info, token=token))
        if dashboard is not None:  # after the ready line: a driver's init() does not wait
            # A tied head (init()'s, Cluster's) lives as long as one program: its dashboard
            # starts when someone opens it, unless it runs alerts. A daemon's is ready at once.
            dashboard.start(on_demand=spec.tied and alerting is None)
        monitoring.start()  # after the ready line too: Prometheus gets ready in its own time
        if monitor is not None:
            monitor.start()
        await wait_for_exit(spec.tied)
    finally:
        if clients is not None:
            await clients.close()
        await monitoring.close()
        if monitor is not None:
            await monitor.stop()
        if spec.cluster_file:
            cluster_file.remove(spec.temp_dir, gcs.address)
        if dashboard is not None:
            await dashboard.stop()
        elif spec.include_dashboard:
            dashboard_socket.close()
        if node is not None:
            await node.close()
        await gcs.close()


def main(argv: list[str] | None = None) -> None:
    run_main(run_head, NodeSpec.from_argv(sys.argv[1:] if argv is None else argv, HEAD_MODULE))


if __name__ == "__main__":
    main()
