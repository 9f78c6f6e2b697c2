"""Ray's log API over HTTP: ``/api/v0/logs`` and ``/api/v0/logs/{file,stream}``.

``/api/v0/logs?node_id=...`` (or ``node_ip``; ``glob`` filters the names)
lists a node's log files by group, in Ray's envelope. ``/api/v0/logs/file``
answers one file's last ``lines`` lines (1,000 by default, -1 for all) as
``text/plain``; ``/api/v0/logs/stream`` answers them too, then follows the
file, sending what is appended every ``interval`` seconds (0.5 by default)
until the client goes, as ``ray logs --follow``. The file is named by
``filename`` on ``node_id``/``node_ip``, or found as Ray finds it: the worker
with ``pid`` on that node, an actor's worker (``actor_id``), or the lines a
task printed (``task_id``, ``attempt_number``); ``suffix`` picks ``out`` or
``err``, and ``filter_ansi_code=true`` drops colour codes.

Which file and which lines are decided by the state API's log functions
(``raggio.util.state.logs``); the records come from the control store and
the files from the node managers (``node_managers.py``). Wrong parameters are
400 with Ray's messages; a node, actor, task or file that is not there 404.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from raggio.dashboard.query import query_bool, query_float, query_int, query_timeout
from raggio.dashboard.routing import NODES, STORE, BadRequest, error_body, ok
from raggio.util.state.api import RayStateApiException, records_from_reply, records_request
from raggio.util.state.common import DEFAULT_LOG_LIMIT
from raggio.util.state.logs import (ANSI_CODE, FOLLOW_POLL_S, actor_worker, check_log_request,
                                    log_groups, pick_node, task_lines, task_worker,
                                    worker_file)
from raggio.util.state.rows import RESOURCES

logger = logging.getLogger(__name__)

#: Ray's name for a downloaded log when ``download_filename`` is not given.
DEFAULT_DOWNLOAD_FILENAME = "file.txt"


def _client_gone(request: web.Request) -> bool:
    # Needed to stop following a file that grows no more: only a write would notice.
    transport = request.transport
    return transport is None or transport.is_closing()


def _not_found(message: str) -> web.Response:
    return web.json_response(error_body(message), status=404)


async def _live_node(request: web.Request, node_id: str | None, node_ip: str | None,
                     timeout_s: float) -> dict:
    nodes = await request.app[STORE].call("get_nodes", None, timeout_s=timeout_s)
    return pick_node(nodes, node_id, node_ip)


async def list_logs(request: web.Request) -> web.Response:
    node_id = request.query.get("node_id") or None
    node_ip = request.query.get("node_ip") or None
    if not node_id and not node_ip:
        raise BadRequest("Both node id and node ip are not provided. Please provide at least "
                         "one of them.")
    timeout_s = query_timeout(request)
    try:
        node = await _live_node(request, node_id, node_ip, timeout_s)
    except RayStateApiException as exc:
        return _not_found(str(exc))
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
    try:
        task_bytes = bytes.fromhex(task_id)
    except ValueError:
        raise BadRequest(f"task_id must be a task's id in hex, got {task_id!r}.") from None
    attempts = await request.app[STORE].call("get_task", task_bytes, timeout_s=timeout_s)
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


async def get_log(request: web.Request) -> web.StreamResponse:
    media_type = request.match_info["media_type"]
    if media_type not in ("file", "stream"):
        raise BadRequest(f"Invalid media type: {media_type}. Use /api/v0/logs/file for a "
                         "file's lines or /api/v0/logs/stream to follow it.")
    lines = query_int(request, "lines", DEFAULT_LOG_LIMIT)
    interval_s = query_float(request, "interval", None) or FOLLOW_POLL_S
    filter_ansi = query_bool(request, "filter_ansi_code", False)
    timeout_s = query_timeout(request)
    try:
        node, filename, task_name = await _find_file(request, timeout_s)
    except RayStateApiException as exc:
        return _not_found(str(exc))
    nodes, address = request.app[NODES], node["address"]
    try:  # the first read, before answering: a file that is not there is a 404
        reply = await nodes.call(address, "read_log", {
            "name": filename, "tail": -1 if task_name else lines,
            "marks": task_name is not None}, timeout_s=timeout_s)
    except ValueError as exc:
        return _not_found(str(exc))
    download = "".join(ch for ch in request.query.get("download_filename",
                                                      DEFAULT_DOWNLOAD_FILENAME)
                       if ch.isprintable() and ch not in '"\\')  # it goes in a header
    response = web.StreamResponse(
        headers={"Content-Disposition": f'attachment; filename="{download}"'})
    response.content_type = "text/plain"
    await response.prepare(request)

    async def send(data: bytes) -> None:
        if data:
            await response.write(ANSI_CODE.sub(b"", data) if filter_ansi else data)

    async def read_from(offset: int) -> dict:
        return await nodes.call(address, "read_log", {"name": filename, "offset": offset,
                                                      "marks": task_name is not None},
                                timeout_s=timeout_s)

    try:
        if task_name is not None:  # the task's lines: the whole file, then pick them
            data = reply["data"]
            while (reply := await read_from(reply["offset"]))["data"]:
                data += reply["data"]
            picked = task_lines(data.splitlines(keepends=True), task_name)
            await send(b"".join(picked[-lines:] if lines >= 0 else picked))
        else:
            await send(reply["data"])
            while reply["data"]:  # a reply holds at most a chunk of a big file
                reply = await read_from(reply["offset"])
                await send(reply["data"])
            while media_type == "stream" and not _client_gone(request):
                await asyncio.sleep(interval_s)
                reply = await read_from(reply["offset"])
                await send(reply["data"])
    except ConnectionResetError:  # the client went away
        return response
    except Exception:  # the answer has begun: end it, and say why in the log
        logger.exception("reading %s on %s for %s failed", filename, address, request.path_qs)
        response.force_close()
        return response
    await response.write_eof()
    return response


def routes() -> list[web.RouteDef]:
    return [web.get("/api/v0/logs", list_logs),
            web.get("/api/v0/logs/{media_type}", get_log)]
