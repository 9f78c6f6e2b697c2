"""What a job's workers printed: ``GET /api/ui/jobs/{job_id}/logs``, for the Jobs page.

raggio's drivers print their own output (``raggio job``'s submitted jobs, with a log of
their own, come with the jobs issue), so a job's log here is its workers' lines: the
workers are the ones its newest task attempts ran on (the control store's task history),
their files are read from their nodes' log directories (``node_managers.py``), and of
each file only the lines under the job's ``:job_id:`` marker are kept (a worker returned
to its node's pool runs other jobs' tasks too). The answer is plain text, a header line
per worker and stream, at most ``lines`` lines of each.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from raggio.dashboard.control_store import Unavailable
from raggio.dashboard.query import parse_job_id, query_int
from raggio.dashboard.routing import NODES, STORE
from raggio.common.log_marks import JOB_MARK, TASK_MARK
from raggio.util.state.api import RayStateApiException
from raggio.util.state.logs import worker_file

#: The newest attempts whose workers are read, and the most workers shown.
ATTEMPTS_LOOKED_AT = 200
MAX_WORKERS = 8
DEFAULT_LINES, MAX_LINES = 1000, 10_000


def job_lines(data: bytes, job_number: int) -> list[bytes]:
    """The lines of ``data`` (a worker's file with its markers) printed for the job; lines
    before the first job marker are left out (whose they are is not known)."""
    wanted = f"{JOB_MARK}{job_number}".encode()
    out, current = [], None
    for line in data.splitlines(keepends=True):
        if line.startswith(JOB_MARK.encode()):
            current = line.strip() == wanted
        elif current and not line.startswith(TASK_MARK.encode()):
            out.append(line)
    return out


def _workers(attempts: list[dict]) -> list[tuple[bytes, int]]:
    """(node id, pid) of the workers the attempts ran on, newest first, no repeats."""
    seen: dict[tuple[bytes, int], None] = {}
    for attempt in attempts:
        if attempt["node_id"] and attempt["worker_pid"]:
            seen.setdefault((attempt["node_id"], attempt["worker_pid"]), None)
    return list(seen)[:MAX_WORKERS]


async def _worker_output(request: web.Request, node: dict, pid: int, job_number: int,
                         lines: int) -> list[str]:
    nodes = request.app[NODES]
    entries = await nodes.call(node["address"], "list_logs")
    out = []
    for suffix, stream in (("out", "stdout"), ("err", "stderr")):
        try:
            name = worker_file(entries, node, pid, suffix)
        except RayStateApiException:  # it wrote no such file, or it rotated away
            continue
        # Read more than `lines`: some of them are other jobs' and markers.
        reply = await nodes.call(node["address"], "read_log",
                                 {"name": name, "tail": lines * 4, "marks": True})
        kept = job_lines(reply["data"], job_number)[-lines:]
        if kept:
            out.append(f"--- {stream} of worker pid {pid} on {node['node_ip']} ---\n")
            out.extend(line.decode(errors="replace") for line in kept)
    return out


async def job_logs(request: web.Request) -> web.Response:
    """``GET /api/ui/jobs/{job_id}/logs?lines=N``: the last ``lines`` lines (1 to
    ``MAX_LINES``; ``DEFAULT_LINES`` when absent) the job's workers printed to each of
    their streams, as plain text under a header line per worker and stream. 400 for a
    ``job_id`` that is not hex or ``lines`` out of range."""
    job_number = parse_job_id(request.match_info["job_id"])
    lines = query_int(request, "lines", DEFAULT_LINES, least=1, most=MAX_LINES)
    store = request.app[STORE]
    nodes, history = await asyncio.gather(
        store.call("get_nodes"),
        store.call("task_page", {"filters": {"job_id": job_number},
                                 "limit": ATTEMPTS_LOOKED_AT}))
    request.app[NODES].forget_dead(nodes)
    alive = {node["node_id"]: node for node in nodes if node["state"] == "ALIVE"}
    workers = [(alive[node_id], pid) for node_id, pid in _workers(history["tasks"])
               if node_id in alive]
    parts = await asyncio.gather(*(_worker_output(request, node, pid, job_number, lines)
                                   for node, pid in workers), return_exceptions=True)
    out = []
    for (node, pid), part in zip(workers, parts):
        if isinstance(part, (Unavailable, ValueError)):  # a node away, a file rotated away
            out.append(f"--- worker pid {pid} on {node['node_ip']}: {part} ---\n")
        elif isinstance(part, BaseException):
            raise part
        else:
            out.extend(part)
    if not out:
        out = ["(No output: the job's workers printed nothing that is still in their logs. "
               "The driver's own output is in the terminal that runs it.)\n"]
    return web.Response(text="".join(out), content_type="text/plain")


def routes() -> list[web.RouteDef]:
    return [web.get("/api/ui/jobs/{job_id}/logs", job_logs)]
