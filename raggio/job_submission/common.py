"""What a submitted job is, as Ray 2.60 names it: its states, its record, its JSON.

Shared by the client (``sdk.py``), the dashboard's job manager and supervisor
(``raggio/dashboard/job_manager.py``, ``job_supervisor.py``) and ``raggio job``:
``JobStatus``, ``JobType``, ``JobInfo`` (a submitted job's record, kept as JSON in the
control store's KV under ``job_info_key``), ``JobDetails`` and ``DriverInfo`` (a row of
``GET /api/jobs/``), and the words Ray's records use. Nothing here does I/O.
"""

from __future__ import annotations

import dataclasses
import enum
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

#: The KV key prefix of the submitted jobs' records (JSON ``JobInfo``).
JOB_INFO_KEY_PREFIX = "job_info:"
#: The namespace of the supervisors' actors, and of the job manager's own driver; a driver
#: in a namespace starting with ``INTERNAL_NAMESPACE_PREFIX`` is left out of job lists.
INTERNAL_NAMESPACE_PREFIX = "_raggio_internal"
SUPERVISOR_NAMESPACE = INTERNAL_NAMESPACE_PREFIX + "_jobs"
#: The metadata key that links a driver to its submission (Ray's ``JOB_ID_METADATA_KEY``).
JOB_ID_METADATA_KEY = "job_submission_id"
#: A job's driver log, in its node's ``<session>/logs`` (Ray's name).
JOB_LOG_NAME_TEMPLATE = "job-driver-{submission_id}.log"
#: How much of its log a failed job's message quotes (Ray's figure).
LOG_TAIL_CHARS = 20_000


def is_internal_driver(job: dict) -> bool:
    """Whether a driver's record (``get_jobs``) is raggio's own (the job manager's): such
    drivers are left out of job lists."""
    return (job.get("namespace") or "").startswith(INTERNAL_NAMESPACE_PREFIX)


class JobStatus(str, enum.Enum):
    """An enumeration for describing the status of a job."""

    #: The job has not started yet: its supervisor waits for resources or to start.
    PENDING = "PENDING"
    #: The entrypoint command runs.
    RUNNING = "RUNNING"
    #: The job was stopped by a user (``stop_job``).
    STOPPED = "STOPPED"
    #: The entrypoint command exited with 0.
    SUCCEEDED = "SUCCEEDED"
    #: The entrypoint command failed, or the job could not be run.
    FAILED = "FAILED"

    def __str__(self) -> str:
        return f"{self.value}"

    def is_terminal(self) -> bool:
        """Whether the job has ended (STOPPED, SUCCEEDED or FAILED) and will not change."""
        return self.value in {"STOPPED", "SUCCEEDED", "FAILED"}


class JobType(str, enum.Enum):
    """Whether a job was submitted (``SUBMISSION``) or is a driver's (``DRIVER``)."""

    SUBMISSION = "SUBMISSION"
    DRIVER = "DRIVER"


class JobErrorType(str, enum.Enum):
    """Why a job failed (Ray's ``error_type`` values that raggio can have)."""

    JOB_SUPERVISOR_ACTOR_UNSCHEDULABLE = "JOB_SUPERVISOR_ACTOR_UNSCHEDULABLE"
    JOB_SUPERVISOR_ACTOR_START_FAILURE = "JOB_SUPERVISOR_ACTOR_START_FAILURE"
    JOB_SUPERVISOR_ACTOR_DIED = "JOB_SUPERVISOR_ACTOR_DIED"
    JOB_SUPERVISOR_ACTOR_UNKNOWN_FAILURE = "JOB_SUPERVISOR_ACTOR_UNKNOWN_FAILURE"
    JOB_ENTRYPOINT_COMMAND_START_ERROR = "JOB_ENTRYPOINT_COMMAND_START_ERROR"
    JOB_ENTRYPOINT_COMMAND_ERROR = "JOB_ENTRYPOINT_COMMAND_ERROR"
    RUNTIME_ENV_SETUP_FAILURE = "RUNTIME_ENV_SETUP_FAILURE"


