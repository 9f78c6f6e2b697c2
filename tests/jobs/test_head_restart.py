"""A running job rides out a head restart (its control store on SQLite, the CLI's default).

The job runs on the joined node (its entrypoint asks for ``entry``); the head (control
store, head node, dashboard) is SIGKILLed and started again on the same port. The job
keeps running, the restarted dashboard's job manager finds its supervisor and records
how it ended, and its log and earlier jobs' records are still there.
"""

from __future__ import annotations

import pytest
from jobs_cluster import JobsCluster, wait_finished, wait_status

from raggio.job_submission import JobStatus
from raggio.test_utils import wait_until


@pytest.fixture
def own_cluster(tmp_path):
    state = JobsCluster(tmp_path)
    try:
        yield state.start()
    finally:
        state.stop()


def test_a_running_job_finishes_through_a_head_restart(own_cluster):
    cluster = own_cluster
    client = cluster.client()
    done = client.submit_job(entrypoint="echo earlier")
    assert wait_finished(client, done).status == JobStatus.SUCCEEDED
    # It waits for a file the test writes after the restart: no guessing how long one takes.
    go = cluster.temp_dir / "go"
    job = client.submit_job(
        entrypoint=f"echo before; while [ ! -e {go} ]; do sleep 0.1; done; echo after",
        entrypoint_resources={"entry": 1})
    wait_until(lambda: "before" in client.get_job_logs(job), what="the job to start")
    cluster.kill_head()
    cluster.start_head()
    client = cluster.client()  # the restarted dashboard may have another port
    assert client.get_job_status(job) == JobStatus.RUNNING
    go.touch()
    info = wait_finished(client, job)
    assert info.status == JobStatus.SUCCEEDED and info.driver_exit_code == 0
    logs = client.get_job_logs(job)
    assert logs.index("before") < logs.index("after")
    assert client.get_job_info(done).status == JobStatus.SUCCEEDED
    # The restarted cluster takes new jobs.
    again = client.submit_job(entrypoint="echo again")
    wait_status(client, again, JobStatus.SUCCEEDED)
