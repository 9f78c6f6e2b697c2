"""Ray's log API over HTTP: ``/api/v0/logs`` and ``/api/v0/logs/{file,stream}``.

``/api/v0/logs?node_id=...`` (or ``node_ip``; ``glob`` filters the names)
lists a node's log files by group, in Ray's envelope. ``/api/v0/logs/file``
answers one file's last ``lines`` lines (1,000 by default, -1 for all) as
``text/plain``; ``/api/v0/logs/stream`` answers them too, then follows the
file, sending what is appended every ``interval`` seconds (0.5 by default,
at least 0.1) until the client goes, as ``ray logs --follow``. The file is named by
``filename`` on ``node_id``/``node_ip``, or found as Ray finds it: the worker
with ``pid`` on that node, an actor's worker (``actor_id``), or the lines a
task printed (``task_id``, ``attempt_number``); ``suffix`` picks ``out`` or
``err``, and ``filter_ansi_code=true`` drops colour codes.

Which file and which lines are decided by the state API's log functions
(``raggio.util.state.logs``); the records come from the control store and
the files from the node managers (``node_managers.py``), a chunk (one
``read_log`` reply) at a time: what is sent is held no longer than its chunk,
and of a task's worker file only the task's last ``lines`` lines are kept. Wrong
parameters are 400 with Ray's messages; a node, actor, task or file that is not
there 404.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from raggio.dashboard.node_managers import NodeManagers
from raggio.dashboard.query import (not_found, parse_hex_id, query_bool, query_float,
                                    query_int, query_timeout)
from raggio.dashboard.routing import NODES, STORE, BadRequest, ok
from raggio.util.state.api import RayStateApiException, records_from_reply, records_request
from raggio.util.state.common import DEFAULT_LOG_LIMIT
from raggio.util.state.logs import (ANSI_CODE, TaskLines, actor_worker, check_log_request,
                                    follow_interval, log_groups, pick_node, task_worker,
                                    worker_file)
from raggio.util.state.rows import RESOURCES

logger = logging.getLogger(__name__)

#: Ray's name for a downloaded log when ``download_filename`` is not given.
DEFAULT_DOWNLOAD_FILENAME = "file.txt"


def _client_gone(request: web.Request) -> bool:
    # Needed to stop following a file that grows no more: only a write would notice.
    transport = request.transport
    return transport is None or transport.is_closing()


async def _live_node(request: web.Request, node_id: str | None, node_ip: str | None,
                     timeout_s: float) -> dict:
    nodes = await request.app[STORE].call("get_nodes", None, timeout_s=timeout_s)
    request.app[NODES].forget_dead(nodes)
    return pick_node(nodes, node_id, node_ip)


async def list_logs(request: web.Request) -> web.Response:
    """``GET /api/v0/logs``: a live node's log files (``node_id`` or ``node_ip``), the names
    matching ``glob``, by group (``worker_out``, ``worker_err``, ``raggio``, ``other``)."""
    node_id = request.query.get("node_id") or None
    node_ip = request.query.get("node_ip") or None
    if not node_id and not node_ip:
        raise BadRequest("Both node id and node ip are not provided. Please provide at least "
                         "one of them.")
    timeout_s = query_timeout(request)
    try:
        node = await _live_node(request, node_id, node_ip, timeout_s)
    except RayStateApiException as exc:
        return not_found(str(exc))
    entries = await request.app[NODES].call(node["address"], "list_logs", None,
                                            timeout_s=timeout_s)
    return ok({"result": log_groups(entries, request.query.get("glob"))})


async def _actor_row(request: web.Request, actor_id: str, timeout_s: float) -> dict | None:
    spec = RESOURCES["actors"]
    op, payload = records_request(spec)
    records, _ = records_from_reply(spec, await request.app[STORE].call(op, payload,
                                                                        timeout_s=timeout_s))
    return next((row for row in map(spec.shape, records) if row["actor_id"] == actor_id), None)


async def _task_rows(request: web.Request, task_id: str, timeout_s: float) -> list[dict]:
    attempts = await request.app[STORE].call("get_task", parse_hex_id(task_id, "task_id"),
                                             timeout_s=timeout_s)
    return [RESOURCES["tasks"].shape(attempt) for attempt in attempts]


async def _find_file(request: web.Request, timeout_s: float) -> tuple[dict, str, str | None]:
    """(node record, file name, the task's name when only its lines are wanted).

    Raises:
        BadRequest: the parameters do not say which file (Ray's messages).
        RayStateApiException: the node, actor, task or worker is not there.
    """
    query = request.query
    node_id, node_ip = query.get("node_id") or None, query.get("node_ip") or None
    filename, actor_id = query.get("filename") or None, query.get("actor_id") or None
    task_id, pid = query.get("task_id") or None, query_int(request, "pid", None)
    suffix = query.get("suffix", "out")
    try:
        check_log_request(node_id=node_id, node_ip=node_ip, filename=filename,
                          actor_id=actor_id, task_id=task_id, pid=pid, suffix=suffix,
                          follow=request.match_info["media_type"] == "stream",
                          submission_id=query.get("submission_id") or None)
    except (ValueError, RayStateApiException) as exc:
        raise BadRequest(str(exc)) from None
    task_name = None
    if actor_id:
        node_id, pid = actor_worker(await _actor_row(request, actor_id, timeout_s), actor_id)
        node_ip = None
    elif task_id:
        node_id, pid, task_name = task_worker(await _task_rows(request, task_id, timeout_s),
                                              task_id, query_int(request, "attempt_number", 0))
        node_ip = None
    node = await _live_node(request, node_id, node_ip, timeout_s)
    if filename is None:
        entries = await request.app[NODES].call(node["address"], "list_logs", None,
                                                timeout_s=timeout_s)
        filename = worker_file(entries, node, pid, suffix)
    return node, filename, task_name


@dataclass
class _LogFile:
    """One log file on one node, read through its node manager."""

    nodes: NodeManagers
    address: str
    name: str
    timeout_s: float

    async def read(self, **where) -> dict:
        """``read_log``'s reply, ``{"data", "offset"}``, at most a chunk: from ``offset``,
        or the last ``tail`` lines; with ``marks=True`` the workers' marker lines too."""
        return await self.nodes.call(self.address, "read_log", dict(where, name=self.name),
                                     timeout_s=self.timeout_s)


def _lines(request: web.Request) -> int:
    """``lines``: how many of the file's last lines; -1 for all, 0 (as Ray reads it) or
    absent for ``DEFAULT_LOG_LIMIT``."""
    return query_int(request, "lines", DEFAULT_LOG_LIMIT, least=-1) or DEFAULT_LOG_LIMIT


def _interval_s(request: web.Request) -> float:
    """``interval``: the seconds between two reads of a followed file."""
    try:
        return follow_interval(query_float(request, "interval", None))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


async def _begin_answer(request: web.Request) -> web.StreamResponse:
    """The headers of a ``text/plain`` answer, downloaded as ``download_filename``."""
    download = "".join(ch for ch in request.query.get("download_filename",
                                                      DEFAULT_DOWNLOAD_FILENAME)
                       if ch.isprintable() and ch not in '"\\')  # it goes in a header
    response = web.StreamResponse(
        headers={"Content-Disposition": f'attachment; filename="{download}"'})
    response.content_type = "text/plain"
    await response.prepare(request)
    return response


async def _send_task_lines(log: _LogFile, reply: dict, task_name: str, lines: int,
                           send: Callable[[bytes], Awaitable[None]]) -> None:
    """The task's last ``lines`` lines, picked chunk by chunk from ``reply`` (the file's
    first chunk, with its markers) to the file's end."""
    picked = TaskLines(task_name, lines)
    while reply["data"]:
        picked.feed(reply["data"])
        reply = await log.read(offset=reply["offset"], marks=True)
    await send(b"".join(picked.lines()))


async def _send_file(request: web.Request, log: _LogFile, reply: dict, follow_s: float | None,
                     send: Callable[[bytes], Awaitable[None]]) -> None:
    """The file from ``reply`` (its first chunk) to its end, chunk by chunk; then, with
    ``follow_s``, what it gets every ``follow_s`` seconds until the client goes."""
    await send(reply["data"])
    while reply["data"]:
        reply = await log.read(offset=reply["offset"])
        await send(reply["data"])
    while follow_s is not None and not _client_gone(request):
        await asyncio.sleep(follow_s)
        reply = await log.read(offset=reply["offset"])
        await send(reply["data"])


async def get_log(request: web.Request) -> web.StreamResponse:
    """``GET /api/v0/logs/file`` and ``/api/v0/logs/stream``: a log file's last ``lines``
    lines as ``text/plain``, and for ``stream`` what it gets after (see the module
    docstring for how the file is named). 400 for wrong parameters, 404 for a node, actor,
    task or file that is not there; an error once the answer has begun ends it."""
    media_type = request.match_info["media_type"]
    if media_type not in ("file", "stream"):
        raise BadRequest(f"Invalid media type: {media_type}. Use /api/v0/logs/file for a "
                         "file's lines or /api/v0/logs/stream to follow it.")
    lines, interval_s = _lines(request), _interval_s(request)
    filter_ansi = query_bool(request, "filter_ansi_code", False)
    timeout_s = query_timeout(request)
    try:
        node, filename, task_name = await _find_file(request, timeout_s)
    except RayStateApiException as exc:
        return not_found(str(exc))
    log = _LogFile(request.app[NODES], node["address"], filename, timeout_s)
    try:  # the first read, before answering: a file that is not there is a 404
        reply = await (log.read(offset=0, marks=True) if task_name is not None
                       else log.read(tail=lines))
    except ValueError as exc:
        return not_found(str(exc))
    response = await _begin_answer(request)

    async def send(data: bytes) -> None:
        if data:
            await response.write(ANSI_CODE.sub(b"", data) if filter_ansi else data)

    try:
        if task_name is not None:
            await _send_task_lines(log, reply, task_name, lines, send)
        else:
            await _send_file(request, log, reply,
                             interval_s if media_type == "stream" else None, send)
    except ConnectionResetError:  # the client went away
        return response
    except Exception:  # the answer has begun: end it, and say why in the log
        logger.exception("reading %s on %s for %s failed", filename, log.address,
                         request.path_qs)
        response.force_close()
        return response
    await response.write_eof()
    return response


def routes() -> list[web.RouteDef]:
    return [web.get("/api/v0/logs", list_logs),
            web.get("/api/v0/logs/{media_type}", get_log)]
