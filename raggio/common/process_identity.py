"""A process told apart from a later one that reuses its pid: its pid and its start time.

Records that name a process someone may later signal or wait for keep both: the
``fake_multinode`` provider's nodes and their starters
(``autoscaler/fake_multinode.py``), a session's Prometheus
(``monitoring/prometheus.py``). ``find`` then gives the process only while that
very process runs.
"""

from __future__ import annotations

import psutil

#: How far a recorded start time may be from the process's (the record may round it).
_START_TIME_SLACK_S = 0.01


def start_time(pid: int) -> float:
    """The start time of process ``pid``, as ``find`` compares it (psutil's ``create_time``).

    Raises:
        psutil.NoSuchProcess: no process has that pid.
    """
    return psutil.Process(pid).create_time()


def find(pid: int, create_time: float) -> psutil.Process | None:
    """The recorded process, if it still runs.

    Args:
        pid: Its pid.
        create_time: Its start time, as ``start_time`` gave it.

    Returns:
        The process ``pid`` if it is the one that started at ``create_time`` and has not
        exited (a zombie has); None otherwise.
    """
    try:
        process = psutil.Process(pid)
        if (abs(process.create_time() - create_time) < _START_TIME_SLACK_S
                and process.status() != psutil.STATUS_ZOMBIE):
            return process
    except psutil.Error:
        pass
    return None
