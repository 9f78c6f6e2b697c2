"""The supervisor of one submitted job: a detached actor that runs its entrypoint.

The job manager (``job_manager.py``) creates one ``JobSupervisor`` per submission, placed
with the entrypoint's resources (on the head when it asks for none, as Ray does), in the
supervisors' namespace under the name ``supervisor_name(submission_id)``. The supervisor
runs the entrypoint as a shell command in a process group of its own, its output going to
``<session>/logs/job-driver-<submission_id>.log`` on its node, with ``RAY_ADDRESS`` and
``RAGGIO_ADDRESS`` (the control store), the cluster token and the job's config
(``RAY_JOB_CONFIG_JSON_ENV_VAR``: its metadata, with the submission id) in its
environment, so that ``init()`` there joins this cluster as the job's driver.

It writes no records: the job manager asks it (``wait_finished``) and keeps the record.
Being detached, it outlives the dashboard and a control-store restart; a restarted job
manager finds it by name and asks again. Its methods are coroutines, so ``stop`` runs
while ``wait_finished`` waits.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess

from raggio.core.context import get_core
from raggio.job_submission.common import JOB_ID_METADATA_KEY, JOB_LOG_NAME_TEMPLATE, LOG_TAIL_CHARS

#: The variable Ray's drivers read their JobConfig (metadata, runtime_env) from.
JOB_CONFIG_ENV_VAR = "RAY_JOB_CONFIG_JSON_ENV_VAR"


def supervisor_name(submission_id: str) -> str:
    return f"_raggio_internal_job_actor_{submission_id}"


def read_tail(path: str, chars: int = LOG_TAIL_CHARS) -> str:
    """The last ``chars`` characters of the file at ``path`` ("" when there is none)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - chars * 4))
            return f.read().decode(errors="replace")[-chars:]
    except OSError:
        return ""


class JobSupervisor:
    """Runs one job's entrypoint and reports how it ended."""

    def __init__(self, submission_id: str, entrypoint: str, metadata: dict,
                 runtime_env: dict, stop_wait_s: float):
        self.submission_id = submission_id
        self.entrypoint = entrypoint
        self.metadata = dict(metadata, **{JOB_ID_METADATA_KEY: submission_id})
        self.runtime_env = runtime_env
        self.stop_wait_s = stop_wait_s
        self.process: subprocess.Popen | None = None
        self.stopped = False  #: whether ``stop`` was asked for
        core = get_core()
        self.node_id = core.node_id.hex()
        self.log_path = os.path.join(core.node_info["session_dir"], "logs",
                                     JOB_LOG_NAME_TEMPLATE.format(submission_id=submission_id))
        self._env = dict(os.environ, RAY_ADDRESS=core.gcs_address,
                         RAGGIO_ADDRESS=core.gcs_address, RAGGIO_AUTH_TOKEN=core.token,
                         PYTHONUNBUFFERED="1")
        self._env[JOB_CONFIG_ENV_VAR] = json.dumps({"runtime_env": runtime_env,
                                                    "metadata": self.metadata})

    async def start(self) -> dict:
        """Start the entrypoint (once); {"node_id", "log_name", "pid"}. A command that
        cannot be started raises (the job fails with the error)."""
        if self.process is None and not self.stopped:
            with open(self.log_path, "ab") as log:
                log.write(f"Running entrypoint for job {self.submission_id}: "
                          f"{self.entrypoint}\n".encode())
                log.flush()
                # A session of its own: stop signals the whole group (the shell, the driver
                # and whatever they started), and nothing of the worker's.
                self.process = subprocess.Popen(
                    self.entrypoint, shell=True, start_new_session=True, env=self._env,
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        return {"node_id": self.node_id, "log_name": os.path.basename(self.log_path),
                "pid": self.process.pid if self.process else None}

    async def wait_finished(self) -> dict:
        """When the entrypoint has exited: {"exit_code", "stopped", "log_tail"}."""
        if self.process is not None:
            await asyncio.to_thread(self.process.wait)
        exit_code = self.process.returncode if self.process is not None else None
        return {"exit_code": exit_code, "stopped": self.stopped,
                "log_tail": read_tail(self.log_path) if exit_code else ""}

    async def stop(self) -> bool:
        """SIGTERM to the entrypoint's process group, SIGKILL ``stop_wait_s`` later if it
        is still there. False if it had already exited."""
        self.stopped = True
        if self.process is None or self.process.poll() is not None:
            return False
        pgid = self.process.pid  # the group's leader: it started a session of its own
        _signal_group(pgid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.to_thread(self.process.wait), self.stop_wait_s)
        except asyncio.TimeoutError:
            pass
        # Whatever of the group is left (the leader may have gone before its children).
        _signal_group(pgid, signal.SIGKILL)
        return True


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass
