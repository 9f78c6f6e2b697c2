"""``get_runtime_context()``: who and where the calling code runs, as in Ray.

Reads the calling process's core worker: its ids, and what the task or actor running
in the calling thread was given (``core.current``, set by ``core/task_executor.py``).
As in Ray, the task and actor getters warn and return None in a driver, and
``get_assigned_resources`` is for workers only.
"""

from __future__ import annotations

import inspect
import logging
import warnings

from raggio.common.ids import ActorID, JobID, NodeID, PlacementGroupID, TaskID, WorkerID
from raggio.common.placement_group_resources import (BUNDLE_RESOURCE, group_resource,
                                                     resource_name, split_group_resource)
from raggio.core import context
from raggio.core.core_worker import DRIVER
from raggio.core.placement_group import current_group_hex
from raggio.util.annotations import RayDeprecationWarning

logger = logging.getLogger(__name__)

#: Ray's accelerator resources; ``get_accelerator_ids`` lists each.
ACCELERATOR_RESOURCES = ("GPU", "neuron_cores", "TPU", "NPU", "HPU")


class RuntimeContext:
    """Ids of the current job, node, worker, task and actor, and what it was given."""

    def __init__(self, core):
        self._core = core

    def _in_driver(self, what: str) -> bool:
        if self._core.mode == DRIVER:
            logger.warning("%s is only available when the process is a worker. Current mode: "
                           "driver.", what)
            return True
        return False

    def get(self) -> dict:
        """The context as a dict: job_id, node_id, namespace, and in a worker task_id and
        actor_id when there are."""
        core = self._core
        out = {"job_id": JobID.from_int(core.job_id or 0), "node_id": NodeID(core.node_id),
               "namespace": self.namespace}
        if core.mode != DRIVER:
            task_id = context.current_task_id(core)
            if task_id:
                out["task_id"] = TaskID(task_id)
            if getattr(core, "actor_id", None):
                out["actor_id"] = ActorID(core.actor_id)
        return out

    def get_job_id(self) -> str:
        return JobID.from_int(self._core.job_id or 0).hex()

    @property
    def job_id(self) -> JobID:
        _deprecated("job_id", "get_job_id")
        return JobID.from_int(self._core.job_id or 0)

    def get_node_id(self) -> str:
        return self._core.node_id.hex()

    def get_node_labels(self) -> dict[str, str]:
        """The labels of the node this code runs on: its own and Ray's (``ray.io/node-id``)."""
        for node in self._core.request("gcs", "get_nodes", None):
            if node["node_id"] == self._core.node_id:
                return dict(node.get("labels") or {})
        return {}

    @property
    def node_id(self) -> NodeID:
        _deprecated("node_id", "get_node_id")
        return NodeID(self._core.node_id)

    def get_worker_id(self) -> str:
        return self._core.worker_id.hex()

    @property
    def worker_id(self) -> WorkerID:
        return WorkerID(self._core.worker_id)

    def get_task_id(self) -> str | None:
        if self._in_driver("get_task_id"):
            return None
        task_id = context.current_task_id(self._core)
        return task_id.hex() if task_id else None

    @property
    def task_id(self) -> TaskID | None:
        _deprecated("task_id", "get_task_id")
        task_id = context.current_task_id(self._core)
        return TaskID(task_id) if task_id else None

    def _running(self) -> tuple | None:
        """(spec, the user's callable) of the task running in the calling thread."""
        task_id = context.current_task_id(self._core)
        return self._core.running_tasks.get(task_id) if task_id else None

    def get_task_name(self) -> str | None:
        """The running task's name: its ``name`` option, else the function's name, or
        ``Class.method`` for an actor call."""
        if self._in_driver("get_task_name"):
            return None
        running = self._running()
        return running[0]["name"] if running else None

    def get_task_function_name(self) -> str | None:
        """The running task's function as ``module.function``, or ``module.Class.method``."""
        if self._in_driver("get_task_function_name"):
            return None
        running = self._running()
        if running is None:
            return None
        spec, fn = running
        if "actor_id" not in spec:
            return f"{fn.__module__}.{fn.__name__}"
        instance = getattr(fn, "__self__", None)  # a built-in method (__ray_ready__) has none
        if instance is None:
            return spec["name"]
        if inspect.iscoroutinefunction(fn):  # Ray names an async method by its qualname
            return f"{fn.__module__}.{fn.__qualname__}"
        cls = type(instance)
        return f"{cls.__module__}.{cls.__name__}.{spec['method']}"

    def get_actor_id(self) -> str | None:
        if self._in_driver("get_actor_id"):
            return None
        actor_id = getattr(self._core, "actor_id", None)
        return actor_id.hex() if actor_id else None

    @property
    def actor_id(self) -> ActorID | None:
        _deprecated("actor_id", "get_actor_id")
        actor_id = getattr(self._core, "actor_id", None)
        return ActorID(actor_id) if actor_id else None

    def get_actor_name(self) -> str | None:
        if self._in_driver("get_actor_name") or not getattr(self._core, "actor_id", None):
            return None
        return self._core.actor_name

    @property
    def current_actor(self):
        """This actor's own handle.

        Raises:
            RuntimeError: not called inside an actor.
        """
        args = getattr(self._core, "actor_handle_args", None)
        if args is None:
            raise RuntimeError("This method is only available in an actor.")
        from raggio.core.actor import ActorHandle
        return ActorHandle(*args)

    @property
    def was_current_actor_reconstructed(self) -> bool:
        """Whether this actor was restarted (it runs its second or later incarnation)."""
        return getattr(self._core, "actor_incarnation", 1) > 1

    @property
    def namespace(self) -> str:
        return self._core.namespace

    @property
    def gcs_address(self) -> str:
        return self._core.gcs_address

    def get_placement_group_id(self) -> str | None:
        """The placement group the current task or actor runs in, or None."""
        return current_group_hex(self._core)

    @property
    def current_placement_group_id(self) -> PlacementGroupID | None:
        _deprecated("current_placement_group_id", "get_placement_group_id")
        pg_id = self.get_placement_group_id()
        return PlacementGroupID.from_hex(pg_id) if pg_id else None

    @property
    def should_capture_child_tasks_in_placement_group(self) -> bool:
        """Whether tasks and actors made here join this task's placement group."""
        return getattr(self._core.current, "placement_group", None) is not None

    def get_assigned_resources(self) -> dict[str, float]:
        """The resources the running task or actor holds, as Ray reports them: ``{"CPU": 1.0}``
        for a default task, ``{}`` for a default actor; inside a placement group the bundle
        resources (``CPU_group_<id>``, and ``CPU_group_<index>_<id>`` for a given bundle).

        Raises:
            AssertionError: called in a driver (as Ray's assertion).
        """
        if self._core.mode == DRIVER:
            raise AssertionError("This method is only available when the process is a "
                                 "worker. Current mode: driver")
        return assigned_resources(getattr(self._core.current, "resources", None) or {})

    def get_accelerator_ids(self) -> dict[str, list[str]]:
        """The accelerator ids given to the running task or actor, by resource name."""
        out: dict[str, list[str]] = {name: [] for name in ACCELERATOR_RESOURCES}
        out["GPU"] = [str(i) for i in getattr(self._core.current, "gpu_ids", None) or []]
        return out


def _deprecated(name: str, instead: str) -> None:
    warnings.warn(f"RuntimeContext.{name} is deprecated. Use {instead}() instead.",
                  RayDeprecationWarning, stacklevel=3)


def assigned_resources(request: dict[str, float]) -> dict[str, float]:
    """What a lease of ``request`` holds, with Ray's names: the requested amounts, except
    the marker that places a task in its bundle; a request for one bundle also holds the
    group's wildcard resource (Ray asks for both)."""
    out = {}
    for key, value in request.items():
        if value <= 0 or resource_name(key) == BUNDLE_RESOURCE:
            continue
        out[key] = value
        group = split_group_resource(key)
        if group is not None and group.bundle_index is not None:
            out[group_resource(group.name, group.pg_hex)] = value
    return out


def get_runtime_context() -> RuntimeContext:
    return RuntimeContext(context.get_core())
