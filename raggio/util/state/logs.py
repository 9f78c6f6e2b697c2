"""The state API's log functions (``ray.util.state.list_logs`` / ``get_log``).

Log files live in each node's session log directory; the node managers
serve them (``list_logs``, ``read_log``: ``node/log_files.py``), found
through the control store. ``get_log`` picks the file by name, by a
worker's pid, by an actor (its worker) or by a task (its attempt's worker,
and in that worker's file only the lines under the task's name marker), and
yields its lines, following the file with ``follow=True``.

The checks and choices that need no I/O (which node, which file, which lines
of a task, how often to follow, the groups of a listing) are functions of their
own, which the dashboard's log routes (``raggio/dashboard/log_routes.py``) share.
A file is read a chunk (one ``read_log`` reply) at a time, and a task's lines
are picked as the chunks come (``TaskLines``): a worker's file grows to 512 MiB
before it rotates, and holding it whole would cost that much memory.
"""

from __future__ import annotations

import collections
import fnmatch
import math
import re
import time
from typing import Iterator

from raggio.common.log_marks import JOB_MARK, TASK_MARK
from raggio.util.state.api import DEFAULT_TIMEOUT_S, RayStateApiException, get_resource

#: How often ``follow`` asks for new lines when no ``_interval`` is given.
FOLLOW_POLL_S = 0.5
#: The shortest ``_interval``: each poll is a request the node manager answers, and a
#: zero or negative sleep would ask again at once, over and over.
MIN_FOLLOW_INTERVAL_S = 0.1

#: ANSI escape codes (colours), which ``filter_ansi_code`` drops.
ANSI_CODE = re.compile(rb"\x1b\[[0-9;]*[A-Za-z]")

#: The marker lines as the files hold them (``common/log_marks.py``).
_TASK_MARK, _JOB_MARK = TASK_MARK.encode(), JOB_MARK.encode()


def log_group(name: str) -> str:
    """The group a log file is listed under: worker_out, worker_err, raggio or other."""
    if name.startswith("worker-"):
        return "worker_err" if name.endswith(".err") else "worker_out"
    if name.startswith(("head.", "node.")):
        return "raggio"
    return "other"


def list_logs(address: str | None = None, node_id: str | None = None,
              node_ip: str | None = None, glob_filter: str | None = None,
              timeout: float = DEFAULT_TIMEOUT_S, headers: dict | None = None,
              verify: bool | str = True) -> dict[str, list[str]]:
    """The log files of one node, by group: ``{"worker_out": [...], "raggio": [...]}``.

    Args:
        address: the cluster's address; None for the connected (or this machine's) one.
        node_id, node_ip: the node (one of them is required).
        glob_filter: only the file names matching this glob (``"*worker*"``).
        timeout: seconds to wait for each answer.

    Raises:
        ValueError: neither node_id nor node_ip.
        RayStateApiException: no such node, or no cluster there.
    """
    if node_id is None and node_ip is None:
        raise ValueError("At least one of node ip and node id is required")
    cluster, node = _node(address, node_id, node_ip, timeout)
    return log_groups(_ask(cluster, node, "list_logs", None, timeout), glob_filter)


def log_groups(entries: list[dict], glob_filter: str | None = None) -> dict[str, list[str]]:
    """The names in a node's ``list_logs`` reply that match the glob, by ``log_group``."""
    groups: dict[str, list[str]] = {}
    for entry in entries:
        if fnmatch.fnmatch(entry["name"], glob_filter or "*"):
            groups.setdefault(log_group(entry["name"]), []).append(entry["name"])
    return groups


