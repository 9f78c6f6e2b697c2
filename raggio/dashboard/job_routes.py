"""Ray 2.60's jobs REST API on the dashboard: ``/api/jobs/...``, wire-compatible.

``POST /api/jobs/`` submits (``{"job_id", "submission_id"}``), ``GET /api/jobs/`` lists
submitted and driver jobs (Ray's ``JobDetails`` rows), ``GET /api/jobs/{id}`` is one job
by submission id or job id, ``GET /api/jobs/{id}/logs`` its driver log
(``{"logs": text}``), ``GET /api/jobs/{id}/logs/tail`` the same as a websocket of text
frames until the job ends, ``POST /api/jobs/{id}/stop`` (``{"stopped"}``) and
``DELETE /api/jobs/{id}`` (``{"deleted"}``, an ended job only). As Ray's, errors are
plain text: 404 "Job X does not exist", 400 for a bad request or a driver job where a
submitted one is needed. The token is checked by ``auth.py`` as for every route.
``GET /api/ui/jobs/{id}/driver_log`` is the same log as plain text, for the Jobs page.

The job manager (``job_manager.py``) keeps the records; a job's log is read from the
node it ran on (``node_managers.py``), so it stays readable after the job.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from raggio.dashboard.control_store import Unavailable
from raggio.dashboard.job_manager import JobExists, JobManager
from raggio.dashboard.live import POLLER
from raggio.dashboard.routing import NODES, STORE
from raggio.job_submission.common import JOB_LOG_NAME_TEMPLATE, JobStatus

JOBS = web.AppKey("jobs", JobManager)
#: How often a tailed log is read again while its job runs.
TAIL_POLL_S = 0.2

_NUMBERS = (int, float)
#: Ray's ``JobSubmitRequest``: field -> the types it takes (None is always allowed).
_SUBMIT_FIELDS = {"entrypoint": (str,), "submission_id": (str,), "job_id": (str,),
                  "runtime_env": (dict,), "metadata": (dict,),
                  "entrypoint_num_cpus": _NUMBERS, "entrypoint_num_gpus": _NUMBERS,
                  "entrypoint_memory": (int,), "entrypoint_resources": (dict,),
                  "entrypoint_label_selector": (dict,)}


def _text(message: str, status: int) -> web.Response:
    return web.Response(text=message, status=status)


def _submit_request(body) -> dict:
    """The keyword arguments of ``JobManager.submit``; TypeError/ValueError as Ray's
    ``JobSubmitRequest`` raises them."""
    if not isinstance(body, dict):
        raise TypeError("The request body must be a JSON object.")
    unknown = set(body) - set(_SUBMIT_FIELDS)
    if unknown:
        raise TypeError(f"Unexpected field(s) {sorted(unknown)} in the job submission.")
    if not isinstance(body.get("entrypoint"), str):
        raise TypeError(f"entrypoint must be a string, got {type(body.get('entrypoint'))}")
    for name, types in _SUBMIT_FIELDS.items():
        value = body.get(name)
        if value is not None and (not isinstance(value, types) or isinstance(value, bool)):
            raise TypeError(f"{name} must be a {types[0].__name__}, got {type(value)}")
    for name in ("entrypoint_num_cpus", "entrypoint_num_gpus", "entrypoint_memory"):
        if (body.get(name) or 0) < 0:
            raise ValueError(f"{name} must be non-negative, got {body[name]}")
    metadata = body.get("metadata") or {}
    if not all(isinstance(v, str) for v in metadata.values()):
        raise TypeError("metadata values must be strings")
    if body.get("entrypoint_label_selector"):
        raise ValueError("entrypoint_label_selector is not supported by raggio's job "
                         "manager; use entrypoint_resources.")
    return {"entrypoint": body["entrypoint"],
            "submission_id": body.get("submission_id") or body.get("job_id"),
            "runtime_env": body.get("runtime_env"), "metadata": metadata,
            "entrypoint_num_cpus": body.get("entrypoint_num_cpus"),
            "entrypoint_num_gpus": body.get("entrypoint_num_gpus"),
            "entrypoint_memory": body.get("entrypoint_memory"),
            "entrypoint_resources": body.get("entrypoint_resources")}


async def submit_job(request: web.Request) -> web.Response:
    try:
        body = await request.json()
        kwargs = _submit_request(body)
        submission_id = await request.app[JOBS].submit(**kwargs)
    except (TypeError, ValueError, JobExists) as exc:
        return _text(str(exc), 400)
    return web.json_response({"job_id": submission_id, "submission_id": submission_id})


async def _job(request: web.Request) -> tuple[dict | None, web.Response | None]:
    """The job the path names, or the 404 to answer."""
    job_id = request.match_info["job_or_submission_id"]
    row = await request.app[JOBS].job_details(job_id)
    if row is None:
        return None, _text(f"Job {job_id} does not exist", 404)
    return row, None


async def _submission(request: web.Request) -> tuple[dict | None, web.Response | None]:
    row, error = await _job(request)
    if error is None and row["type"] != "SUBMISSION":
        return None, _text(f"Can only {_verb(request)} submission type jobs", 400)
    return row, error


def _verb(request: web.Request) -> str:
    if request.method == "DELETE":
        return "delete"
    return "stop" if request.path.endswith("/stop") else "get logs of"


async def list_jobs(request: web.Request) -> web.Response:
    return web.json_response(await request.app[JOBS].list_jobs())


async def get_job(request: web.Request) -> web.Response:
    row, error = await _job(request)
    return error or web.json_response(row)


async def stop_job(request: web.Request) -> web.Response:
    row, error = await _submission(request)
    if error:
        return error
    return web.json_response({"stopped": await request.app[JOBS].stop(row["submission_id"])})


async def delete_job(request: web.Request) -> web.Response:
    row, error = await _submission(request)
    if error:
        return error
    try:
        deleted = await request.app[JOBS].delete(row["submission_id"])
    except ValueError as exc:
        return _text(str(exc), 400)
    return web.json_response({"deleted": deleted})


async def _node_address(request: web.Request, node_id: str | None) -> str | None:
    nodes = await request.app[STORE].call("get_nodes")
    return next((n["address"] for n in nodes if n["node_id"].hex() == node_id
                 and n["state"] == "ALIVE"), None)


async def _read_log(request: web.Request, row: dict, offset: int) -> tuple[bytes, int]:
    """What the job's log has from ``offset`` on, and where the next read starts; nothing
    while the job has no node, or its node is gone."""
    address = await _node_address(request, row["driver_node_id"])
    if address is None:
        return b"", offset
    name = JOB_LOG_NAME_TEMPLATE.format(submission_id=row["submission_id"])
    try:
        reply = await request.app[NODES].call(address, "read_log",
                                              {"name": name, "offset": offset})
    except (ValueError, Unavailable):  # not written yet, or its node does not answer
        return b"", offset
    return reply["data"], reply["offset"]


async def _whole_log(request: web.Request, row: dict) -> str:
    chunks, offset = [], 0
    while True:
        data, offset = await _read_log(request, row, offset)
        if not data:
            return b"".join(chunks).decode(errors="replace")
        chunks.append(data)


async def job_logs(request: web.Request) -> web.Response:
    row, error = await _submission(request)
    return error or web.json_response({"logs": await _whole_log(request, row)})


async def driver_log(request: web.Request) -> web.Response:
    """``GET /api/ui/jobs/{id}/driver_log``: a submitted job's log as plain text (the Jobs
    page's; Ray's ``/logs`` answers it inside JSON)."""
    row, error = await _submission(request)
    return error or web.Response(text=await _whole_log(request, row),
                                 content_type="text/plain")


async def tail_job_logs(request: web.Request) -> web.StreamResponse:
    """The log as text frames while the job runs; closed (1000) once it has ended and
    everything is sent."""
    row, error = await _submission(request)
    if error:
        return error
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    jobs, offset = request.app[JOBS], 0
    try:
        while not ws.closed:
            ended = JobStatus(row["status"]).is_terminal()
            data, offset = await _read_log(request, row, offset)
            if data:
                await ws.send_str(data.decode(errors="replace"))
            elif ended:
                break
            else:
                await asyncio.sleep(TAIL_POLL_S)
                info = await jobs.record(row["submission_id"])  # one key, not the list
                if info is not None:
                    row = dict(row, status=info.status.value,
                               driver_node_id=info.driver_node_id)
    except ConnectionResetError:  # the client went away
        return ws
    await ws.close()
    return ws


async def jobs_context(app: web.Application):
    """The job manager for the app's life; it follows the jobs a previous dashboard left
    running."""
    manager = app[JOBS]
    manager.on_change = lambda: app[POLLER].announce(("jobs",))
    resuming = asyncio.get_running_loop().create_task(manager.resume())
    yield
    resuming.cancel()
    await asyncio.gather(resuming, return_exceptions=True)
    await manager.close()


def routes() -> list[web.RouteDef]:
    return [web.post("/api/jobs/", submit_job),
            web.get("/api/jobs/", list_jobs),
            web.get("/api/jobs/{job_or_submission_id}", get_job),
            web.get("/api/jobs/{job_or_submission_id}/logs", job_logs),
            web.get("/api/jobs/{job_or_submission_id}/logs/tail", tail_job_logs),
            web.post("/api/jobs/{job_or_submission_id}/stop", stop_job),
            web.delete("/api/jobs/{job_or_submission_id}", delete_job),
            web.get("/api/ui/jobs/{job_or_submission_id}/driver_log", driver_log)]
