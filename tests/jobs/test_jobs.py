"""Submitted jobs on a two-node cluster, through raggio's client and ``raggio job``.

One cluster for the module (``conftest.py``): jobs that succeed (their driver joins the
cluster and is linked to the submission), fail, are stopped mid-run (their whole process
group gone), are deleted, are placed by their entrypoint's resources, run in their
runtime_env (a local working_dir and py_modules uploaded, a bad pip requirement failing
the job), and are followed with ``tail_job_logs`` and the CLI.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import textwrap

import pytest

from raggio.job_submission import JobDetails, JobStatus, JobType
from raggio.test_utils import missing_package_error, wait_until

from jobs_cluster import pid_gone, wait_finished, wait_status

DRIVER = textwrap.dedent("""
    import raggio as ray
    ray.init()

    @ray.remote
    def square(x):
        return x * x

    print("squares", ray.get([square.remote(i) for i in range(4)]))
""")


#: A job's script that lives only in its working_dir: it imports a module from there and
#: from py_modules, and so do its tasks (the job's runtime_env is theirs too).
IN_WORKING_DIR = textwrap.dedent("""
    import os
    import raggio as ray
    import helper

    ray.init()

    @ray.remote
    def look():
        import helper
        return helper.WORD, open("data.txt").read().strip(), os.getcwd() == here

    here = os.getcwd()
    extra = __import__("extra_mod").NUMBER if os.environ.get("WITH_PY_MODULES") else None
    print("driver", helper.WORD, extra, "task", ray.get(look.remote()))
