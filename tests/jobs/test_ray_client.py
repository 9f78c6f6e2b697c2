"""Ray 2.60's own job client and ``ray job`` CLI against raggio's dashboard.

Ray is installed from PyPI (``ray[default]==2.60.0``) into a virtual environment of its
own, never raggio's: once per machine, under the system temp dir, keyed by version, and
reused by later runs. ``RAGGIO_TEST_RAY_VENV`` names an existing one instead (a
developer's). The tests skip, saying why, only when PyPI cannot be reached. Ray's
processes get ``RAY_AUTH_MODE=token RAY_AUTH_TOKEN=<the cluster token>``, as a user
gives them.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from jobs_cluster import wait_finished

from raggio.job_submission import JobStatus

RAY_VERSION = "2.60.0"
INSTALL_TIMEOUT_S = 900


#: What pip says when it cannot reach the index (then the tests skip; any other failure fails).
UNREACHABLE = ("Failed to establish a new connection", "Temporary failure in name resolution",
               "Network is unreachable", "Max retries exceeded", "Connection refused",
               "No matching distribution found")


@pytest.fixture(scope="session")
def ray_venv() -> Path:
    """A virtual environment with Ray 2.60 (see the module docstring)."""
    given = os.environ.get("RAGGIO_TEST_RAY_VENV")
    if given:
        return Path(given)
    venv = Path(tempfile.gettempdir()) / f"raggio-tests-ray-{RAY_VERSION}"
    with open(f"{venv}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run may be installing it: wait for it
        if (venv / "installed").exists():
            return venv
        shutil.rmtree(venv, ignore_errors=True)  # a half-made one (no "installed" mark)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        install = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
             "--disable-pip-version-check", f"ray[default]=={RAY_VERSION}"],
            capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
        said = install.stdout + install.stderr
        if install.returncode != 0 and any(words in said for words in UNREACHABLE):
            pytest.skip(f"PyPI is unreachable: pip could not install ray[default]=="
                        f"{RAY_VERSION} ({said.strip().splitlines()[-1]})")
        assert install.returncode == 0, said
        (venv / "installed").touch()
    return venv


def ray_env(cluster) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RAGGIO_", "RAY_")) and k != "PYTHONPATH"}
    return dict(env, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=cluster.token,
                RAY_ADDRESS=cluster.url)


SDK_SCRIPT = textwrap.dedent("""
    import asyncio, json, sys, time
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(sys.argv[1])
    job = client.submit_job(entrypoint="echo hello from the ray client; exit 0",
                            metadata={"by": "ray"}, entrypoint_num_cpus=0.5)

    async def tail():
        return "".join([chunk async for chunk in client.tail_job_logs(job)])

    tailed = asyncio.run(tail())
    info = client.get_job_info(job)
    stubborn = client.submit_job(entrypoint="sleep 300")
    while client.get_job_status(stubborn) != JobStatus.RUNNING:
        time.sleep(0.1)
    stopped = client.stop_job(stubborn)
    while not client.get_job_status(stubborn).is_terminal():
        time.sleep(0.1)
    try:
        client.get_job_info("no-such-job")
        missing = None
    except RuntimeError as exc:
        missing = str(exc)
    print(json.dumps({
        "job": job, "status": info.status.value, "message": info.message,
        "exit_code": info.driver_exit_code, "metadata": info.metadata,
        "tailed": tailed, "logs": client.get_job_logs(job),
        "listed": sorted(j.submission_id for j in client.list_jobs() if j.submission_id),
        "stopped": stopped, "stopped_status": client.get_job_status(stubborn).value,
        "deleted": client.delete_job(job), "missing": missing}))
""")


# The first test may install Ray (about 80 s here): the default per-test limit is too short.
@pytest.mark.timeout(INSTALL_TIMEOUT_S + 120)
def test_rays_job_submission_client_works_against_raggio(cluster, ray_venv):
    result = subprocess.run([str(ray_venv / "bin" / "python"), "-c", SDK_SCRIPT, cluster.url],
                            capture_output=True, text=True, env=ray_env(cluster), timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == "SUCCEEDED" and answer["exit_code"] == 0
    assert answer["message"] == "Job finished successfully."
    assert answer["metadata"] == {"by": "ray"}
    assert "hello from the ray client" in answer["tailed"]
    assert "hello from the ray client" in answer["logs"]
    assert answer["job"] in answer["listed"]
    assert answer["stopped"] is True and answer["stopped_status"] == "STOPPED"
    assert answer["deleted"] is True
    assert "404" in answer["missing"] and "does not exist" in answer["missing"]


@pytest.mark.timeout(INSTALL_TIMEOUT_S + 120)
def test_rays_job_cli_works_against_raggio(cluster, ray_venv):
    ray = str(ray_venv / "bin" / "ray")
    env = ray_env(cluster)

    def run(*args):
        return subprocess.run([ray, "job", *args], capture_output=True, text=True, env=env,
                              timeout=120)

    submitted = run("submit", "--submission-id", "by-ray", "--", "python", "-c",
                    "print('hello from job')")
    out = submitted.stdout + submitted.stderr
    assert submitted.returncode == 0, out
    assert "Job 'by-ray' submitted successfully" in out
    assert "hello from job" in out and "Job 'by-ray' succeeded" in out
    status = run("status", "by-ray")
    assert "Job 'by-ray' succeeded" in status.stdout + status.stderr
    logs = run("logs", "by-ray")
    assert "hello from job" in logs.stdout
    listed = run("list")
    assert "submission_id='by-ray'" in listed.stdout + listed.stderr
    assert run("submit", "--no-wait", "--submission-id", "ray-stops", "--",
               "sleep", "300").returncode == 0
    stopped = run("stop", "ray-stops")
    assert "Job 'ray-stops' was stopped" in stopped.stdout + stopped.stderr
    assert wait_finished(cluster.client(), "ray-stops").status == JobStatus.STOPPED


@pytest.mark.timeout(INSTALL_TIMEOUT_S + 120)
def test_rays_client_uploads_a_local_working_dir_that_the_job_runs_in(cluster, ray_venv,
                                                                       tmp_path):
    directory = tmp_path / "ray_job_dir"
    directory.mkdir()
    (directory / "helper.py").write_text("WORD = 'uploaded-by-ray'\n")
    (directory / "main.py").write_text("import helper\nprint('job says', helper.WORD)\n")
    script = textwrap.dedent("""
        import sys
        from ray.job_submission import JobSubmissionClient
        client = JobSubmissionClient(sys.argv[1])
        print(client.submit_job(entrypoint="python main.py",
                                runtime_env={"working_dir": sys.argv[2]}))
    """)
    result = subprocess.run([str(ray_venv / "bin" / "python"), "-c", script, cluster.url,
                             str(directory)], capture_output=True, text=True,
                            env=ray_env(cluster), timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    job = result.stdout.strip().splitlines()[-1]
    client = cluster.client()
    info = wait_finished(client, job)
    assert info.status == JobStatus.SUCCEEDED, client.get_job_logs(job)
    assert "job says uploaded-by-ray" in client.get_job_logs(job)
    assert info.runtime_env["working_dir"].startswith("gcs://_ray_pkg_")