def default_message(info: "JobInfo") -> str:
    """Ray's message for a state whose record gives none."""
    if info.status == JobStatus.PENDING:
        message = "Job has not started yet."
        if (info.entrypoint_num_cpus or info.entrypoint_num_gpus or info.entrypoint_memory
                or info.entrypoint_resources):
            message += (" It may be waiting for resources (CPUs, GPUs, memory, custom "
                        "resources) to become available.")
        if info.runtime_env:
            message += " It may be waiting for the runtime environment to be set up."
        return message
    return {JobStatus.RUNNING: "Job is currently running.",
            JobStatus.STOPPED: "Job was intentionally stopped.",
            JobStatus.SUCCEEDED: "Job finished successfully.",
            JobStatus.FAILED: "Job failed."}[info.status]


def failed_message(exit_code: int, log_tail: str) -> str:
    """Ray's message for an entrypoint that exited with ``exit_code`` != 0."""
    if log_tail:
        return (f"Job entrypoint command failed with exit code {exit_code}, last available "
                f"logs (truncated to 20,000 chars):\n{log_tail[-LOG_TAIL_CHARS:]}")
    return f"Job entrypoint command failed with exit code {exit_code}. No logs available."


@dataclass
class JobInfo:
    """A submitted job's record; times are Unix timestamps in ms."""

    status: JobStatus
    entrypoint: str
    message: str | None = None
    error_type: str | None = None
    start_time: int | None = None
    end_time: int | None = None
    metadata: dict[str, str] | None = None
    runtime_env: dict[str, Any] | None = None
    entrypoint_num_cpus: float | None = None
    entrypoint_num_gpus: float | None = None
    entrypoint_memory: int | None = None
    entrypoint_resources: dict[str, float] | None = None
    driver_agent_http_address: str | None = None
    driver_node_id: str | None = None
    driver_exit_code: int | None = None

    def __post_init__(self):
        self.status = JobStatus(self.status)
        if self.message is None:
            self.message = default_message(self)

    def to_json(self) -> dict:
        return dataclasses.asdict(self) | {"status": self.status.value}

    @classmethod
    def from_json(cls, data: dict) -> "JobInfo":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


@dataclass
class DriverInfo:
    """A driver's id (the job id), node IP and pid (a string, as Ray has it)."""

    id: str
    node_ip_address: str
    pid: str


@dataclass
class JobDetails:
    """One job of ``list_jobs``: a submitted one, or a driver that called ``init()``."""

    type: JobType
    status: JobStatus
    entrypoint: str
    job_id: str | None = None
    submission_id: str | None = None
    driver_info: DriverInfo | None = None
    message: str | None = None
    error_type: str | None = None
    start_time: int | None = None
    end_time: int | None = None
    metadata: dict[str, str] | None = field(default_factory=dict)
    runtime_env: dict[str, Any] | None = field(default_factory=dict)
    driver_agent_http_address: str | None = None
    driver_node_id: str | None = None
    driver_exit_code: int | None = None

    def __post_init__(self):
        self.type = JobType(self.type)
        self.status = JobStatus(self.status)
        if isinstance(self.driver_info, dict):
            self.driver_info = DriverInfo(**self.driver_info)

    @classmethod
    def from_json(cls, data: dict) -> "JobDetails":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


#: Ray's order of a ``GET /api/jobs/`` row's keys.
JOB_DETAILS_KEYS = ("type", "job_id", "submission_id", "driver_info", "status", "entrypoint",
                    "message", "error_type", "start_time", "end_time", "metadata",
                    "runtime_env", "driver_agent_http_address", "driver_node_id",
                    "driver_exit_code")


def submission_details(submission_id: str, info: JobInfo, job_id: str | None = None,
                       driver_info: dict | None = None) -> dict:
    """The JSON row of a submitted job, in Ray's key order."""
    row = info.to_json() | {"type": JobType.SUBMISSION.value, "submission_id": submission_id,
                            "job_id": job_id, "driver_info": driver_info}
    return {key: row[key] for key in JOB_DETAILS_KEYS}


def new_submission_id() -> str:
    """``raysubmit_`` and 16 letters and digits, as Ray's ids."""
    alphabet = string.ascii_letters + string.digits
    return "raysubmit_" + "".join(secrets.choice(alphabet) for _ in range(16))
