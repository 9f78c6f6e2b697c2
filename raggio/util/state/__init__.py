"""``raggio.util.state``: Ray's state API over the control store (see api.py)."""

from raggio.util.state.api import (RayStateApiException, get_actor, get_job, get_node,
                                   get_objects, get_placement_group, get_task, get_worker,
                                   list_actors, list_jobs, list_nodes, list_objects,
                                   list_placement_groups, list_tasks, list_workers,
                                   summarize_actors, summarize_objects, summarize_tasks)

__all__ = ["RayStateApiException", "get_actor", "get_job", "get_node", "get_objects",
           "get_placement_group", "get_task", "get_worker", "list_actors", "list_jobs",
           "list_nodes", "list_objects", "list_placement_groups", "list_tasks",
           "list_workers", "summarize_actors", "summarize_objects", "summarize_tasks"]
