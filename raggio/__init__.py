"""raggio: Ray's programming model and cluster management, in pure Python.

``import raggio as ray`` gives Ray's public API; this module only re-exports
it from the internal packages (see docs/ARCHITECTURE.md for the layout).
"""

from raggio import exceptions
from raggio.core.actor import ActorClass, ActorHandle, method
from raggio.core.ids import ActorID, JobID, NodeID, ObjectID, TaskID, WorkerID
from raggio.core.api import (available_resources, cancel, cluster_resources, get, get_actor,
                             get_gpu_ids, init, is_initialized, kill, nodes, put, remote,
                             shutdown, wait)
from raggio.core.object_ref import ObjectRef
from raggio.core.remote_function import RemoteFunction
from raggio.runtime_context import get_runtime_context

__version__ = "0.1.0"

SCRIPT_MODE = 0
WORKER_MODE = 1

__all__ = [
    "ActorClass", "ActorHandle", "ActorID", "JobID", "NodeID", "ObjectID", "ObjectRef",
    "RemoteFunction", "SCRIPT_MODE", "TaskID", "WORKER_MODE", "WorkerID", "__version__",
    "available_resources", "cancel", "cluster_resources", "exceptions", "get", "get_actor",
    "get_gpu_ids", "get_runtime_context", "init", "is_initialized", "kill", "method", "nodes",
    "put", "remote", "shutdown", "wait",
]
