"""The dashboard's job manager: submitted jobs, their records and their supervisors.

It owns the submitted jobs' records (``JobInfo`` as JSON in the control store's KV, under
``job_info:<submission_id>``: the store keeps them through its own restarts when it is
durable) and is their only writer. Per submission it creates a ``JobSupervisor``
(``job_supervisor.py``) through raggio's public API, from a driver of its own that it
opens when first needed (in the supervisors' namespace, so that job lists leave it out),
then follows it: PENDING until the supervisor has set the job's runtime_env up and
started the entrypoint (FAILED with Ray's ``RUNTIME_ENV_SETUP_FAILURE`` when the setup
failed), RUNNING, and SUCCEEDED, FAILED or STOPPED when ``wait_finished`` answers. A
restarted dashboard (``resume``) finds the supervisors of the jobs its records say are
not over, by name, and follows them again; a supervisor that is gone fails its job with Ray's
``JOB_SUPERVISOR_ACTOR_DIED``.

The routes (``job_routes.py``) call ``submit``, ``stop``, ``delete``, ``job_info`` and
``list_jobs``; the driver jobs' rows come from the control store's ``get_jobs``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Callable

import raggio
from raggio import cluster_file
from raggio.core.scheduling_strategies import NodeAffinitySchedulingStrategy
from raggio.dashboard.control_store import ControlStore, Unavailable
from raggio.dashboard.job_supervisor import JobSupervisor, supervisor_name
from raggio.exceptions import RayActorError, RayError
from raggio.job_submission.common import (
    JOB_ID_METADATA_KEY, JOB_INFO_KEY_PREFIX, SUPERVISOR_NAMESPACE, JobErrorType, JobInfo,
    JobStatus, failed_message, is_internal_driver, new_submission_id, submission_details)
from raggio.util.state.rows import RESOURCES

logger = logging.getLogger(__name__)

#: How long ``resume`` waits between tries while the control store does not answer.
RESUME_RETRY_S = 1.0


def _now_ms() -> int:
    return int(time.time() * 1000)


class JobExists(ValueError):
    """A submission id that is taken."""


class JobManager:
    """Submitted jobs of one cluster, from the dashboard's process."""

    store: ControlStore
    gcs_address: str
    token: str
    stop_wait_s: float
    _connecting: asyncio.Lock  #: one ``init()`` of the manager's driver at a time
    #: One record change at a time: a stop's STOPPED and a follower's RUNNING must not
    #: each read PENDING and the later write win.
    _writing: asyncio.Lock
    _followers: dict[str, asyncio.Task]  #: the task following each live job
    #: Called after each change of a record (the pages' live updates: ``job_routes``).
    on_change: Callable[[], None]

    def __init__(self, store: ControlStore, gcs_address: str, token: str, stop_wait_s: float):
        self.store = store
        self.gcs_address = gcs_address
        self.token = token
        self.stop_wait_s = stop_wait_s
        self._connecting = asyncio.Lock()
        self._writing = asyncio.Lock()
        self._followers = {}
        self.on_change = lambda: None

    # -- records --

    async def record(self, submission_id: str) -> JobInfo | None:
        raw = await self.store.call("kv_get", JOB_INFO_KEY_PREFIX + submission_id)
        return JobInfo.from_json(json.loads(raw)) if raw is not None else None

    async def records(self) -> dict[str, JobInfo]:
        keys = await self.store.call("kv_keys", JOB_INFO_KEY_PREFIX)
        values = await self.store.call("kv_multi_get", keys) if keys else []
        return {key[len(JOB_INFO_KEY_PREFIX):]: JobInfo.from_json(json.loads(raw))
                for key, raw in zip(keys, values) if raw is not None}

    async def _put(self, submission_id: str, info: JobInfo, *, overwrite: bool = True) -> bool:
        written = await self.store.call("kv_put", [JOB_INFO_KEY_PREFIX + submission_id,
                                                   json.dumps(info.to_json()).encode(),
                                                   overwrite])
        self.on_change()
        return written

    async def _update(self, submission_id: str, status: JobStatus, **changes) -> None:
        """Move a job to ``status``, unless it has ended already (a stop that came first)."""
        async with self._writing:
            info = await self.record(submission_id)
            if info is None or info.status.is_terminal():
                return
            fields = info.to_json() | {"status": status, "message": None} | changes
            if status.is_terminal():
                fields["end_time"] = _now_ms()
            await self._put(submission_id, JobInfo.from_json(fields))

    # -- the manager's driver --

    async def _connect(self) -> None:
        """Join the cluster as a driver (once) to create and ask the supervisors."""
        async with self._connecting:
            if not raggio.is_initialized():
                cluster_file.remember_token(self.gcs_address, self.token)
                await asyncio.to_thread(raggio.init, address=self.gcs_address,
                                        namespace=SUPERVISOR_NAMESPACE, log_to_driver=False)

    async def _supervisor(self, submission_id: str):
        await self._connect()
        try:
            return await asyncio.to_thread(raggio.get_actor, supervisor_name(submission_id),
                                           namespace=SUPERVISOR_NAMESPACE)
        except ValueError:  # no such actor (any more)
            return None

    # -- what the routes call --

    async def submit(self, *, entrypoint: str, submission_id: str | None = None,
                     runtime_env: dict | None = None, metadata: dict | None = None,
                     entrypoint_num_cpus: float | None = None,
                     entrypoint_num_gpus: float | None = None,
                     entrypoint_memory: int | None = None,
                     entrypoint_resources: dict | None = None) -> str:
        """Record a PENDING job and start following it; its submission id. Raises
        ``JobExists`` for an id that is taken."""
        submission_id = submission_id or new_submission_id()
        info = JobInfo(status=JobStatus.PENDING, entrypoint=entrypoint,
                       start_time=_now_ms(), metadata=metadata or {},
                       runtime_env=runtime_env or {}, entrypoint_num_cpus=entrypoint_num_cpus,
                       entrypoint_num_gpus=entrypoint_num_gpus,
                       entrypoint_memory=entrypoint_memory,
                       entrypoint_resources=entrypoint_resources)
        if not await self._put(submission_id, info, overwrite=False):
            raise JobExists(f"Job with submission_id {submission_id} already exists. "
                            "Please use a different submission_id.")
        self._follow(submission_id, info)
        return submission_id

    async def stop(self, submission_id: str) -> bool:
        """Ask the job's supervisor to stop it; False if it has ended already. A job whose
        entrypoint has not started is STOPPED at once (its supervisor is killed)."""
        info = await self.record(submission_id)
        if info is None or info.status.is_terminal():
            return False
        handle = await self._supervisor(submission_id)
        if info.status == JobStatus.PENDING:
            await self._update(submission_id, JobStatus.STOPPED)
            if handle is not None:
                raggio.kill(handle)
        elif handle is not None:
            handle.stop.remote()  # the follower records STOPPED when the entrypoint is gone
        return True

    async def delete(self, submission_id: str) -> bool:
        """Forget an ended job. Raises ValueError for one that has not ended."""
        info = await self.record(submission_id)
        if info is None:
            return False
        if not info.status.is_terminal():
            raise ValueError(f"Attempted to delete job '{submission_id}', but it is in a "
                             f"non-terminal state {info.status}.")
        deleted = await self.store.call("kv_del", JOB_INFO_KEY_PREFIX + submission_id)
        self.on_change()
        return deleted

    async def list_jobs(self) -> list[dict]:
        """Every submitted job and every driver (Ray's ``JobDetails`` rows): a driver that
        runs a submission's entrypoint gives that submission its job id."""
        records, drivers = await asyncio.gather(self.records(), self.store.call("get_jobs"))
        driver_rows, linked = [], {}
        for driver in drivers:
            if is_internal_driver(driver):
                continue
            row = RESOURCES["jobs"].shape(driver)
            submission_id = (driver.get("metadata") or {}).get(JOB_ID_METADATA_KEY)
            if submission_id in records:
                linked[submission_id] = row
                continue
            driver_rows.append(_driver_details(row))
        # Ray's order: the submitted jobs, then the other drivers.
        return [submission_details(submission_id, info,
                                   job_id=linked[submission_id]["job_id"]
                                   if submission_id in linked else None,
                                   driver_info=linked[submission_id]["driver_info"]
                                   if submission_id in linked else None)
                for submission_id, info in records.items()] + driver_rows

    async def job_details(self, job_or_submission_id: str) -> dict | None:
        """The row of one job, by its submission id or its job id; None if there is none."""
        for row in await self.list_jobs():
            if job_or_submission_id in (row["submission_id"], row["job_id"]):
                return row
        return None

    # -- following a job --

    def _follow(self, submission_id: str, info: JobInfo, *, resumed: bool = False) -> None:
        task = asyncio.get_running_loop().create_task(
            self._run(submission_id, info, resumed))
        self._followers[submission_id] = task
        task.add_done_callback(lambda _t: self._followers.pop(submission_id, None))

    async def _run(self, submission_id: str, info: JobInfo, resumed: bool) -> None:
        try:
            handle = await (self._supervisor(submission_id) if resumed
                            else self._create_supervisor(submission_id, info))
            if handle is None:
                await self._update(
                    submission_id, JobStatus.FAILED,
                    error_type=JobErrorType.JOB_SUPERVISOR_ACTOR_DIED.value,
                    message="Job supervisor actor died: it was gone when the dashboard "
                    "restarted.")
                return
            started = await handle.start.remote()
            if started["setup_error"] is not None:
                await self._update(submission_id, JobStatus.FAILED, message=(
                    f"runtime_env setup failed: {started['setup_error']}"),
                    error_type=JobErrorType.RUNTIME_ENV_SETUP_FAILURE.value)
                raggio.kill(handle)
                return
            await self._update(submission_id, JobStatus.RUNNING,
                               driver_node_id=started["node_id"])
            ended = await handle.wait_finished.remote()
            await self._finished(submission_id, ended)
            raggio.kill(handle)
        except RayActorError as exc:
            await self._update(submission_id, JobStatus.FAILED, message=(
                f"Job supervisor actor died: {exc}"),
                error_type=JobErrorType.JOB_SUPERVISOR_ACTOR_DIED.value)
        except (RayError, ValueError, TypeError, OSError) as exc:
            await self._update(submission_id, JobStatus.FAILED, message=(
                f"Job supervisor actor could not be started: {exc}"),
                error_type=JobErrorType.JOB_SUPERVISOR_ACTOR_START_FAILURE.value)
        except Unavailable:
            # The control store went away (it is restarting): the restarted dashboard's
            # manager follows the job from here.
            logger.warning("lost the control store while following job %s", submission_id)
        except Exception as exc:  # a bug: the job must not stay RUNNING for ever
            logger.exception("following job %s failed", submission_id)
            await self._update(submission_id, JobStatus.FAILED,
                               message=f"Unexpected error occurred: {exc!r}",
                               error_type=JobErrorType.JOB_SUPERVISOR_ACTOR_UNKNOWN_FAILURE.value)

    async def _create_supervisor(self, submission_id: str, info: JobInfo):
        await self._connect()
        resources_given = bool(info.entrypoint_num_cpus or info.entrypoint_num_gpus
                               or info.entrypoint_memory or info.entrypoint_resources)
        options = dict(name=supervisor_name(submission_id), namespace=SUPERVISOR_NAMESPACE,
                       lifetime="detached", num_cpus=info.entrypoint_num_cpus or 0,
                       num_gpus=info.entrypoint_num_gpus or 0,
                       resources=info.entrypoint_resources or {})
        if info.entrypoint_memory:
            options["memory"] = info.entrypoint_memory
        if not resources_given:  # as Ray: a driver that asks for nothing runs on the head
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(
                await self._head_node_id(), soft=False)
        actor_class = raggio.remote(JobSupervisor)
        return await asyncio.to_thread(
            lambda: actor_class.options(**options).remote(
                submission_id, info.entrypoint, info.metadata or {}, info.runtime_env or {},
                self.stop_wait_s))

    async def _head_node_id(self) -> str:
        nodes = await self.store.call("get_nodes")
        return next(n["node_id"].hex() for n in nodes if n.get("is_head")
                    and n["state"] == "ALIVE")

    async def _finished(self, submission_id: str, ended: dict) -> None:
        exit_code = ended["exit_code"]
        if ended["stopped"]:
            await self._update(submission_id, JobStatus.STOPPED, driver_exit_code=exit_code)
        elif exit_code == 0:
            await self._update(submission_id, JobStatus.SUCCEEDED, driver_exit_code=0)
        else:
            await self._update(submission_id, JobStatus.FAILED, driver_exit_code=exit_code,
                               message=failed_message(exit_code, ended["log_tail"]),
                               error_type=JobErrorType.JOB_ENTRYPOINT_COMMAND_ERROR.value)

    async def resume(self) -> None:
        """Follow again the jobs the records say have not ended (a restarted dashboard);
        waits for the control store to answer."""
        while True:
            try:
                records = await self.records()
                break
            except Unavailable:
                await asyncio.sleep(RESUME_RETRY_S)
        for submission_id, info in records.items():
            if not info.status.is_terminal() and submission_id not in self._followers:
                self._follow(submission_id, info, resumed=True)

    async def close(self) -> None:
        for task in list(self._followers.values()):
            task.cancel()
        await asyncio.gather(*self._followers.values(), return_exceptions=True)


def _driver_details(row: dict) -> dict:
    """A driver's row of ``get_jobs`` (``rows.py``'s shape) as a ``JobDetails`` row."""
    return {"type": "DRIVER", "job_id": row["job_id"], "submission_id": None,
            "driver_info": row["driver_info"], "status": row["status"],
            "entrypoint": row["entrypoint"], "message": row["message"],
            "error_type": row["error_type"], "start_time": row["start_time"],
            "end_time": row["end_time"], "metadata": row["metadata"],
            "runtime_env": row["runtime_env"], "driver_agent_http_address": None,
            "driver_node_id": None, "driver_exit_code": None}
