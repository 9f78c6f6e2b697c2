"""``raggio up`` and ``raggio down``: a cluster file's nodes brought up, updated, torn down.

``up`` takes the cluster (``ClusterState.operation``), makes sure the
provider holds a head and the workers the file asks for (each type's
``min_workers``, within ``max_workers``), brings the head up to date, then
every worker in parallel (``updater.py``), and waits until the head counts
each started worker alive. A node that fails is shown with its output and
left marked failed; the others carry on, and the next ``up`` resumes it.
``down`` runs ``raggio stop`` on every node and gives the nodes back to the
provider, so nothing of the cluster keeps running.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shlex
import tempfile
import time
from collections.abc import Awaitable
from typing import TypeVar

import click

from raggio.config import get_config
from raggio.exceptions import ClusterLaunchError, NodeCommandError, NodeUnreachableError
from raggio.launcher import head_info, ssh
from raggio.launcher.cluster_config import ClusterConfig, NodeType
from raggio.launcher.cluster_state import ClusterState
from raggio.launcher.node_provider import (
    NODE_KIND_HEAD, NODE_KIND_WORKER, STATUS_JOINING, STATUS_UP_TO_DATE, TAG_RAY_NODE_KIND,
    TAG_RAY_USER_NODE_TYPE, NodeProvider, get_node_provider, new_node_tags)
from raggio.launcher.progress import Progress
from raggio.launcher.updater import NodeFailed, NodeUpdater, UpdatePlan, file_mounts_digest

T = TypeVar("T")

#: Where the head keeps the cluster's record for its autoscaler: the local provider's state
#: file under the head's default launcher_dir. ``up`` gives it the records it changed, and
#: ``up`` and ``down`` take back the workers' records from it.
HEAD_RECORD = "~/.raggio/clusters/{name}/state.json"
#: Where ``up`` copies its record for the head's ``raggio merge-cluster-record``.
HEAD_RECORD_INCOMING = HEAD_RECORD + ".from-up"
#: How long ``up`` waits for started workers to show as alive on the head.
JOIN_TIMEOUT_S = 60.0


@dataclasses.dataclass
class Cluster:
    """A cluster file with its provider and local state: what every command starts from.

    ``session(node_id)`` opens one SSH session per node and shares it; ``close_sessions``
    ends them."""

    config: ClusterConfig
    provider: NodeProvider
    state: ClusterState
    #: The node records the head's copy of the record holds, as last taken from it or given
    #: to it: ``up`` gives the head only the records it changed since.
    head_record: dict[str, dict] = dataclasses.field(default_factory=dict)
    _sessions: dict[str, asyncio.Task] = dataclasses.field(default_factory=dict)

    @classmethod
    def load(cls, config: ClusterConfig) -> "Cluster":
        return cls(config, get_node_provider(config.provider, config.cluster_name),
                   ClusterState(config.cluster_name))

    def nodes(self, kind: str) -> list[str]:
        return self.provider.non_terminated_nodes({TAG_RAY_NODE_KIND: kind})

    def head(self) -> str:
        """The head's node id; ClusterLaunchError if the cluster has none."""
        heads = self.nodes(NODE_KIND_HEAD)
        if not heads:
            raise ClusterLaunchError(
                f"Cluster {self.config.cluster_name!r} has no head: start it with "
                f"`raggio up {self.config.path}`.")
        return heads[0]

    def target(self, node_id: str) -> ssh.SshTarget:
        return ssh.SshTarget.of(self.config.auth, self.provider.external_ip(node_id))

    async def session(self, node_id: str) -> ssh.SshSession:
        """The node's SSH session; NodeUnreachableError if it cannot be reached."""
        if node_id not in self._sessions:
            self._sessions[node_id] = asyncio.ensure_future(ssh.connect(
                self.target(node_id), wait_s=get_config().launcher_ssh_wait_s))
        return await asyncio.shield(self._sessions[node_id])

    async def run(self, work: Awaitable[T]) -> T:
        """Await ``work``, then close the sessions it opened."""
        try:
            return await work
        finally:
            await self.close_sessions()

    async def close_sessions(self) -> None:
        for task in self._sessions.values():
            if task.done() and not task.cancelled() and task.exception() is None:
                await task.result().close()
            else:
                task.cancel()
        self._sessions.clear()


