"""Fixtures of the jobs tests: ``cluster``, one two-node cluster per module
(``jobs_cluster.py``)."""

import pytest
from jobs_cluster import JobsCluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    # A short grace period after SIGTERM, so that the test of a stubborn job is quick.
    state = JobsCluster(tmp_path_factory.mktemp("jobs"), RAY_JOB_STOP_WAIT_TIME_S="1")
    try:
        yield state.start()
    finally:
        state.stop()
