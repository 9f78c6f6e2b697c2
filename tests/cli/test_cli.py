"""The ``raggio`` command: start, status and stop, run as a user would, in subprocesses.

Every command gets ``--temp-dir`` (a directory of this module's own, so
nothing touches /tmp/raggio) and nodes get ``--node-ip-address=127.0.0.1``;
drivers run as subprocesses with ``RAGGIO_TEMP_DIR`` set, and find the
cluster through the current-cluster file there. The head (two CPUs) is
shared by the module's tests and started again by whichever test needs it
after ``raggio stop`` ended it. ``raggio stop`` ends every raggio process of
this machine, so this module uses no other cluster fixture, and its teardown
runs ``raggio stop`` and checks that nothing is left. As with ``popen`` in
``distributed/cli/tests/test_dask_scheduler.py``.
"""

import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys

import psutil
import pytest

import raggio
from raggio import cluster_file
from raggio.test_utils import alive, daemons, env_for, run_cli, wait_until

STORE_BYTES = 100 * 1024**2
#: A safety net for one command; they take well under a second when things work.
COMMAND_TIMEOUT_S = 60


def run_driver(temp_dir, script: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env_for(temp_dir), timeout=COMMAND_TIMEOUT_S)


def status(temp_dir) -> dict[str, list[str]]:
    """``raggio status`` by section: {"Active": [lines], "Total Usage": [...], ...}."""
    result = run_cli(temp_dir, "status", f"--temp-dir={temp_dir}")
    assert result.returncode == 0, result.stderr
    sections: dict[str, list[str]] = {}
    current = None
    for line in result.stdout.splitlines():
        if line.endswith(":") and not line.startswith(" "):
            current = sections.setdefault(line[:-1], [])
        elif line.startswith(" ") and current is not None:
            current.append(line.strip())
    return sections


def active_nodes(temp_dir) -> list[str]:
    return status(temp_dir)["Active"]