def get_log(address: str | None = None, node_id: str | None = None,
            node_ip: str | None = None, filename: str | None = None,
            actor_id: str | None = None, task_id: str | None = None, pid: int | None = None,
            follow: bool = False, tail: int = -1, timeout: float = DEFAULT_TIMEOUT_S,
            suffix: str = "out", encoding: str | None = "utf-8", errors: str | None = "strict",
            submission_id: str | None = None, attempt_number: int = 0,
            _interval: float | None = None, filter_ansi_code: bool = False,
            headers: dict | None = None, verify: bool | str = True) -> Iterator:
    """Yield the lines of a log file (``str``, or ``bytes`` with ``encoding=None``).

    Args:
        node_id, node_ip: the node holding the file (not needed with actor_id or task_id).
        filename: the file's name in the node's log directory.
        actor_id: the output of the actor's worker.
        task_id: the lines the task printed (attempt ``attempt_number``).
        pid: the output of the worker with this pid (on node_id/node_ip).
        suffix: "out" or "err": which stream of a worker picked by actor, task or pid.
        tail: only the last this many lines; -1 for the whole file.
        follow: keep yielding lines as the file grows (every ``_interval`` seconds).
        filter_ansi_code: drop ANSI escape codes (colours).

    Raises:
        ValueError: no way to find the file was given, a bad suffix, follow with a task, or
            an ``_interval`` under ``MIN_FOLLOW_INTERVAL_S``.
        RayStateApiException: the node, actor, task or file is not there.
    """
    check_log_request(node_id=node_id, node_ip=node_ip, filename=filename, actor_id=actor_id,
                      task_id=task_id, pid=pid, suffix=suffix, follow=follow,
                      submission_id=submission_id)
    interval_s = follow_interval(_interval)
    task_name = None
    if actor_id is not None:
        node_id, pid = actor_worker(get_resource("actors", actor_id, address=address,
                                                 timeout=timeout), actor_id)
        node_ip = None
    elif task_id is not None:
        found = get_resource("tasks", task_id, address=address, timeout=timeout)
        attempts = found if isinstance(found, list) else [found] if found else []
        node_id, pid, task_name = task_worker(attempts, task_id, attempt_number)
        node_ip = None
    cluster, node = _node(address, node_id, node_ip, timeout)
    if filename is None:
        filename = worker_file(_ask(cluster, node, "list_logs", None, timeout), node, pid,
                               suffix)
    if task_name is not None:
        lines = read_task_lines(cluster, node, filename, task_name, tail, timeout)
    else:
        lines = _read_lines(cluster, node, filename, tail, follow, interval_s, timeout)
    for line in lines:
        if filter_ansi_code:
            line = ANSI_CODE.sub(b"", line)
        yield line if encoding is None else line.decode(encoding, errors or "strict")


def check_log_request(*, node_id: str | None, node_ip: str | None, filename: str | None,
                      actor_id: str | None, task_id: str | None, pid: int | None,
                      suffix: str, follow: bool, submission_id: str | None) -> None:
    """Whether these say which log to read, as Ray's ``GetLogOptions`` checks them.

    Raises:
        ValueError: no way to find the file, both node_id and node_ip, a bad suffix, or
            follow with a task (Ray's messages).
        RayStateApiException: a submission id (raggio has no submitted jobs yet).
    """
    if submission_id is not None:
        raise RayStateApiException(
            "raggio has no submission jobs: a driver prints its own output, so there is no "
            "job log to read by submission_id.")
    if suffix not in ("out", "err"):
        raise ValueError(f"Invalid suffix: {suffix}. Must be one of 'out' or 'err'.")
    if not (actor_id or task_id or pid or filename):
        raise ValueError("None of actor_id, task_id, pid, submission_id or filename is "
                         "provided. At least one of them is required to fetch logs.")
    if not (node_id or node_ip or actor_id or task_id):
        raise ValueError("node_id or node_ip must be provided as constructor arguments when "
                         "no actor or task_id is supplied as arguments.")
    if follow and task_id:
        raise ValueError("follow=True works with a filename, actor_id or pid, not task_id: "
                         "a task's lines are picked out of its worker's file once it ran.")
    if node_id and node_ip:
        raise ValueError("Both node_id and node_ip are given. Only one of them can be "
                         f"provided. Given node id: {node_id}, given node ip: {node_ip}")


def follow_interval(interval_s: float | None) -> float:
    """The seconds between two reads of a followed file: ``interval_s``, or
    ``FOLLOW_POLL_S`` when None.

    Raises:
        ValueError: not a finite number of seconds of at least ``MIN_FOLLOW_INTERVAL_S``.
    """
    if interval_s is None:
        return FOLLOW_POLL_S
    if not (math.isfinite(interval_s) and interval_s >= MIN_FOLLOW_INTERVAL_S):
        raise ValueError(f"interval must be at least {MIN_FOLLOW_INTERVAL_S} seconds, got "
                         f"{interval_s:g}.")
    return interval_s


def actor_worker(actor: dict | None, actor_id: str) -> tuple[str, int]:
    """(node id, pid) of the worker of an actor, from its state API row (None: no such
    actor).

    Raises:
        RayStateApiException: no such actor, or it has no worker yet.
    """
    if actor is None:
        raise RayStateApiException(f"No actor with id {actor_id!r}; list_actors() shows them.")
    if not actor["pid"] or not actor["node_id"]:
        raise RayStateApiException(f"Actor {actor_id} has no worker yet ({actor['state']}).")
    return actor["node_id"], actor["pid"]


def task_worker(attempts: list[dict], task_id: str, attempt_number: int) -> tuple[str, int, str]:
    """(node id, pid, task name) of the worker that ran one attempt of a task, from the
    task's state API rows.

    Raises:
        RayStateApiException: no such attempt, or it has not run on a worker yet.
    """
    attempt = next((a for a in attempts if a["attempt_number"] == attempt_number), None)
    if attempt is None:
        raise RayStateApiException(f"No attempt {attempt_number} of a task with id "
                                   f"{task_id!r}; list_tasks() shows them.")
    if not attempt["worker_pid"] or not attempt["node_id"]:
        raise RayStateApiException(f"Task {task_id} has not run on a worker yet "
                                   f"({attempt['state']}).")
    return attempt["node_id"], attempt["worker_pid"], attempt["name"]


