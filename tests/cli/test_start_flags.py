"""``raggio start``'s flags for the launcher: Ray's start-command flags, the head's
--autoscaling-config, RAGGIO_OVERRIDE_RESOURCES and the head's RAGGIO_AUTH_TOKEN.

Each test starts a real head daemon in a temp dir and on ports of its own, and stops
the processes it started by their PIDs (never ``raggio stop``, which would stop every
raggio on the machine).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile

import psutil
import pytest

from raggio import cluster_file
from raggio.core import one_shot
from raggio.launcher.cluster_config import CONFIG_KEY

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "clusters",
                       "onprem.yaml")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def temp_dir():
    """A short temp dir of the test's own (a session's unix socket paths must stay short);
    at the end, every process whose command line names it is stopped by its PID."""
    path = tempfile.mkdtemp(prefix="rgstart-", dir="/tmp")
    yield path
    started = [process for process in psutil.process_iter(["cmdline"])
               if path in " ".join(process.info["cmdline"] or ())]
    for process in started:
        try:
            process.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(started, timeout=20)
    for process in alive:
        process.kill()
    shutil.rmtree(path, ignore_errors=True)


def _start(temp_dir: str, *flags: str, env: dict) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "raggio", "start", "--head", f"--port={_free_port()}",
            f"--temp-dir={temp_dir}", "--node-ip-address=127.0.0.1",
            "--include-dashboard=false", "--ray-client-server-port=0", *flags]
    return subprocess.run(argv, env={**os.environ, "RAGGIO_TEMP_DIR": temp_dir, **env},
                          capture_output=True, text=True, timeout=120)


def test_a_head_started_as_the_launcher_starts_it(temp_dir):
    node_manager_port = _free_port()
    override = {"CPU": 3, "memory": 2 * 1024**3, "object_store_memory": 100 * 1024**2,
                "launcher_custom": 2}
    started = _start(temp_dir, "--object-manager-port=8076", "--disable-usage-stats",
                     f"--node-manager-port={node_manager_port}",
                     f"--autoscaling-config={EXAMPLE}",
                     env={"RAGGIO_OVERRIDE_RESOURCES": json.dumps(override),
                          "RAGGIO_AUTH_TOKEN": "token-the-launcher-chose"})
    assert started.returncode == 0, started.stderr
    current = cluster_file.read(temp_dir)
    with open(current["token_path"]) as file:
        assert file.read() == "token-the-launcher-chose"
    cluster = {"gcs_address": current["gcs_address"], "token": "token-the-launcher-chose"}
    nodes, stored = one_shot.query(cluster, [("get_nodes", None), ("kv_get", CONFIG_KEY)])
    (node,) = nodes
    assert {name: node["resources"][name] for name in override} == override
    assert node["address"].endswith(f":{node_manager_port}")
    config = json.loads(stored)
    assert config["head_node_type"] == "ray-legacy-head-node-type"
    assert config["available_node_types"]["ray-legacy-worker-node-type"]["resources"] == {
        "CPU": 16.0, "memory": 32 * 1024**3}


def test_a_bad_cluster_file_fails_the_start_with_its_line(temp_dir):
    bad = os.path.join(temp_dir, "cluster.yaml")
    with open(bad, "w") as file:
        file.write("cluster_name: x\nprovider: {type: local, head_ip: 10.0.0.1}\n"
                   "auth: {ssh_user: me}\nmax_worker: 2\n")
    started = _start(temp_dir, f"--autoscaling-config={bad}", env={})
    assert started.returncode != 0
    assert f"{bad}:4: unknown key `max_worker`" in started.stderr
    assert "did you mean `max_workers`?" in started.stderr


def test_a_bad_resource_override_fails_the_start(temp_dir):
    started = _start(temp_dir, env={"RAGGIO_OVERRIDE_RESOURCES": '{"CPU": "many"}'})
    assert started.returncode != 0
    assert "RAGGIO_OVERRIDE_RESOURCES" in started.stderr, started.stderr