def tree(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for proc in procs:
        out.append(proc)
        try:
            out += proc.children(recursive=True)
        except psutil.Error:
            pass
    return out


def running(procs: list[psutil.Process]) -> list[str]:
    return [f"{p.pid} {' '.join(p.cmdline())[:100]}" for p in procs if alive(p)]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CliCluster:
    """This module's head: started with ``raggio start --head``, again after a stop."""

    def __init__(self, temp_dir, module_daemons: list):
        self.temp_dir = temp_dir
        self.module_daemons = module_daemons
        self.head: psutil.Process | None = None
        self.address = ""
        self.start_result: subprocess.CompletedProcess | None = None

    def ensure_head(self) -> None:
        if self.head is not None and alive(self.head):
            return
        result = run_cli(self.temp_dir, "start", "--head", "--port=0", "--dashboard-port=0",
                         "--num-cpus=2",
                         f"--object-store-memory={STORE_BYTES}",
                         "--node-ip-address=127.0.0.1", f"--temp-dir={self.temp_dir}")
        info = cluster_file.read(str(self.temp_dir))
        if info is not None:
            self.head = psutil.Process(info["pid"])
            self.module_daemons.append(self.head)
            # The head node runs as its own daemon beside the control store.
            self.module_daemons.extend(p for p in daemons(self.temp_dir, "raggio.node.main")
                                       if "--head" in p.cmdline())
        assert result.returncode == 0, result.stdout + result.stderr
        assert info is not None, f"no current-cluster file in {self.temp_dir}"
        self.address = info["gcs_address"]
        self.start_result = result

    def head_node_id(self) -> str:
        heads = [line for line in active_nodes(self.temp_dir) if line.endswith("(head)")]
        assert len(heads) == 1, heads
        return re.match(r"1 node_([0-9a-f]+) \(head\)", heads[0]).group(1)


@pytest.fixture(scope="module")
def cli(tmp_path_factory, module_daemons):
    temp_dir = tmp_path_factory.mktemp("cli")
    state = CliCluster(temp_dir, module_daemons)
    try:
        yield state
    finally:
        ours = tree(daemons(temp_dir, "raggio.head") + daemons(temp_dir, "raggio.node.main"))
        result = run_cli(temp_dir, "stop", f"--temp-dir={temp_dir}")
        assert result.returncode == 0, result.stdout + result.stderr
        wait_until(lambda: not running(ours), timeout_s=10, what="raggio stop to end the "
                   f"module's cluster: {running(ours)}")


@pytest.fixture
def head(cli):
    cli.ensure_head()
    return cli


@pytest.fixture
def joined_node(head):
    """A one-CPU node joined with ``raggio start --address``; ended (SIGTERM) afterwards."""
    yield from _join(head)


@pytest.fixture
def labelled_node(head, tmp_path):
    """A node joined with Ray 2.60's ``--labels`` and ``--labels-file``; ended afterwards."""
    labels_file = tmp_path / "labels.yaml"
    labels_file.write_text('"gpu_type": "A100"\n"region": "us"\n')
    yield from _join(head, "--labels", "region=eu,market-type=spot",
                     f"--labels-file={labels_file}")


def _join(head, *flags):
    before = {p.pid for p in daemons(head.temp_dir, "raggio.node.main")}
    result = run_cli(head.temp_dir, "start", f"--address={head.address}", "--num-cpus=1",
                     f"--object-store-memory={STORE_BYTES}", "--node-ip-address=127.0.0.1",
                     f"--temp-dir={head.temp_dir}", *flags)
    new = [p for p in daemons(head.temp_dir, "raggio.node.main") if p.pid not in before]
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        assert len(new) == 1, new
        yield result
    finally:
        procs = tree(new)
        for proc in new:
            try:
                proc.send_signal(signal.SIGTERM)
            except psutil.Error:
                pass
        wait_until(lambda: not running(procs), timeout_s=20,
                   what=f"the joined node to exit: {running(procs)}")
        if head.head is not None and alive(head.head):
            wait_until(lambda: len(active_nodes(head.temp_dir)) == 1, timeout_s=20,
                       what="the head to see the joined node gone")


# -- start --head and status --


def test_start_head_prints_address_and_join_line(head):
    out = head.start_result.stdout
    assert head.address.startswith("127.0.0.1:")
    assert f"raggio start --address='{head.address}'" in out
    assert "raggio runtime started" in out


def test_status_shows_the_head_and_its_usage(head):
    def idle_status():
        sections = status(head.temp_dir)
        return sections if "0.0/2.0 CPU" in sections["Total Usage"] else None

    sections = wait_until(idle_status, timeout_s=20, what="an idle head in raggio status")
    assert len(sections["Active"]) == 1
    assert re.fullmatch(r"1 node_[0-9a-f]{56} \(head\)", sections["Active"][0])
    assert "0.0/2.0 CPU" in sections["Total Usage"]
    assert sections["Pending Demands"] == ["(no resource demands)"]


def test_start_address_joins_a_second_node(head, joined_node):
    assert f"joined the cluster at {head.address}" in joined_node.stdout
    sections = status(head.temp_dir)
    assert len(sections["Active"]) == 2
    assert sum(line.endswith("(head)") for line in sections["Active"]) == 1
    assert any(line.endswith("/3.0 CPU") for line in sections["Total Usage"])


# -- drivers --

_AUTO_DRIVER = """
import json, raggio as ray
ray.init(address="auto")
@ray.remote
def square(x):
    return x * x
print(json.dumps({"cpus": ray.cluster_resources()["CPU"], "square": ray.get(square.remote(7)),
                  "nodes": len([n for n in ray.nodes() if n["Alive"]])}))
ray.shutdown()
"""


def test_driver_with_address_auto_sees_all_nodes(head, joined_node):
    result = run_driver(head.temp_dir, _AUTO_DRIVER)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {"cpus": 3.0, "square": 49, "nodes": 2}
    # The driver's shutdown() left the cluster running.
    assert alive(head.head)
    assert len(active_nodes(head.temp_dir)) == 2


_PLAIN_DRIVER = """
import json, raggio as ray
ray.init()
print(json.dumps({"node_id": ray.get_runtime_context().get_node_id(),
                  "cpus": ray.cluster_resources()["CPU"]}))
ray.shutdown()
"""


def test_plain_init_joins_the_running_cluster(head):
    result = run_driver(head.temp_dir, _PLAIN_DRIVER)
    assert result.returncode == 0, result.stderr
    # The head's node, not a private head of the driver's own.
    assert json.loads(result.stdout.splitlines()[-1]) == {"node_id": head.head_node_id(),
                                                           "cpus": 2.0}
    assert alive(head.head)


_GPU_DRIVER = """
import sys, raggio as ray
ray.init(address="auto")
@ray.remote(num_gpus=1)
def needs_a_gpu():
    return 1
ref = needs_a_gpu.remote()
print("submitted", flush=True)
sys.stdin.read()  # stay connected until the test is done
ray.shutdown()
"""


def test_pending_gpu_demand_is_reported_with_its_reason(head):
    driver = subprocess.Popen([sys.executable, "-c", _GPU_DRIVER], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env_for(head.temp_dir))
    try:
        assert driver.stdout.readline().strip() == "submitted"

        def gpu_demand():
            lines = status(head.temp_dir)["Pending Demands"]
            return [line for line in lines if "GPU" in line] or None

        demands = wait_until(gpu_demand, timeout_s=30, what="a GPU demand in raggio status")
        assert len(demands) == 1, demands
        reason = demands[0].partition("pending tasks/actors (")[2]
        assert "GPU" in reason, demands[0]
        assert "infeasible" in reason, demands[0]
    finally:
        driver.stdin.close()
        driver.wait(timeout=COMMAND_TIMEOUT_S)
    assert driver.returncode == 0, driver.stderr.read()
    driver.stdout.close()
    driver.stderr.close()
    # The demand goes with the driver that made it.
    wait_until(lambda: status(head.temp_dir)["Pending Demands"] == ["(no resource demands)"],
               timeout_s=20, what="the GPU demand to go with its driver")


_LABELS_DRIVER = """
import json, raggio as ray
ray.init(address="auto")
print(json.dumps([node["Labels"] for node in ray.nodes() if node["Alive"]]))
ray.shutdown()
"""


def test_start_with_labels(head, labelled_node):
    result = run_driver(head.temp_dir, _LABELS_DRIVER)
    assert result.returncode == 0, result.stderr
    labels = [node for node in json.loads(result.stdout.splitlines()[-1]) if len(node) > 1]
    node_id = labels[0]["ray.io/node-id"]
    # --labels wins over --labels-file for a key both set; ray.io/node-id is raggio's.
    assert labels == [{"gpu_type": "A100", "region": "eu", "market-type": "spot",
                       "ray.io/node-id": node_id}]


@pytest.mark.parametrize("flag, message", [
    ("--labels=xxx", "Label string is not a key-value pair."),
    ('--labels={"gpu_type":1}', "Label string is not a key-value pair."),
    ('--labels={"ray.io/node-id":"111"}', "Label string is not a key-value pair."),
    ("--labels=-bad=1", "Invalid label key name `-bad`"),
    ("--labels=region=not ok", "Invalid label key value `not ok`"),
])
def test_start_with_bad_labels_fails(head, flag, message):
    before = len(active_nodes(head.temp_dir))
    result = run_cli(head.temp_dir, "start", f"--address={head.address}", flag,
                     "--node-ip-address=127.0.0.1", f"--temp-dir={head.temp_dir}")
    assert result.returncode != 0
    assert message in result.stderr, result.stdout + result.stderr
    assert len(active_nodes(head.temp_dir)) == before


# -- start failures --


def test_join_unreachable_address_fails_naming_it(cli):
    address = f"127.0.0.1:{closed_port()}"
    result = run_cli(cli.temp_dir, "start", f"--address={address}", "--token=x",
                     "--node-ip-address=127.0.0.1", f"--temp-dir={cli.temp_dir}")
    assert result.returncode != 0
    # The join gives up after its short deadline and says so, naming the address.
    assert f"Could not reach {address} after 5 s" in result.stdout + result.stderr


def test_join_with_wrong_token_fails(head):
    before = len(active_nodes(head.temp_dir))
    result = run_cli(head.temp_dir, "start", f"--address={head.address}", "--token=wrong",
                     "--node-ip-address=127.0.0.1", f"--temp-dir={head.temp_dir}")
    assert result.returncode != 0
    assert "token" in (result.stdout + result.stderr).lower(), result.stdout + result.stderr
    assert len(active_nodes(head.temp_dir)) == before


def test_second_head_fails_while_one_runs(head):
    result = run_cli(head.temp_dir, "start", "--head", "--port=0", "--dashboard-port=0",
                     "--node-ip-address=127.0.0.1", f"--temp-dir={head.temp_dir}")
    assert result.returncode != 0
    assert "already running" in result.stderr, result.stdout + result.stderr
    assert len(active_nodes(head.temp_dir)) == 1


def test_start_needs_head_or_address(cli):
    result = run_cli(cli.temp_dir, "start", "--node-ip-address=127.0.0.1",
                     f"--temp-dir={cli.temp_dir}")
    assert result.returncode == 2  # click's usage error
    assert "--head" in result.stderr and "--address" in result.stderr


def test_version(cli):
    result = run_cli(cli.temp_dir, "--version")
    assert result.returncode == 0
    assert raggio.__version__ in result.stdout


# -- stop (last: it ends the module's head; a later test would start another) --


def test_stop_ends_every_process_and_cleans_up(head, joined_node):
    ours = tree(daemons(head.temp_dir, "raggio.head") + daemons(head.temp_dir, "raggio.node.main"))
    assert head.head in ours and len(ours) >= 4  # two daemons, their zygotes, workers
    result = run_cli(head.temp_dir, "stop", f"--temp-dir={head.temp_dir}")
    assert result.returncode == 0, result.stderr
    assert f"raggio.head (pid {head.head.pid})" in result.stdout
    assert "Stopped all" in result.stdout
    assert running(ours) == []
    assert not os.path.exists(cluster_file.path(str(head.temp_dir)))
    assert glob.glob("/dev/shm/raggio-*") == []


def test_stop_with_nothing_running_says_so(cli):
    run_cli(cli.temp_dir, "stop", f"--temp-dir={cli.temp_dir}")
    result = run_cli(cli.temp_dir, "stop", f"--temp-dir={cli.temp_dir}")
    assert result.returncode == 0
    assert "Did not find any active raggio processes" in result.stdout
