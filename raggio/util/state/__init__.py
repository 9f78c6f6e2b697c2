"""``raggio.util.state``: Ray's state API over the control store (see api.py), its state
objects (common.py) and the log functions (logs.py)."""

from raggio.util.state.api import (RayStateApiException, StateApiClient, get_actor, get_job,
                                   get_node, get_objects, get_placement_group, get_task,
                                   get_worker, list_actors, list_jobs, list_nodes,
                                   list_objects, list_placement_groups, list_tasks,
                                   list_workers, summarize_actors, summarize_objects,
                                   summarize_tasks)
from raggio.util.state.common import (ActorState, JobState, NodeState, ObjectState,
                                      PlacementGroupState, TaskState, WorkerState)
from raggio.util.state.logs import get_log, list_logs

__all__ = ["ActorState", "JobState", "NodeState", "ObjectState", "PlacementGroupState",
           "RayStateApiException", "StateApiClient", "TaskState", "WorkerState", "get_actor",
           "get_job", "get_log", "get_node", "get_objects", "get_placement_group", "get_task",
           "get_worker", "list_actors", "list_jobs", "list_logs", "list_nodes", "list_objects",
           "list_placement_groups", "list_tasks", "list_workers", "summarize_actors",
           "summarize_objects", "summarize_tasks"]
