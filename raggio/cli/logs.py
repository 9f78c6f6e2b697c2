"""``raggio logs``: list and print the log files of any node, as ``ray logs`` does.

Without a file name it lists each node's files by kind. With a glob it
prints the matching file (or lists the matches when there are several); the
node is ``--node-id`` or, by default, every node. ``--actor-id`` and ``--pid``
pick a worker's output (``--err`` for its stderr). ``--tail`` prints the last
lines; ``--follow`` keeps printing what the file gets until interrupted. The
CLI asks the node managers themselves, found through the control store.
"""

from __future__ import annotations

import fnmatch
import sys
import time

import click

from raggio.cli.gcs_client import query, resolve

FOLLOW_POLL_S = 0.5


def _kind(name: str) -> str:
    if name.startswith("worker-"):
        return "worker_err" if name.endswith(".err") else "worker_out"
    if name.startswith(("head.", "node.")):
        return "raggio"
    return "other"


def logs(glob: str | None, node_id: str | None, actor_id: str | None, pid: int | None,
         err: bool, tail: int, follow: bool, address: str | None) -> None:
    cluster = resolve(address)
    (nodes,) = query(cluster, ("get_nodes", None))
    nodes = [n for n in nodes if n["state"] == "ALIVE"]
    if actor_id is not None:
        node_id, pid = _actor_location(cluster, actor_id)
    if node_id is not None:
        nodes = [n for n in nodes if n["node_id"].hex() == node_id]
        if not nodes:
            raise click.ClickException(
                f"No live node with id {node_id!r}. `raggio list nodes` shows the ids.")
    files = {n["node_id"].hex(): _ask(cluster, n, "list_logs", None) for n in nodes}
    if pid is not None:
        glob = f"worker-*-{pid}.{'err' if err else 'out'}"
    if glob is None:
        _print_listing(nodes, files)
        return
    matches = [(n, f["name"]) for n in nodes for f in files[n["node_id"].hex()]
               if fnmatch.fnmatch(f["name"], glob)]
    if not matches:
        raise click.ClickException(
            f"No log file matches {glob!r} on {len(nodes)} node(s); `raggio logs` lists them.")
    if len(matches) > 1:
        click.echo(f"{len(matches)} files match {glob!r}; name one of them:")
        for node, name in matches:
            click.echo(f"  {name}  (node {node['node_id'].hex()[:16]}..., {node['node_ip']})")
        return
    node, name = matches[0]
    _print_file(cluster, node, name, tail, follow)


def _actor_location(cluster: dict, actor_id: str) -> tuple[str, int]:
    (actors,) = query(cluster, ("list_actors", None))
    for actor in actors:
        if actor["actor_id"].hex() == actor_id:
            if not actor["pid"] or not actor["node_id"]:
                raise click.ClickException(f"Actor {actor_id} has no worker yet ({actor['state']}).")
            return actor["node_id"].hex(), actor["pid"]
    raise click.ClickException(f"No actor with id {actor_id!r}. `raggio list actors` shows "
                               "the ids.")


def _print_listing(nodes: list[dict], files: dict) -> None:
    for node in nodes:
        click.echo(f"Node ID: {node['node_id'].hex()}\nNode IP: {node['node_ip']}\n---")
        by_kind: dict[str, list[str]] = {}
        for entry in files[node["node_id"].hex()]:
            by_kind.setdefault(_kind(entry["name"]), []).append(entry["name"])
        for kind in ("raggio", "worker_out", "worker_err", "other"):
            if kind in by_kind:
                click.echo(f"{kind}:")
                for name in by_kind[kind]:
                    click.echo(f"- {name}")


def _print_file(cluster: dict, node: dict, name: str, tail: int, follow: bool) -> None:
    reply = _ask(cluster, node, "read_log", {"name": name, "tail": tail})
    _write(reply["data"])
    while follow:
        time.sleep(FOLLOW_POLL_S)
        reply = _ask(cluster, node, "read_log", {"name": name, "offset": reply["offset"]})
        _write(reply["data"])


def _write(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.flush()


def _ask(cluster: dict, node: dict, op: str, payload):
    (reply,) = query(dict(cluster, gcs_address=node["address"]), (op, payload))
    return reply