def up(config: ClusterConfig, *, plan: UpdatePlan, min_workers: int | None = None,
       max_workers: int | None = None, yes: bool = False) -> None:
    """Bring the cluster up to date with its file; ClusterLaunchError if a node failed."""
    cluster = Cluster.load(config)
    counts = _worker_counts(config, min_workers, max_workers)
    if not yes:
        workers = sum(counts.values())
        click.confirm(f"Bring up cluster {config.cluster_name!r}: a head and {workers} "
                      f"worker(s), provider {config.provider['type']}?", abort=True)
    with cluster.state.operation("raggio up"):
        asyncio.run(cluster.run(_up(cluster, counts, plan)))


def _worker_counts(config: ClusterConfig, min_workers: int | None,
                   max_workers: int | None) -> dict[str, int]:
    """How many workers of each type ``up`` starts: each type's min_workers, the whole
    within max_workers; ``--min-workers`` adds to the first worker type."""
    counts = {t.name: t.min_workers for t in config.worker_types()}
    cap = config.max_workers if max_workers is None else max_workers
    if min_workers is not None and counts and sum(counts.values()) < min_workers:
        first = next(iter(counts))
        counts[first] += min_workers - sum(counts.values())
    for name in reversed(list(counts)):
        excess = sum(counts.values()) - cap
        if excess > 0:
            counts[name] -= min(excess, counts[name])
    return counts


async def _up(cluster: Cluster, counts: dict[str, int], plan: UpdatePlan) -> None:
    config = cluster.config
    if cluster.nodes(NODE_KIND_HEAD):
        await _pull_record(cluster, cluster.head())
    await asyncio.to_thread(_ensure_nodes, cluster, counts)
    head_id = cluster.head()
    token = cluster.state.token()
    head_ip = cluster.provider.internal_ip(head_id)
    info = await _head_info(cluster, head_id)
    await _push_record(cluster, head_id)
    mounts_hash = await asyncio.to_thread(file_mounts_digest, config)  # once for all nodes
    alive = set(info.get("alive_ips", []))
    title = f"raggio up: cluster {config.cluster_name!r}"
    failures: list[str] = []
    with Progress(title, cluster.state.logs_dir) as progress:
        head = _updater(cluster, head_id, NODE_KIND_HEAD, head_ip, token, mounts_hash, plan,
                        head_ip in alive, progress)
        try:
            await head.run()
        except NodeFailed as exc:
            raise ClusterLaunchError(f"The head failed, so no worker was started.\n{exc}")
        # A restarted head is a new cluster: every worker must join it again.
        worker_plan = dataclasses.replace(plan, force_start=plan.force_start or head.started)
        workers = [_updater(cluster, node_id, NODE_KIND_WORKER, head_ip, token, mounts_hash,
                            worker_plan, node_id in alive and not head.started, progress)
                   for node_id in cluster.nodes(NODE_KIND_WORKER)]
        results = await asyncio.gather(*(w.run() for w in workers), return_exceptions=True)
        failures = [str(r) for r in results if isinstance(r, NodeFailed)]
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, NodeFailed):
                raise r
        await _push_record(cluster, head_id)
        changed = head.changed or any(w.changed for w in workers)
        started = [w for w, r in zip(workers, results) if r is None and w.started]
        if started:
            failures += await _wait_joined(cluster, head_id, started, progress)
    if failures:
        raise ClusterLaunchError(
            "Some nodes failed; the others are up. Run `raggio up` again to resume.\n\n"
            + "\n\n".join(failures))
    info = await _head_info(cluster, head_id)
    if not changed:
        click.echo(f"Cluster {config.cluster_name!r} is up to date: nothing changed since the "
                   "last `raggio up`, so nothing was done (`--restart-only` restarts raggio).")
    _print_next_steps(cluster, head_id, info)


async def _pull_record(cluster: Cluster, head_id: str) -> None:
    """Take the head's record of the workers: its autoscaler launches and removes them
    (``HEAD_RECORD``). Nothing when the head cannot be reached or keeps none."""
    try:
        session = await cluster.session(head_id)
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, "state.json")
            await session.download(HEAD_RECORD.format(name=cluster.config.cluster_name),
                                   local, use_rsync=False)
            with open(local) as f:
                head_nodes = json.load(f)["nodes"]
    except (NodeUnreachableError, NodeCommandError, OSError, ValueError, KeyError):
        return
    cluster.head_record = head_nodes
    with cluster.state.update() as document:
        for node_id, record in head_nodes.items():
            if record["tags"].get(TAG_RAY_NODE_KIND) == NODE_KIND_WORKER:
                document["nodes"][node_id] = record


