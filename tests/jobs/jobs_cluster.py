"""The jobs tests' cluster: a real two-node one, as a user starts it.

``JobsCluster.start`` runs ``raggio start --head --port=0 --dashboard-port=0`` in a
private temp dir (a durable SQLite control store, as the CLI's default) and joins a
second node with ``raggio start --address`` that has the custom resource ``entry``, on
127.0.0.2; ``stop`` ends every process of that temp dir by its pid (never ``raggio stop``,
which would end every cluster on the machine). ``conftest.py``'s ``cluster`` is one per
module.
"""

from __future__ import annotations

import signal
import subprocess
import sys

import psutil

from raggio import cluster_file
from raggio.job_submission import JobStatus, JobSubmissionClient
from raggio.test_utils import env_for, wait_until

TIMEOUT_S = 120


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def pid_gone(pid: int) -> bool:
    try:
        return not alive(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return True


class JobsCluster:
    """A head (2 CPUs) and a node (1 CPU, ``{"entry": 1}``) in ``temp_dir``."""

    def __init__(self, temp_dir, **env):
        self.temp_dir = temp_dir
        self.extra_env = env
        self.port = 0

    def env(self, **more) -> dict:
        return dict(env_for(self.temp_dir), RAGGIO_GCS_RECONNECT_GRACE_S="3",
                    **self.extra_env, **more)

    def raggio(self, *args, env=None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "raggio", *args], capture_output=True,
                              text=True, env=env or self.env(), timeout=TIMEOUT_S)

    def start_head(self) -> None:
        result = self.raggio("start", "--head", f"--port={self.port}", "--dashboard-port=0",
                             "--node-ip-address=127.0.0.1", "--num-cpus=2",
                             f"--object-store-memory={100 * 1024**2}",
                             f"--temp-dir={self.temp_dir}")
        assert result.returncode == 0, result.stdout + result.stderr
        self.info = cluster_file.read(str(self.temp_dir))
        self.gcs_address = self.info["gcs_address"]
        self.port = int(self.gcs_address.rpartition(":")[2])  # a restart takes it again
        self.url = self.info["dashboard_url"]
        self.token = cluster_file.read_token(self.info)

    def start(self) -> "JobsCluster":
        self.start_head()
        result = self.raggio("start", f"--address={self.gcs_address}", "--num-cpus=1",
                             "--node-ip-address=127.0.0.2", '--resources={"entry": 1}',
                             f"--object-store-memory={80 * 1024**2}",
                             f"--temp-dir={self.temp_dir}",
                             env=self.env(RAGGIO_AUTH_TOKEN=self.token))
        assert result.returncode == 0, result.stdout + result.stderr
        return self

    def client(self) -> JobSubmissionClient:
        return JobSubmissionClient(self.url, headers={"Authorization": f"Bearer {self.token}"})

    def daemons(self, module: str) -> list[psutil.Process]:
        out = []
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = proc.info["cmdline"] or []
            if module in cmdline and str(self.temp_dir) in " ".join(cmdline) and alive(proc):
                out.append(proc)
        return out

    def kill_head(self) -> None:
        """SIGKILL the head (its control store, head node and dashboard) and wait."""
        head = psutil.Process(self.info["pid"])
        family = [head] + head.children(recursive=True)
        head.send_signal(signal.SIGKILL)
        wait_until(lambda: not any(alive(p) for p in family), timeout_s=30,
                   what="the killed head and its children to end")

    def stop(self) -> None:
        procs = self.daemons("raggio.head") + self.daemons("raggio.node.main")
        family = [p for d in procs if alive(d) for p in [d] + d.children(recursive=True)]
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        wait_until(lambda: not any(alive(p) for p in family), timeout_s=30,
                   what="the module's cluster to exit")


def wait_finished(client: JobSubmissionClient, job_id: str, timeout_s: float = 60):
    """The job's details once it has ended."""
    return wait_until(lambda: (info := client.get_job_info(job_id)).status.is_terminal()
                      and info, timeout_s=timeout_s, what=f"job {job_id} to end")


def wait_status(client: JobSubmissionClient, job_id: str, status: JobStatus,
                timeout_s: float = 60) -> None:
    wait_until(lambda: client.get_job_status(job_id) == status, timeout_s=timeout_s,
               what=f"job {job_id} to be {status}")