""")


def working_dir(tmp_path):
    """A working_dir with ``main.py`` (IN_WORKING_DIR), ``helper.py`` and ``data.txt``."""
    directory = tmp_path / "job_dir"
    directory.mkdir()
    (directory / "main.py").write_text(IN_WORKING_DIR)
    (directory / "helper.py").write_text("WORD = 'from-helper'\n")
    (directory / "data.txt").write_text("from-data\n")
    return directory


def node_ids(cluster) -> tuple[str, str]:
    """(the head node's id, the other node's) as the dashboard has them."""
    nodes = cluster.client()._json("GET", "/api/v0/nodes")["data"]["result"]["result"]
    head = next(n["node_id"] for n in nodes if n["is_head_node"])
    other = next(n["node_id"] for n in nodes if not n["is_head_node"])
    return head, other


def test_a_job_runs_a_driver_that_joins_the_cluster(cluster, tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    client = cluster.client()
    job = client.submit_job(entrypoint=f"python {script}", metadata={"team": "a"},
                            runtime_env={"env_vars": {"GREETING": "hi"}})
    assert job.startswith("raysubmit_")
    info = wait_finished(client, job)
    assert info.status == JobStatus.SUCCEEDED, client.get_job_logs(job)
    assert info.message == "Job finished successfully."
    assert info.driver_exit_code == 0 and info.error_type is None
    assert 0 < info.start_time <= info.end_time
    assert info.metadata == {"team": "a"}
    assert info.driver_node_id == node_ids(cluster)[0]  # no resources asked: the head
    # Its driver is this job's: linked by id, and not listed again as a driver of its own.
    assert info.job_id and info.driver_info.id == info.job_id
    assert client.get_job_info(info.job_id).submission_id == job
    logs = client.get_job_logs(job)
    assert f"Running entrypoint for job {job}: python {script}" in logs
    assert "squares [0, 1, 4, 9]" in logs
    rows = client.list_jobs()
    assert all(isinstance(row, JobDetails) for row in rows)
    assert [row.job_id for row in rows].count(info.job_id) == 1
    # The dashboard's own driver (which creates the supervisors) is no job of the user's.
    assert not [row for row in rows if row.type == JobType.DRIVER
                and "dashboard" in row.entrypoint]


def test_env_vars_reach_the_entrypoint(cluster):
    client = cluster.client()
    job = client.submit_job(entrypoint="echo greeting=$GREETING",
                            runtime_env={"env_vars": {"GREETING": "hello"}})
    assert wait_finished(client, job).status == JobStatus.SUCCEEDED
    assert "greeting=hello" in client.get_job_logs(job)


def test_a_local_working_dir_and_py_modules_are_uploaded_and_run_in(cluster, tmp_path):
    module = tmp_path / "extra_mod"
    module.mkdir()
    (module / "__init__.py").write_text("NUMBER = 7\n")
    client = cluster.client()
    job = client.submit_job(entrypoint="python main.py", runtime_env={
        "working_dir": str(working_dir(tmp_path)), "py_modules": [str(module)],
        "env_vars": {"WITH_PY_MODULES": "1"}})
    info = wait_finished(client, job)
    assert info.status == JobStatus.SUCCEEDED, client.get_job_logs(job)
    assert "driver from-helper 7 task ('from-helper', 'from-data', True)" in (
        client.get_job_logs(job))
    assert info.runtime_env["working_dir"].startswith("gcs://_ray_pkg_")
    assert info.runtime_env["py_modules"][0].startswith("gcs://_ray_pkg_")


def test_a_bad_pip_requirement_fails_the_job_with_pips_error(cluster):
    client = cluster.client()
    job = client.submit_job(entrypoint="echo never", runtime_env={
        "pip": ["--no-index", "raggio-no-such-package==0.0.1"]})
    info = wait_finished(client, job)
    assert info.status == JobStatus.FAILED
    assert info.error_type == "RUNTIME_ENV_SETUP_FAILURE"
    assert info.message.startswith("runtime_env setup failed: ")
    assert re.search(missing_package_error("raggio-no-such-package"), info.message)
    assert "never" not in client.get_job_logs(job)


def test_the_drivers_own_runtime_env_conflicts_unless_told_to_override(cluster, tmp_path):
    script = tmp_path / "own_env.py"
    script.write_text(textwrap.dedent("""
        import os
        import raggio as ray
        ray.init(runtime_env={"env_vars": {"WHO": "init"}})

        @ray.remote
        def who():
            return os.environ["WHO"], os.environ["ALSO"]
        print("who", ray.get(who.remote()))
    """))
    client = cluster.client()
    env_vars = {"WHO": "job", "ALSO": "job"}
    refused = client.submit_job(entrypoint=f"python {script}",
                                runtime_env={"env_vars": env_vars})
    assert wait_finished(client, refused).status == JobStatus.FAILED
    assert "Failed to merge the Job's runtime env" in client.get_job_logs(refused)
    merged = client.submit_job(entrypoint=f"python {script}", runtime_env={
        "env_vars": dict(env_vars, RAY_OVERRIDE_JOB_RUNTIME_ENV="1")})
    assert wait_finished(client, merged).status == JobStatus.SUCCEEDED
    assert "who ('init', 'job')" in client.get_job_logs(merged)


def test_a_failing_job_fails_with_its_exit_code_and_last_lines(cluster):
    client = cluster.client()
    job = client.submit_job(entrypoint="echo about to fail; exit 3", submission_id="fails")
    info = wait_finished(client, job)
    assert info.status == JobStatus.FAILED and info.driver_exit_code == 3
    assert info.error_type == "JOB_ENTRYPOINT_COMMAND_ERROR"
    assert info.message.startswith("Job entrypoint command failed with exit code 3, last "
                                   "available logs (truncated to 20,000 chars):")
    assert "about to fail" in info.message
    # A taken id is refused, with the server's words.
    with pytest.raises(RuntimeError, match="status code 400: .*already exists"):
        client.submit_job(entrypoint="true", submission_id="fails")


STUBBORN = ("sh -c 'trap \"\" TERM; sleep 300 & echo child=$!; echo shell=$$; wait; "
            "echo never'")


def test_a_stopped_job_loses_its_whole_process_group(cluster):
    client = cluster.client()
    job = client.submit_job(entrypoint=STUBBORN)
    logs = wait_until(lambda: "shell=" in (text := client.get_job_logs(job)) and text,
                      what="the job's pids in its log")
    pids = [int(line.split("=")[1]) for line in logs.splitlines()
            if line.startswith(("child=", "shell="))]
    assert client.get_job_status(job) == JobStatus.RUNNING
    # A running job cannot be deleted.
    with pytest.raises(RuntimeError, match="non-terminal"):
        client.delete_job(job)
    assert client.stop_job(job) is True
    info = wait_finished(client, job)
    assert info.status == JobStatus.STOPPED
    assert info.message == "Job was intentionally stopped."
    # The shell ignores SIGTERM: SIGKILL after the grace period ends it and its child.
    wait_until(lambda: all(pid_gone(pid) for pid in pids), what="the job's processes to end")
    assert client.stop_job(job) is False  # it has ended already
    assert client.delete_job(job) is True
    with pytest.raises(RuntimeError, match="status code 404: Job .* does not exist"):
        client.get_job_info(job)


def test_entrypoint_resources_place_the_job_on_the_node_that_has_them(cluster):
    client = cluster.client()
    job = client.submit_job(entrypoint="echo placed", entrypoint_resources={"entry": 1},
                            entrypoint_num_cpus=0.5, entrypoint_memory=2**20)
    info = wait_finished(client, job)
    assert info.status == JobStatus.SUCCEEDED
    assert info.driver_node_id == node_ids(cluster)[1]
    assert "placed" in client.get_job_logs(job)  # read from that node's log directory


def test_a_job_waiting_for_resources_is_pending_until_stopped(cluster):
    client = cluster.client()
    job = client.submit_job(entrypoint="echo never", entrypoint_resources={"entry": 5})
    info = client.get_job_info(job)
    assert info.status == JobStatus.PENDING
    assert info.message == ("Job has not started yet. It may be waiting for resources (CPUs, "
                            "GPUs, memory, custom resources) to become available.")
    assert client.stop_job(job) is True
    info = wait_finished(client, job)
    assert info.status == JobStatus.STOPPED and info.driver_exit_code is None
    assert "never" not in client.get_job_logs(job)


def test_tail_job_logs_follows_the_output_until_the_end(cluster):
    client = cluster.client()
    job = client.submit_job(entrypoint="echo one; sleep 0.5; echo two")

    async def tail():
        return "".join([chunk async for chunk in client.tail_job_logs(job)])

    text = asyncio.run(tail())
    assert text.index("one") < text.index("two")
    assert client.get_job_status(job) == JobStatus.SUCCEEDED


def test_the_cli_submits_waits_and_reports_with_rays_lines(cluster):
    env = cluster.env(RAGGIO_AUTH_TOKEN=cluster.token, RAY_ADDRESS=cluster.url)
    result = cluster.raggio("job", "submit", "--submission-id", "cli-1",
                            "--metadata-json", '{"via": "cli"}', "--",
                            "python", "-c", "print('hello from job')", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"Job submission server address: {cluster.url}" in out
    assert "Job 'cli-1' submitted successfully" in out
    assert "raggio job logs cli-1" in out
    assert "Tailing logs until the job exits (disable with --no-wait):" in out
    assert out.index("hello from job") < out.index("Job 'cli-1' succeeded")

    result = cluster.raggio("job", "submit", "--no-wait", "--", "sh", "-c", "exit 5",
                            env=env)
    assert result.returncode == 0 and "Tailing" not in result.stdout
    failed = cluster.raggio("job", "submit", "--address", cluster.url, "--", "sh", "-c",
                            "exit 5", env=env)
    assert failed.returncode == 1 and "failed with exit code 5" in failed.stdout

    status = cluster.raggio("job", "status", "cli-1", env=env)
    assert "Job 'cli-1' succeeded" in status.stdout, status.stderr
    logs = cluster.raggio("job", "logs", "cli-1", env=env)
    assert "hello from job" in logs.stdout
    listing = cluster.raggio("job", "list", env=env)
    assert "submission_id='cli-1'" in listing.stdout
    assert "Job 'cli-1' deleted successfully" in cluster.raggio(
        "job", "delete", "cli-1", env=env).stdout
    missing = cluster.raggio("job", "status", "cli-1", env=env)
    assert missing.returncode == 1 and "Job cli-1 does not exist" in missing.stderr
    # The state API's job list leaves out the job manager's own driver too.
    state = cluster.raggio("list", "jobs", "--format", "json", "--detail")
    assert state.returncode == 0, state.stderr
    namespaces = [row["ray_namespace"] for row in json.loads(state.stdout)]
    assert not [n for n in namespaces if n.startswith("_raggio_internal")], namespaces
    # No address and no token given: this machine's cluster, and its session's token file.
    local = cluster.raggio("job", "list")
    assert local.returncode == 0, local.stderr
    assert f"Job submission server address: {cluster.url}" in local.stdout


def test_the_cli_submits_a_working_dir(cluster, tmp_path):
    env = cluster.env(RAGGIO_AUTH_TOKEN=cluster.token, RAY_ADDRESS=cluster.url)
    result = cluster.raggio("job", "submit", "--working-dir", str(working_dir(tmp_path)),
                            "--", "python", "main.py", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "driver from-helper None task ('from-helper', 'from-data', True)" in result.stdout


def test_the_cli_stops_a_running_job(cluster):
    env = cluster.env(RAGGIO_AUTH_TOKEN=cluster.token, RAY_ADDRESS=cluster.url)
    assert cluster.raggio("job", "submit", "--no-wait", "--submission-id", "cli-2", "--",
                          "sleep", "300", env=env).returncode == 0
    wait_status(cluster.client(), "cli-2", JobStatus.RUNNING)
    result = cluster.raggio("job", "stop", "cli-2", env=env)
    assert "Attempting to stop job 'cli-2'" in result.stdout
    assert "Job 'cli-2' was stopped" in result.stdout, result.stdout + result.stderr


def test_a_job_log_is_a_file_in_its_nodes_session(cluster):
    client = cluster.client()
    job = client.submit_job(entrypoint="echo on disk")
    wait_finished(client, job)
    path = os.path.join(cluster.info["session_dir"], "logs", f"job-driver-{job}.log")
    with open(path) as f:
        assert "on disk" in f.read()


def test_the_token_is_needed(cluster):
    from raggio.job_submission import JobSubmissionClient
    with pytest.raises(RuntimeError, match="status code 401"):
        JobSubmissionClient(cluster.url, headers={"Authorization": "Bearer wrong"})