async def _push_record(cluster: Cluster, head_id: str) -> None:
    """Give the head the node records ``up`` changed, so that its autoscaler counts the
    workers ``up`` set up (and never sets them up a second time).

    Only those records (all of them when ``_pull_record`` found none): the head's
    autoscaler may have launched or removed other nodes since, and the head's ``raggio
    merge-cluster-record`` writes the records under its lock, so those changes stay. A
    record both changed takes ``up``'s, which set the node up last. A head whose raggio has
    no such command (none yet, before its set-up, or an older one) gets the file whole.
    A failure is a warning: the head's set-up, which may install raggio, goes on.
    """
    nodes = cluster.state.read()["nodes"]
    changed = sorted(node_id for node_id, record in nodes.items()
                     if cluster.head_record.get(node_id) != record)
    if not changed:
        return
    name = cluster.config.cluster_name
    incoming = HEAD_RECORD_INCOMING.format(name=name)
    record, remote = (ssh.home_relative(path) for path in (incoming, HEAD_RECORD.format(name=name)))
    merge = ["raggio", "merge-cluster-record", f"--cluster-name={name}"]
    command = (f"if {shlex.join(merge + ['--help'])} >/dev/null 2>&1; "
               f"then {shlex.join(merge + [record, '--', *changed])}; "
               f"else mv -f {shlex.quote(record)} {shlex.quote(remote)}; fi")
    try:
        session = await cluster.session(head_id)
        await session.upload(cluster.state.path, incoming, use_rsync=False)
        result = await session.run(command, timeout_s=60)
    except (NodeUnreachableError, NodeCommandError):
        return  # the head's own update says why it cannot be reached
    if result.exit_status != 0:
        click.echo(f"Warning: the head did not take the cluster's record, so its autoscaler "
                   f"may not count the workers this `raggio up` set up (`{command}` exited "
                   f"{result.exit_status}):\n{result.output.strip()}", err=True)
        return
    cluster.head_record.update((node_id, nodes[node_id]) for node_id in changed)


def _ensure_nodes(cluster: Cluster, counts: dict[str, int]) -> None:
    """Have the provider hold a head and ``counts`` workers of each type."""
    config = cluster.config
    if not cluster.nodes(NODE_KIND_HEAD):
        _create(cluster, NODE_KIND_HEAD, config.node_types[config.head_node_type], 1)
    for type_name, count in counts.items():
        have = cluster.provider.non_terminated_nodes(
            {TAG_RAY_NODE_KIND: NODE_KIND_WORKER, TAG_RAY_USER_NODE_TYPE: type_name})
        if count > len(have):
            _create(cluster, NODE_KIND_WORKER, config.node_types[type_name], count - len(have))


def _create(cluster: Cluster, kind: str, node_type: NodeType, count: int) -> None:
    """Have the provider create ``count`` nodes of ``node_type``, as the autoscaler does."""
    cluster.provider.create_node_with_resources_and_labels(
        node_type.node_config,
        new_node_tags(cluster.config.cluster_name, kind, node_type.name,
                      use_spot=node_type.use_spot),
        count, node_type.resources, node_type.labels)


def _updater(cluster: Cluster, node_id: str, kind: str, head_ip: str, token: str,
             mounts_hash: str, plan: UpdatePlan, alive: bool,
             progress: Progress) -> NodeUpdater:
    tags = cluster.provider.node_tags(node_id)
    node_type = cluster.config.node_types[tags[TAG_RAY_USER_NODE_TYPE]]
    name = f"{kind}-{cluster.provider.external_ip(node_id)}"
    log_path = cluster.state.log_path(name)
    progress.add(name, cluster.provider.external_ip(node_id), log_path)
    return NodeUpdater(cluster.config, cluster.provider, node_id, name=name,
                       node_type=node_type, is_head=kind == NODE_KIND_HEAD, head_ip=head_ip,
                       token=token, plan=plan, alive=alive, log_path=log_path,
                       mounts_hash=mounts_hash, connect=lambda: cluster.session(node_id),
                       on_status=lambda status, detail: progress.update(name, status, detail))


async def _head_info(cluster: Cluster, head_id: str) -> dict:
    """The head's ``head_info``; ``{"running": False}`` when the head cannot be reached."""
    try:
        return await head_info.query(await cluster.session(head_id))
    except NodeUnreachableError as exc:
        return {"running": False, "error": str(exc)}


