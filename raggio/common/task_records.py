"""The task history's record of one task attempt, as its writers and its keeper share it.

Drivers and workers (``core/task_events.py``) write one flat list per
attempt and extend it with events; the control store's actor directory
writes its actors' creation tasks the same way; the control store's task
store (``gcs/task_events.py``) keeps them and answers the state API.
"""

#: Slots of an attempt's record; its events, ``state, time`` pairs, follow from R_EVENTS.
#: R_INFO and R_WHERE (``[node id, worker id, pid]`` of the worker that ran it) are numbers
#: into the writing process's tables there, the values themselves in the control store;
#: R_ERROR is ``[error_type, message]``; states are ``states``' numbers.
R_TASK, R_ATTEMPT, R_INFO, R_PARENT, R_ARGS, R_WHERE, R_ERROR, R_SENT, R_EVENTS = range(9)


def task_info(name: str, func_or_class_name: str, task_type: str, job_id, actor_id=None,
              resources: dict | None = None, label_constraints: dict | None = None) -> dict:
    """What the task history keeps of a task besides its events (Ray's TaskState names;
    ``label_constraints`` only where the task has some, for its pending reason)."""
    info = {"name": name, "func_or_class_name": func_or_class_name, "type": task_type,
            "job_id": job_id, "actor_id": actor_id, "required_resources": resources or {}}
    if label_constraints:
        info["label_constraints"] = label_constraints
    return info
