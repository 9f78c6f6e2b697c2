"""The supervisor of one submitted job: a detached actor that runs its entrypoint.

The job manager (``job_manager.py``) creates one ``JobSupervisor`` per submission, placed
with the entrypoint's resources (on the head when it asks for none, as Ray does), in the
supervisors' namespace under the name ``supervisor_name(submission_id)``. The supervisor
sets the job's runtime_env up on its node, with the node's own code and cache
(``node/runtime_env_setup.py``, ``<session>/runtime_resources``), then runs the entrypoint
in it: a shell command in a process group of its own, in the ``working_dir``, with the
env's variables (``env_vars``, ``PYTHONPATH``, a venv's ``PATH``), its output going to
``<session>/logs/job-driver-<submission_id>.log`` on its node, with ``RAY_ADDRESS`` and
``RAGGIO_ADDRESS`` (the control store), the cluster token and the job's config
(``RAY_JOB_CONFIG_JSON_ENV_VAR``: its metadata, with the submission id, and its
runtime_env) in its environment, so that ``init()`` there joins this cluster as the job's
driver, with the job's runtime_env as the default of its tasks and actors. The supervisor
itself runs outside the env: a user's ``pip`` or ``working_dir`` cannot break it.

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
from raggio.exceptions import RuntimeEnvSetupError
from raggio.job_submission.common import JOB_ID_METADATA_KEY, JOB_LOG_NAME_TEMPLATE, LOG_TAIL_CHARS
from raggio.node.runtime_env_setup import RuntimeEnvSetup

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
        #: ``_launch`` running or done: a resumed job manager's ``start`` waits for the same
        self._launching: asyncio.Task | None = None
        core = get_core()
        self.node_id = core.node_id.hex()
        session_dir = core.node_info["session_dir"]
        self.log_path = os.path.join(session_dir, "logs",
                                     JOB_LOG_NAME_TEMPLATE.format(submission_id=submission_id))
        # The node manager's cache: a package or venv set up here serves the job's tasks on
        # this node too (each entry is renamed into place whole, so sharing it is safe).
        self._setup = RuntimeEnvSetup(
            os.path.join(session_dir, "runtime_resources"),
            lambda uri: asyncio.to_thread(core.request, "gcs", "kv_get", uri))
        self._env = dict(os.environ, RAY_ADDRESS=core.gcs_address,
                         RAGGIO_ADDRESS=core.gcs_address, RAGGIO_AUTH_TOKEN=core.token,
                         PYTHONUNBUFFERED="1")
        self._env[JOB_CONFIG_ENV_VAR] = json.dumps({"runtime_env": runtime_env,
                                                    "metadata": self.metadata})

    async def start(self) -> dict:
        """Set the runtime_env up and start the entrypoint in it (once); {"node_id",
        "log_name", "pid", "setup_error"}: ``setup_error`` is why the runtime_env could not
        be set up (the installer's own output), and then nothing ran. A command that cannot
        be started raises (the job fails with the error)."""
        if self._launching is None:
            self._launching = asyncio.ensure_future(self._launch())
        setup_error = await asyncio.shield(self._launching)
        return {"node_id": self.node_id, "log_name": os.path.basename(self.log_path),
                "pid": self.process.pid if self.process else None, "setup_error": setup_error}

    async def _launch(self) -> str | None:
        try:
            prepared = await self._setup.prepare(self.runtime_env)
        except RuntimeEnvSetupError as exc:
            return str(exc)
        if self.stopped:
            return None
        with open(self.log_path, "ab") as log:
            log.write(f"Running entrypoint for job {self.submission_id}: "
                      f"{self.entrypoint}\n".encode())
            log.flush()
            # A session of its own: stop signals the whole group (the shell, the driver
            # and whatever they started), and nothing of the worker's.
            self.process = subprocess.Popen(
                self.entrypoint, shell=True, start_new_session=True, cwd=prepared["cwd"],
                env=dict(self._env, **prepared["env_vars"]), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT)
        return None

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