async def _wait_joined(cluster: Cluster, head_id: str, started: list[NodeUpdater],
                       progress: Progress) -> list[str]:
    """Wait until the head counts every started worker alive; the failures of those that
    never joined."""
    waiting = {cluster.provider.internal_ip(w.node_id): w for w in started if not w.is_head}
    for w in waiting.values():
        progress.update(w.name, STATUS_JOINING, "")
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while waiting and time.monotonic() < deadline:
        info = await _head_info(cluster, head_id)
        for ip in set(info.get("alive_ips", [])) & set(waiting):
            progress.update(waiting.pop(ip).name, STATUS_UP_TO_DATE, "")
        if waiting:
            await asyncio.sleep(0.25)
    return [f"{w.name} ({ip}): raggio started there but did not join the head at "
            f"{cluster.provider.internal_ip(head_id)} within {JOIN_TIMEOUT_S:.0f} s. Check that "
            f"it reaches the head's port, and its logs there (/tmp/raggio/session_latest/logs); "
            f"the launcher's log is {w.log_path}." for ip, w in waiting.items()]


def _print_next_steps(cluster: Cluster, head_id: str, info: dict) -> None:
    path = cluster.config.path
    head = cluster.provider.external_ip(head_id)
    workers = len(info.get("alive_ips", [])) - 1
    click.echo(f"\nCluster {cluster.config.cluster_name!r} is up: head {head}, "
               f"{max(workers, 0)} worker(s) alive.")
    click.echo("Useful commands:")
    click.echo(f"  raggio attach {path}          # a shell on the head")
    click.echo(f"  raggio exec {path} 'raggio status'")
    click.echo(f"  raggio submit {path} script.py  # run a script on the head")
    click.echo(f"  raggio dashboard {path}       # the dashboard, forwarded to this machine")
    click.echo(f"  raggio down {path}            # stop the cluster")
    if info.get("gcs_address"):
        click.echo("On the head: ray.init()  (or ray.init(address="
                   f"{info['gcs_address']!r}) on a node of the cluster)")
    if info.get("ray_client_address"):
        port = info["ray_client_address"].rsplit(":", 1)[1]
        click.echo(f"From elsewhere: RAGGIO_AUTH_TOKEN=$(cat {cluster.state.dir}/token) and "
                   f"ray.init('ray://{head}:{port}')")


def down(config: ClusterConfig, *, workers_only: bool = False, keep_min_workers: bool = False,
         yes: bool = False) -> None:
    """Stop raggio on the cluster's nodes and give them back to the provider."""
    cluster = Cluster.load(config)
    if not yes:
        click.confirm(f"Tear down cluster {config.cluster_name!r}?", abort=True)
    with cluster.state.operation("raggio down"):
        asyncio.run(cluster.run(_down(cluster, workers_only, keep_min_workers)))


async def _down(cluster: Cluster, workers_only: bool, keep_min_workers: bool) -> None:
    if cluster.nodes(NODE_KIND_HEAD):
        await _pull_record(cluster, cluster.head())
    workers = cluster.nodes(NODE_KIND_WORKER)
    if keep_min_workers:
        keep: set[str] = set()
        for node_type in cluster.config.worker_types():
            of_type = [w for w in workers if cluster.provider.node_tags(w).get(
                TAG_RAY_USER_NODE_TYPE) == node_type.name]
            keep.update(of_type[:node_type.min_workers])
        workers = [w for w in workers if w not in keep]
    stopping = workers if workers_only else workers + cluster.nodes(NODE_KIND_HEAD)
    results = await asyncio.gather(*(_stop_node(cluster, node_id) for node_id in stopping))
    failures = [message for message in results if message]
    stopped = [node_id for node_id, message in zip(stopping, results) if not message]
    cluster.provider.terminate_nodes(stopped)
    for node_id in stopped:
        click.echo(f"  stopped raggio on {cluster.provider.external_ip(node_id)}")
    if failures:
        raise ClusterLaunchError(
            "raggio could not be stopped on some nodes; they stay in the cluster's state, so "
            "`raggio down` again retries them.\n\n" + "\n\n".join(failures))
    if not workers_only and not keep_min_workers:
        cluster.state.forget_token()
    click.echo(f"Cluster {cluster.config.cluster_name!r}: {len(stopped)} node(s) stopped.")


async def _stop_node(cluster: Cluster, node_id: str) -> str | None:
    """``raggio stop`` on the node; the failure's message, or None."""
    try:
        result = await (await cluster.session(node_id)).run("raggio stop", timeout_s=120)
    except (NodeUnreachableError, NodeCommandError) as exc:
        return f"{cluster.provider.external_ip(node_id)}: {exc}"
    if result.exit_status != 0:
        return (f"{cluster.provider.external_ip(node_id)}: `raggio stop` failed "
                f"(exit status {result.exit_status}):\n{result.output[-1000:]}")
    return None
