"""The launcher's commands on a running cluster, over SSH to its head (or every node).

``exec`` and ``submit`` run a command (a script) on the head with its output
here and its exit status as ours; ``rsync-up``/``rsync-down`` copy files;
``attach`` hands the terminal to the system's ssh client; ``monitor`` tails
the head's autoscaler log; ``dashboard`` forwards the head's dashboard port
to this machine; ``get-head-ip``/``get-worker-ips`` read the provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import sys
from collections.abc import Callable

import click

from raggio.config import get_config
from raggio.launcher import head_info, ssh
from raggio.launcher.cluster_config import ClusterConfig
from raggio.launcher.cluster_ops import Cluster
from raggio.launcher.node_provider import NODE_KIND_WORKER

#: The head's autoscaler log (Ray's ``monitor.log``), under its session's logs.
MONITOR_LOG = "/tmp/raggio/session_latest/logs/monitor.log"


async def _session(cluster: Cluster, node_id: str) -> ssh.SshSession:
    return await ssh.connect(cluster.target(node_id), wait_s=get_config().launcher_ssh_wait_s)


def _echo_line(line: str) -> None:
    sys.stdout.write(line if line.endswith("\n") else line + "\n")
    sys.stdout.flush()


def exec_command(config: ClusterConfig, command: str,
                 port_forward: tuple[int, ...] = ()) -> int:
    """Run ``command`` on the head (``bash -c``), its output here; its exit status."""
    cluster = Cluster.load(config)
    head = cluster.head()

    async def run() -> int:
        session = await _session(cluster, head)
        try:
            async with contextlib.AsyncExitStack() as stack:
                for port in port_forward:
                    listener = await session.forward_local_port(port, port)
                    stack.callback(listener.close)
                result = await session.run(
                    command, env={"RAY_HEAD_IP": cluster.provider.internal_ip(head)},
                    secret_env={"RAGGIO_AUTH_TOKEN": cluster.state.token()},
                    on_line=_echo_line)
            return result.exit_status
        finally:
            await session.close()

    return asyncio.run(run())


def submit(config: ClusterConfig, script: str, args: tuple[str, ...]) -> int:
    """Copy ``script`` to the head's home and run it there with ``python``; its exit status."""
    cluster = Cluster.load(config)
    remote = f"~/{os.path.basename(script)}"

    async def upload() -> None:
        session = await _session(cluster, cluster.head())
        try:
            await session.upload(os.path.abspath(script), remote)
        finally:
            await session.close()

    asyncio.run(upload())
    command = " ".join(["python", remote, *map(shlex.quote, args)])
    return exec_command(config, command)


def rsync(config: ClusterConfig, source: str, target: str, *, up: bool,
          all_nodes: bool = False) -> None:
    """``rsync-up`` (to the head, or every node) or ``rsync-down`` (from the head)."""
    cluster = Cluster.load(config)
    nodes = [cluster.head()] + (cluster.nodes(NODE_KIND_WORKER) if up and all_nodes else [])

    async def copy(node_id: str) -> None:
        session = await _session(cluster, node_id)
        try:
            if up:
                await session.upload(os.path.abspath(source), target,
                                     exclude=config.rsync_exclude)
            else:
                await session.download(source, os.path.abspath(target))
        finally:
            await session.close()

    async def copy_all() -> None:
        await asyncio.gather(*(copy(node_id) for node_id in nodes))

    asyncio.run(copy_all())


def attach_argv(config: ClusterConfig) -> list[str]:
    """The system ssh client's command line for a shell on the head."""
    cluster = Cluster.load(config)
    return ssh.ssh_argv(cluster.target(cluster.head()), tty=True)


def head_ip(config: ClusterConfig) -> str:
    cluster = Cluster.load(config)
    return cluster.provider.external_ip(cluster.head())


def worker_ips(config: ClusterConfig) -> list[str]:
    cluster = Cluster.load(config)
    return [cluster.provider.external_ip(n) for n in cluster.nodes(NODE_KIND_WORKER)]


def monitor(config: ClusterConfig, lines: int) -> int:
    """Follow the head's autoscaler log until interrupted."""
    click.echo(f"Following {MONITOR_LOG} on the head ({head_ip(config)}); Ctrl-C stops. The "
               "autoscaler writes it on a head started with --autoscaling-config.", err=True)
    return exec_command(config, f"tail -n {int(lines)} -F {MONITOR_LOG}")


def forward_dashboard(config: ClusterConfig, local_port: int,
                      on_ready: Callable[[str, str], None]) -> None:
    """Forward ``local_port`` to the head's dashboard until interrupted; ``on_ready(url,
    token)`` once the forward listens."""
    cluster = Cluster.load(config)
    head = cluster.head()

    async def run() -> None:
        session = await _session(cluster, head)
        try:
            info = await head_info.query(session)
            if not info.get("dashboard_url"):
                raise click.ClickException(
                    f"No dashboard runs on the head of {config.cluster_name!r} "
                    f"({info.get('error') or 'its head was started without one'}).")
            remote_port = int(info["dashboard_url"].rsplit(":", 1)[1])
            remote_host = info["dashboard_url"].split("//", 1)[1].rsplit(":", 1)[0]
            if remote_host == "0.0.0.0":
                remote_host = "127.0.0.1"
            listener = await session.forward_local_port(local_port, remote_port, remote_host)
            on_ready(f"http://127.0.0.1:{listener.get_port()}", cluster.state.token())
            await listener.wait_closed()
        finally:
            await session.close()

    asyncio.run(run())