def worker_file(entries: list[dict], node: dict, pid: int, suffix: str) -> str:
    """The name of the worker's ``out`` or ``err`` file in a node's ``list_logs`` reply.

    Raises:
        RayStateApiException: the node has no file of a worker with that pid.
    """
    pattern = f"worker-*-{pid}.{suffix}"
    names = [entry["name"] for entry in entries if fnmatch.fnmatch(entry["name"], pattern)]
    if not names:
        raise RayStateApiException(f"No log file of a worker with pid {pid} on node "
                                   f"{node['node_id'].hex()} ({node['node_ip']}).")
    return names[0]


def _read_lines(cluster: dict, node: dict, filename: str, tail: int, follow: bool,
                interval_s: float, timeout) -> Iterator[bytes]:
    """The file's last ``tail`` lines (with their line ends), a chunk at a time; then, with
    ``follow``, the lines it gets, every ``interval_s`` seconds."""
    reply = _ask(cluster, node, "read_log", {"name": filename, "tail": tail}, timeout)
    partial = b""  # a line whose end is in the next chunk
    while True:
        lines = (partial + reply["data"]).splitlines(keepends=True)
        partial = lines.pop() if lines and not lines[-1].endswith(b"\n") else b""
        yield from lines
        if not reply["data"]:  # the end of the file, for now
            if not follow:
                break
            time.sleep(interval_s)
        reply = _ask(cluster, node, "read_log", {"name": filename, "offset": reply["offset"]},
                     timeout)
    if partial:
        yield partial


def read_task_lines(cluster: dict, node: dict, filename: str, task_name: str, tail: int,
                     timeout) -> list[bytes]:
    """The last ``tail`` lines the task printed in its worker's file (all with -1)."""
    picked, offset = TaskLines(task_name, tail), 0
    while (reply := _ask(cluster, node, "read_log", {"name": filename, "offset": offset,
                                                     "marks": True}, timeout))["data"]:
        picked.feed(reply["data"])
        offset = reply["offset"]
    return picked.lines()


class TaskLines:
    """The lines under a task's name marker in a worker's file, fed a chunk at a time
    (workers mark where each task's output begins; other tasks of the same name that the
    worker ran show too). Only the last ``tail`` of them are kept (all with a negative
    ``tail``), and the chunk's last line until its end comes."""

    def __init__(self, task_name: str, tail: int):
        self._task_name = task_name
        self._kept: collections.deque[bytes] = collections.deque(
            maxlen=tail if tail >= 0 else None)
        self._partial = b""
        self._current: str | None = None  # the name of the task whose lines these are

    def feed(self, data: bytes) -> None:
        """The next bytes of the file."""
        lines = (self._partial + data).splitlines(keepends=True)
        self._partial = lines.pop() if lines and not lines[-1].endswith(b"\n") else b""
        self._take(lines)

    def lines(self) -> list[bytes]:
        """The task's lines in the file fed so far (with a last line that has no end)."""
        if self._partial:
            self._take([self._partial])
            self._partial = b""
        return list(self._kept)

    def _take(self, lines: list[bytes]) -> None:
        for line in lines:
            if line.startswith(_TASK_MARK):
                self._current = line[len(_TASK_MARK):].strip().decode(errors="replace")
            elif not line.startswith(_JOB_MARK) and self._current == self._task_name:
                self._kept.append(line)


def _cluster(address: str | None) -> dict:
    """{"gcs_address", "token"} of the cluster: the connected driver's, or found."""
    from raggio.core import context
    core = context.current_core_or_none()
    if address is None and core is not None:
        return {"gcs_address": core.gcs_address, "token": core.token}
    from raggio.core.one_shot import find
    try:
        return find(address)
    except (ConnectionError, OSError) as exc:
        raise RayStateApiException(str(exc)) from None


def _node(address: str | None, node_id: str | None, node_ip: str | None,
          timeout) -> tuple[dict, dict]:
    cluster = _cluster(address)
    from raggio.core.one_shot import query
    (nodes,) = query(cluster, [("get_nodes", None)], timeout)
    return cluster, pick_node(nodes, node_id, node_ip)


def pick_node(nodes: list[dict], node_id: str | None, node_ip: str | None) -> dict:
    """The live node with this id (hex), else with this ip, of the control store's
    ``get_nodes`` records.

    Raises:
        RayStateApiException: no live node has it.
    """
    for node in nodes:
        if node["state"] == "ALIVE" and (node["node_id"].hex() == node_id
                                         or (node_id is None and node["node_ip"] == node_ip)):
            return node
    raise RayStateApiException(f"No live node with {'id' if node_id else 'ip'} "
                               f"{node_id or node_ip!r}; list_nodes() shows them.")


def _ask(cluster: dict, node: dict, op: str, payload, timeout):
    from raggio.core.one_shot import query
    (reply,) = query(dict(cluster, gcs_address=node["address"]), [(op, payload)], timeout)
    return reply
