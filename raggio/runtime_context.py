"""``get_runtime_context()``: who and where the calling code runs, as in Ray."""

from __future__ import annotations

from raggio.core import context
from raggio.core.ids import ActorID, JobID, NodeID, TaskID, WorkerID


class RuntimeContext:
    """Ids of the current job, node, worker, task and actor."""

    def __init__(self, core):
        self._core = core

    def get_job_id(self) -> str:
        return JobID.from_int(self._core.job_id or 0).hex()

    @property
    def job_id(self) -> JobID:
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
        return NodeID(self._core.node_id)

    def get_worker_id(self) -> str:
        return self._core.worker_id.hex()

    @property
    def worker_id(self) -> WorkerID:
        return WorkerID(self._core.worker_id)

    def get_task_id(self) -> str | None:
        task_id = getattr(self._core.current, "task_id", None)
        return task_id.hex() if task_id else None

    @property
    def task_id(self) -> TaskID | None:
        task_id = getattr(self._core.current, "task_id", None)
        return TaskID(task_id) if task_id else None

    def get_actor_id(self) -> str | None:
        actor_id = getattr(self._core, "actor_id", None)
        return actor_id.hex() if actor_id else None

    @property
    def actor_id(self) -> ActorID | None:
        actor_id = getattr(self._core, "actor_id", None)
        return ActorID(actor_id) if actor_id else None

    def get_actor_name(self) -> str | None:
        return getattr(self._core, "actor_name", None) or None

    @property
    def namespace(self) -> str:
        return self._core.namespace

    @property
    def gcs_address(self) -> str:
        return self._core.gcs_address

    @property
    def was_current_actor_reconstructed(self) -> bool:
        return getattr(self._core, "actor_incarnation", 1) > 1

    def get_assigned_resources(self) -> dict:
        return {}

    def get_accelerator_ids(self) -> dict:
        return {"GPU": [str(i) for i in getattr(self._core.current, "gpu_ids", None) or []]}

    def get(self) -> dict:
        return {"job_id": self.job_id, "node_id": self.node_id, "namespace": self.namespace,
                "task_id": self.task_id, "actor_id": self.actor_id}


def get_runtime_context() -> RuntimeContext:
    return RuntimeContext(context.get_core())
