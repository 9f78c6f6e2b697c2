"""The marker lines a worker prints into its log files, and every reader of those files finds.

Before a task's output a worker prints ``:job_id:<n>`` and ``:task_name:<name>``
(``core/task_executor.py``) on stdout and stderr: the node's log monitor
forwards each line to its job's driver with the task's name, and the state API,
``raggio logs`` and the dashboard pick one task's or one job's lines by them.
"""

JOB_MARK = ":job_id:"
TASK_MARK = ":task_name:"
