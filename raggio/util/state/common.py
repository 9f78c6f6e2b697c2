"""The state API's objects (``ray.util.state.common``): one dataclass per resource.

``list_actors()`` and the rest return these, with Ray's field names, so a
program reads ``actor.state`` (or, as Ray also allows, ``actor["state"]``,
``actor.get("state")`` and ``actor.asdict()``). The fields Ray fills only
with ``detail=True`` are None otherwise. A few fields raggio adds after
Ray's (an actor's ``address`` and state ``events``, a task's
``pending_reason``, an object's ``stored_on``...) carry what ``raggio list
--detail`` shows. The rows themselves are shaped in ``api.py``.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any

DEFAULT_RPC_TIMEOUT = 30
DEFAULT_LIMIT = 100
DEFAULT_LOG_LIMIT = 1000


class StateResource(enum.Enum):
    """The resources ``StateApiClient.list``/``get`` read."""

    ACTORS = "actors"
    JOBS = "jobs"
    PLACEMENT_GROUPS = "placement_groups"
    NODES = "nodes"
    WORKERS = "workers"
    TASKS = "tasks"
    OBJECTS = "objects"


class SummaryResource(enum.Enum):
    """The resources ``StateApiClient.summary`` summarizes."""

    ACTORS = "actors"
    TASKS = "tasks"
    OBJECTS = "objects"


@dataclass
class ListApiOptions:
    """``StateApiClient.list``'s options."""

    limit: int = DEFAULT_LIMIT
    timeout: float = DEFAULT_RPC_TIMEOUT
    detail: bool = False
    filters: list | None = dataclasses.field(default_factory=list)
    exclude_driver: bool = True


@dataclass
class GetApiOptions:
    """``StateApiClient.get``'s options."""

    timeout: float = DEFAULT_RPC_TIMEOUT


@dataclass
class SummaryApiOptions:
    """``StateApiClient.summary``'s options."""

    timeout: float = DEFAULT_RPC_TIMEOUT
    filters: list | None = dataclasses.field(default_factory=list)
    summary_by: str | None = None


class StateSchema:
    """What every state object offers besides its fields: dict-style access and
    the column lists Ray's CLI uses."""

    def asdict(self) -> dict:
        return dataclasses.asdict(self)

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def __setitem__(self, key: str, value: Any) -> None:
        setattr(self, key, value)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    @classmethod
    def list_columns(cls, detail: bool = True) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def columns(cls) -> set[str]:
        return set(cls.list_columns())


def _field(default: Any = None):
    return dataclasses.field(default=default)


@dataclass
class ActorState(StateSchema):
    """An actor; ``state`` is DEPENDENCIES_UNREADY, PENDING_CREATION, ALIVE,
    RESTARTING or DEAD."""

    actor_id: str = _field()
    class_name: str = _field()
    state: str = _field()
    job_id: str = _field()
    name: str | None = _field()
    node_id: str | None = _field()
    pid: int | None = _field()
    ray_namespace: str | None = _field()
    serialized_runtime_env: str | None = _field()
    required_resources: dict | None = _field()
    death_cause: dict | None = _field()
    is_detached: bool | None = _field()
    placement_group_id: str | None = _field()
    repr_name: str | None = _field()
    num_restarts: int | None = _field()
    num_restarts_due_to_lineage_reconstruction: int | None = _field()
    # raggio's additions
    address: str | None = _field()
    start_time: int | None = _field()
    end_time: int | None = _field()
    events: list | None = _field()


@dataclass
class PlacementGroupState(StateSchema):
    """A placement group; ``state`` is PENDING, CREATED, REMOVED or RESCHEDULING."""

    placement_group_id: str = _field()
    name: str = _field()
    creator_job_id: str = _field()
    state: str = _field()
    bundles: list | None = _field()
    is_detached: bool | None = _field()
    stats: dict | None = _field()
    # raggio's additions
    strategy: str | None = _field()
    ray_namespace: str | None = _field()
    pending_reason: str | None = _field()


@dataclass
class NodeState(StateSchema):
    """A node; ``state`` is ALIVE or DEAD."""

    node_id: str = _field()
    node_ip: str = _field()
    is_head_node: bool = _field()
    state: str = _field()
    state_message: str | None = _field()
    node_name: str = _field()
    resources_total: dict = _field()
    labels: dict = _field()
    start_time_ms: int | None = _field()
    end_time_ms: int | None = _field()


@dataclass
class JobState(StateSchema):
    """A job (Ray's ``JobDetails`` fields); a driver's job has ``type`` DRIVER and
    ``driver_info`` (its job id, node address and pid)."""

    type: str = _field()
    job_id: str | None = _field()
    submission_id: str | None = _field()
    driver_info: dict | None = _field()
    status: str = _field()
    entrypoint: str = _field()
    message: str | None = _field()
    error_type: str | None = _field()
    start_time: int | None = _field()
    end_time: int | None = _field()
    metadata: dict | None = _field()
    runtime_env: dict | None = _field()
    driver_agent_http_address: str | None = _field()
    driver_node_id: str | None = _field()
    driver_exit_code: int | None = _field()
    # raggio's additions
    driver_pid: int | None = _field()
    driver_address: str | None = _field()
    ray_namespace: str | None = _field()


@dataclass
class WorkerState(StateSchema):
    """A driver or worker process; ``worker_type`` is WORKER or DRIVER."""

    worker_id: str = _field()
    is_alive: bool = _field()
    worker_type: str = _field()
    exit_type: str | None = _field()
    node_id: str = _field()
    ip: str = _field()
    pid: int = _field()
    exit_detail: str | None = _field()
    worker_launch_time_ms: int | None = _field()
    worker_launched_time_ms: int | None = _field()
    start_time_ms: int | None = _field()
    end_time_ms: int | None = _field()
    debugger_port: int | None = _field()
    num_paused_threads: int | None = _field()
    # raggio's additions
    state: str | None = _field()
    job_id: str | None = _field()
    address: str | None = _field()


@dataclass
class TaskState(StateSchema):
    """One attempt of a task, actor call or actor creation; ``state`` is Ray's
    (PENDING_ARGS_AVAIL, PENDING_NODE_ASSIGNMENT, SUBMITTED_TO_WORKER, RUNNING,
    FINISHED, FAILED...)."""

    task_id: str = _field()
    attempt_number: int = _field()
    name: str = _field()
    state: str = _field()
    job_id: str = _field()
    actor_id: str | None = _field()
    type: str = _field()
    func_or_class_name: str = _field()
    parent_task_id: str = _field()
    node_id: str | None = _field()
    worker_id: str | None = _field()
    worker_pid: int | None = _field()
    error_type: str | None = _field()
    language: str | None = _field()
    required_resources: dict | None = _field()
    runtime_env_info: dict | None = _field()
    placement_group_id: str | None = _field()
    events: list | None = _field()
    profiling_data: dict | None = _field()
    creation_time_ms: int | None = _field()
    start_time_ms: int | None = _field()
    end_time_ms: int | None = _field()
    task_log_info: dict | None = _field()
    error_message: str | None = _field()
    is_debugger_paused: bool | None = _field()
    # raggio's addition
    pending_reason: str | None = _field()


@dataclass
class ObjectState(StateSchema):
    """One process's reference to an object (an object held by several processes has
    a row for each)."""

    object_id: str = _field()
    object_size: int = _field()
    task_status: str = _field()
    reference_type: str = _field()
    call_site: str = _field()
    type: str = _field()
    pid: int = _field()
    ip: str = _field()
    # raggio's additions
    is_owner: bool | None = _field()
    node_id: str | None = _field()
    stored_on: str | None = _field()
