"""``raggio logs``: list and print the log files of any node, as ``ray logs`` does.

Without a file name it lists each node's files by kind. With a glob it
prints the matching file (or lists the matches when there are several); the
node is ``--node-id`` or, by default, every node. ``--actor-id`` and ``--pid``
pick a worker's output (``--err`` for its stderr); ``--task-id`` the lines a
task printed, found through the task history: its latest attempt's worker,
and in that worker's file the lines under the task's name (workers mark
where each task name's output begins; a worker that ran other tasks of the
same name in between shows theirs too). ``--tail`` prints the last
lines; ``--follow`` keeps printing what the file gets until interrupted. The
CLI asks the node managers themselves, found through the control store.
"""

from __future__ import annotations

import fnmatch
import sys
import time

import click

from raggio.cli.gcs_client import query, resolve
from raggio.util.state.logs import log_group, read_task_lines

FOLLOW_POLL_S = 0.5
#: How long one request to a node may take (the CLI's one-shot default).
REQUEST_TIMEOUT_S = 10.0


#: Ray's subcommands of ``ray logs`` that name what to print.
SUBCOMMANDS = ("cluster", "actor", "task", "worker", "job")


def parse_words(words: tuple[str, ...], resource_id: str | None, actor_id: str | None,
                task_id: str | None, pid: int | None) -> tuple[str | None, str | None,
                                                            str | None]:
    """(glob, actor id, task id) from ``raggio logs [GLOB]`` or Ray's ``ray logs KIND ...``."""
    kind = words[0] if words and words[0] in SUBCOMMANDS else None
    rest = list(words[1:] if kind else words)
    if len(rest) > 1:
        raise click.UsageError(f"Give one file name or glob, not {len(rest)}: {rest}.")
    glob = rest[0] if rest else None
    if kind in ("actor", "task") and not (resource_id or actor_id or task_id):
        raise click.UsageError(f"`raggio logs {kind}` needs --id ID.")
    if kind == "worker" and pid is None:
        raise click.UsageError("`raggio logs worker` needs --pid PID.")
    if kind == "job":
        raise click.UsageError("raggio has no submission jobs yet: a driver prints its own "
                               "output. `raggio logs` lists the files of every node.")
    if resource_id is not None:
        if kind == "actor":
            actor_id = resource_id
        elif kind == "task":
            task_id = resource_id
        else:
            raise click.UsageError("--id goes with `raggio logs actor` or `raggio logs task`.")
    return glob, actor_id, task_id


def logs(glob: str | None, node_id: str | None, actor_id: str | None, task_id: str | None,
         pid: int | None, err: bool, tail: int, follow: bool, address: str | None) -> None:
    cluster = resolve(address)
    (nodes,) = query(cluster, ("get_nodes", None))
    nodes = [n for n in nodes if n["state"] == "ALIVE"]
    task_name = None
    if task_id is not None:
        if follow:
            raise click.UsageError("--follow works with a file, --actor-id or --pid, not "
                                   "--task-id.")
        node_id, pid, task_name = _task_location(cluster, task_id)
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
    if task_name is not None:
        _print_task_lines(cluster, node, name, task_name, tail)
        return
    _print_file(cluster, node, name, tail, follow)


def _task_location(cluster: dict, task_id: str) -> tuple[str, int, str]:
    """(node id, worker pid, task name) of the task's latest attempt that reached a worker."""
    try:
        task_bytes = bytes.fromhex(task_id)
    except ValueError:
        raise click.ClickException(f"{task_id!r} is not a task id (hex).") from None
    (attempts,) = query(cluster, ("get_task", task_bytes))
    if not attempts:
        raise click.ClickException(f"No task with id {task_id!r} in the task history. "
                                   "`raggio list tasks` shows the ids.")
    ran = [a for a in attempts if a["worker_pid"]]
    if not ran:
        raise click.ClickException(f"Task {task_id} has not run on a worker yet "
                                   f"({attempts[-1]['state']}).")
    latest = ran[-1]
    return latest["node_id"].hex(), latest["worker_pid"], (latest["info"] or {}).get("name")


def _print_task_lines(cluster: dict, node: dict, name: str, task_name: str,
                     tail: int) -> None:
    """The task's lines in its worker's file, read a chunk at a time (the file may be
    hundreds of MiB; only the last ``tail`` lines are kept)."""
    _write(b"".join(read_task_lines(cluster, node, name, task_name, tail, REQUEST_TIMEOUT_S)))


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
            by_kind.setdefault(log_group(entry["name"]), []).append(entry["name"])
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
