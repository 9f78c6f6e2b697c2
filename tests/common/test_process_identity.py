"""A recorded process (pid and start time) is found while it runs, and never mistaken for
another: not after it exits, not as a zombie, not under another start time."""

import subprocess
import sys

import psutil

from raggio.common import process_identity
from raggio.test_utils import wait_until


def sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_a_running_process_is_found_by_its_pid_and_start_time():
    process = sleeper()
    try:
        started = process_identity.start_time(process.pid)
        assert process_identity.find(process.pid, started).pid == process.pid
        # Another start time: a later process that was given the same pid.
        assert process_identity.find(process.pid, started + 1.0) is None
    finally:
        process.kill()
        process.wait()
    assert process_identity.find(process.pid, started) is None


def test_a_killed_process_not_yet_reaped_is_not_found():
    process = sleeper()
    started = process_identity.start_time(process.pid)
    process.kill()
    try:  # not waited for yet: a zombie, which has exited all the same
        wait_until(lambda: psutil.Process(process.pid).status() == psutil.STATUS_ZOMBIE,
                   what="the killed process to become a zombie")
        assert process_identity.find(process.pid, started) is None
    finally:
        process.wait()
