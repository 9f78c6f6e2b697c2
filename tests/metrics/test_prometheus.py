"""A real Prometheus (Debian's ``prometheus``) scraping a raggio cluster, as a user runs it.

The cluster is started with ``raggio start --head`` and ``raggio start
--address`` in a temp dir of this module's own; Prometheus with ``raggio
metrics launch-prometheus``, and it finds the nodes through the control
store's service discovery file. The values are read back from Prometheus's own
HTTP API (``/api/v1/query``, ``/api/v1/targets``). Prometheus scrapes every
5 s, so the waits are generous. Daemons are stopped by pid (never ``raggio
stop``, which would end every raggio process of the machine).
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.parse
import urllib.request

import psutil
import pytest

from raggio import cluster_file
from raggio.core import one_shot
from raggio.common.prometheus_files import service_discovery_path
from raggio.monitoring import grafana, prometheus
from raggio.test_utils import alive, daemons, env_for, free_port, run_cli, wait_until

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None,
                                reason="needs Prometheus (apt-get install prometheus)")

COMMAND_TIMEOUT_S = 60
#: Prometheus scrapes every 5 s and reads a changed service discovery file at once; a
#: loaded 2-core machine gets several rounds.
SCRAPE_WAIT_S = 60
STORE_BYTES = 100 * 1024**2


def terminate(procs: list[psutil.Process]) -> None:
    """SIGTERM these processes and wait until they and what ran under them have exited."""
    tree = []
    for proc in procs:
        try:
            tree += [proc] + proc.children(recursive=True)
            proc.send_signal(signal.SIGTERM)
        except psutil.Error:
            pass
    wait_until(lambda: not any(alive(p) for p in tree), timeout_s=30,
               what=f"processes {[p.pid for p in tree if alive(p)]} to exit")


class Head:
    """A head started with ``raggio start --head`` in its own temp dir."""

    def __init__(self, temp_dir):
        self.temp_dir = temp_dir
        self.session_dir = ""

    def start(self, *flags, port: int = 0) -> subprocess.CompletedProcess:
        result = run_cli(self.temp_dir, "start", "--head", f"--port={port}",
                         "--include-dashboard=false", "--num-cpus=1",
                         f"--object-store-memory={STORE_BYTES}",
                         "--node-ip-address=127.0.0.1", f"--temp-dir={self.temp_dir}",
                         *flags)
        info = cluster_file.read(str(self.temp_dir))
        if result.returncode == 0:
            self.session_dir = info["session_dir"]
        return result

    def join(self) -> psutil.Process:
        """A one-CPU node joined with ``raggio start --address``; its node manager."""
        before = {p.pid for p in daemons(self.temp_dir)}
        address = cluster_file.read(str(self.temp_dir))["gcs_address"]
        result = run_cli(self.temp_dir, "start", f"--address={address}", "--num-cpus=1",
                         f"--object-store-memory={STORE_BYTES}",
                         "--node-ip-address=127.0.0.1", f"--temp-dir={self.temp_dir}")
        new = [p for p in daemons(self.temp_dir) if p.pid not in before]
        assert result.returncode == 0 and len(new) == 1, (result.stdout + result.stderr, new)
        return new[0]

    def nodes(self) -> list[dict]:
        cluster = one_shot.find(None, str(self.temp_dir))
        (nodes,) = one_shot.query(cluster, [("get_nodes", None)])
        return [node for node in nodes if node["state"] == "ALIVE"]

    def stop(self) -> None:
        terminate(daemons(self.temp_dir))

    def launch_prometheus(self, *flags) -> subprocess.CompletedProcess:
        return run_cli(self.temp_dir, "metrics", "launch-prometheus",
                       f"--temp-dir={self.temp_dir}", *flags)

    def shutdown_prometheus(self) -> subprocess.CompletedProcess:
        return run_cli(self.temp_dir, "metrics", "shutdown-prometheus",
                       f"--temp-dir={self.temp_dir}")


@pytest.fixture(scope="module")
def head(tmp_path_factory, module_daemons):
    """A one-CPU head shared by this module's tests."""
    head = Head(tmp_path_factory.mktemp("prometheus"))
    result = head.start()
    module_daemons.extend(daemons(head.temp_dir))
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        yield head
    finally:
        head.stop()


def sd_targets(session_dir) -> list[str]:
    with open(service_discovery_path(session_dir)) as f:
        (group,) = json.load(f)
    assert group["labels"] == {"job": "ray"}
    return group["targets"]


def query(url: str, promql: str) -> list[dict]:
    """Prometheus's answer to an instant query: [{"metric": {labels}, "value": [t, "v"]}]."""
    with urllib.request.urlopen(f"{url}/api/v1/query?query={urllib.parse.quote(promql)}",
                                timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]


def is_ready(url: str) -> bool:
    """Whether Prometheus at ``url`` answers ``/-/ready`` (a launched one replays its log
    first, and a head launches it in the background)."""
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=10) as response:
            return response.status == 200
    except OSError:  # not listening yet, or 503 while it starts
        return False


def active_targets(url: str) -> dict[str, str]:
    """Each target Prometheus scrapes now, and its health ("up", "down", "unknown")."""
    with urllib.request.urlopen(f"{url}/api/v1/targets?state=active", timeout=10) as response:
        body = json.load(response)
    return {target["labels"]["instance"]: target["health"]
            for target in body["data"]["activeTargets"]}


def exported_names(url: str) -> set[str]:
    with urllib.request.urlopen(f"{url}/api/v1/label/__name__/values", timeout=10) as response:
        return set(json.load(response)["data"])


#: A driver that leaves a finished task and a live actor behind (so that the head exports
#: ``ray_tasks`` and ``ray_actors`` series) until its stdin closes.
TASK_AND_ACTOR = """
import sys
import raggio as ray
ray.init()
@ray.remote
def one():
    return 1
@ray.remote
class Actor:
    def ping(self):
        return 1
actor = Actor.remote()
assert ray.get([one.remote(), actor.ping.remote()]) == [1, 1]
print("ready", flush=True)
sys.stdin.read()
"""


def prometheus_of(session_dir) -> psutil.Process:
    record = prometheus.running(session_dir)
    assert record is not None, "no Prometheus recorded in the session"
    return psutil.Process(record.pid)


# -- a real Prometheus scraping a multi-node cluster --


def test_prometheus_scrapes_every_node_through_service_discovery(head):
    joined = head.join()
    try:
        nodes = head.nodes()
        assert len(nodes) == 2
        expected = sorted(f"127.0.0.1:{node['metrics_export_port']}" for node in nodes)
        wait_until(lambda: sd_targets(head.session_dir) == expected, timeout_s=10,
                   what=f"the service discovery file to list {expected}")

        port = free_port()
        result = head.launch_prometheus(f"--port={port}")
        assert result.returncode == 0, result.stdout + result.stderr
        url = f"http://127.0.0.1:{port}"
        assert url in result.stdout and "raggio metrics shutdown-prometheus" in result.stdout
        server = prometheus_of(head.session_dir)

        # Every node answered Prometheus's scrape, with the token (a 401 would be up == 0).
        wait_until(lambda: sorted((s["metric"]["instance"], s["value"][1])
                                  for s in query(url, 'up{job="ray"}'))
                   == [(target, "1") for target in expected],
                   timeout_s=SCRAPE_WAIT_S, what=f"Prometheus to scrape {expected}")
        cpus = wait_until(lambda: len(series := query(url, "ray_node_cpu_count")) == 2
                          and series, timeout_s=SCRAPE_WAIT_S,
                          what="ray_node_cpu_count from both nodes")
        assert sorted(s["metric"]["instance"] for s in cpus) == expected
        assert {s["metric"]["NodeId"] for s in cpus} == {n["node_id"].hex() for n in nodes}
        assert all(float(s["value"][1]) >= 1 for s in cpus)

        # Every family the Grafana dashboard charts is one the cluster exports.
        charted = {name for panel in grafana.PANELS for expr, _ in panel.targets
                   for name in re.findall(r"\b(ray_\w+)\{", expr)}
        with subprocess.Popen([sys.executable, "-c", TASK_AND_ACTOR], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True,
                              env=env_for(head.temp_dir)) as driver:
            assert driver.stdout.readline() == "ready\n"
            wait_until(lambda: charted <= exported_names(url), timeout_s=SCRAPE_WAIT_S,
                       what=f"Prometheus to have {sorted(charted - exported_names(url))}")
            driver.stdin.close()

        # A node that leaves the cluster leaves the file, and Prometheus stops scraping it.
        terminate([joined])
        (head_target,) = [f"127.0.0.1:{n['metrics_export_port']}" for n in head.nodes()]
        wait_until(lambda: sd_targets(head.session_dir) == [head_target], timeout_s=30,
                   what="the service discovery file to drop the stopped node")
        wait_until(lambda: list(active_targets(url)) == [head_target],
                   timeout_s=SCRAPE_WAIT_S, what="Prometheus to drop the stopped node")
    finally:
        if alive(joined):
            terminate([joined])
        result = head.shutdown_prometheus()
    assert result.returncode == 0 and f"Stopped Prometheus (pid {server.pid}" in result.stdout, \
        result.stdout + result.stderr
    assert not alive(server)
    assert prometheus.running(head.session_dir) is None


def test_grafana_dashboard_and_provisioning_are_in_the_session(head):
    root = os.path.join(head.session_dir, "metrics", "grafana")
    with open(os.path.join(root, "dashboards", "default_grafana_dashboard.json")) as f:
        dashboard = json.load(f)
    assert dashboard["uid"] == "rayDefaultDashboard"
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(dashboard["panels"]) == len(grafana.PANELS)
    assert any("ray_node_cpu_utilization" in expr for expr in exprs)
    assert all("$F" not in expr and 'instance=~"$Instance"' in expr for expr in exprs)
    with open(os.path.join(root, "provisioning", "datasources", "default.yml")) as f:
        assert 'url: "http://127.0.0.1:9090"' in f.read()
    with open(os.path.join(root, "provisioning", "dashboards", "default.yml")) as f:
        assert os.path.join(root, "dashboards") in f.read()


# -- errors --


def test_launch_without_prometheus_installed_names_the_package(head):
    env = dict(env_for(head.temp_dir), PATH=os.path.dirname(sys.executable))
    result = run_cli(head.temp_dir, "metrics", "launch-prometheus", "--port=0",
                     f"--temp-dir={head.temp_dir}", env=env)
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Prometheus is not installed" in result.stderr
    assert "apt-get install prometheus" in result.stderr
    assert prometheus.running(head.session_dir) is None


def test_launch_on_a_port_in_use_names_the_flag(head):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = head.launch_prometheus(f"--port={port}")
    assert result.returncode != 0, result.stdout + result.stderr
    assert f"Prometheus cannot listen on 127.0.0.1:{port}: the port is in use" in result.stderr
    assert "Choose a free one with --port=PORT" in result.stderr
    assert prometheus.running(head.session_dir) is None


def test_a_second_launch_and_a_second_shutdown(head):
    first = head.launch_prometheus("--port=0")
    assert first.returncode == 0, first.stdout + first.stderr
    server = prometheus_of(head.session_dir)
    try:
        second = head.launch_prometheus("--port=0")
        assert second.returncode != 0
        assert "Prometheus already runs for this session" in second.stderr
        assert f"(pid {server.pid})" in second.stderr
    finally:
        assert head.shutdown_prometheus().returncode == 0
    assert not alive(server)
    again = head.shutdown_prometheus()
    assert again.returncode == 0
    assert "No Prometheus started by raggio runs for the current cluster" in again.stdout


def test_raggio_stop_ends_the_clusters_prometheus_too(tmp_path):
    head = Head(tmp_path / "temp")
    try:
        started = head.start()
        assert started.returncode == 0, started.stdout + started.stderr
        launched = head.launch_prometheus("--port=0")
        assert launched.returncode == 0, launched.stdout + launched.stderr
        server = prometheus_of(head.session_dir)
        stopped = run_cli(head.temp_dir, "stop", f"--temp-dir={head.temp_dir}")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert f"Stopped Prometheus (pid {server.pid})" in stopped.stdout
        assert not alive(server)
    finally:
        head.stop()


def test_launch_with_no_cluster_says_how_to_start_one(tmp_path):
    result = run_cli(tmp_path, "metrics", "launch-prometheus", f"--temp-dir={tmp_path}")
    assert result.returncode != 0, result.stdout + result.stderr
    assert "No raggio cluster runs on this machine" in result.stderr
    assert "raggio start --head" in result.stderr


def test_a_restarted_control_store_lists_the_nodes_that_rode_out_its_restart(tmp_path):
    head = Head(tmp_path / "temp")
    port = free_port()
    try:
        assert head.start(port=port).returncode == 0
        head.join()
        before = {f"127.0.0.1:{node['metrics_export_port']}" for node in head.nodes()}
        control_store = psutil.Process(cluster_file.read(str(head.temp_dir))["pid"])
        control_store.kill()
        wait_until(lambda: not alive(control_store), what="the control store to die")
        # A new head on the same port (a new session) recovers the node table; the nodes
        # (the first head node and the joined one) reconnect, and its file lists them.
        result = head.start(port=port)
        assert result.returncode == 0, result.stdout + result.stderr
        wait_until(lambda: before <= set(sd_targets(head.session_dir)), timeout_s=30,
                   what=f"the restarted control store's file to list {before}")
        # Stopped only once they are back: a control store stopped while nodes re-register
        # can hang in its close (its placement-group loop's wait_for swallows the cancel).
        wait_until(lambda: before <= {f"127.0.0.1:{node['metrics_export_port']}"
                                      for node in head.nodes()},
                   timeout_s=30, what="the nodes to re-register")
        assert before <= set(sd_targets(head.session_dir))
    finally:
        head.stop()


# -- monitoring_config on the head --


def test_monitoring_config_runs_prometheus_for_the_head_s_life(tmp_path):
    port = free_port()
    config = tmp_path / "cluster.yaml"
    config.write_text("cluster_name: metrics\nmonitoring_config:\n"
                      f"  prometheus:\n    enabled: true\n    port: {port}\n")
    head = Head(tmp_path / "temp")
    try:
        result = head.start(f"--monitoring-config={config}")
        assert result.returncode == 0, result.stdout + result.stderr
        url = f"http://127.0.0.1:{port}"
        server = wait_until(lambda: prometheus.running(head.session_dir), timeout_s=30,
                            what="the head to launch Prometheus")
        assert server.url == url
        # Its pid file is written before it listens: the head does not wait for it.
        wait_until(lambda: is_ready(url), timeout_s=30, what=f"Prometheus at {url} to be ready")
        (node,) = head.nodes()
        target = f"127.0.0.1:{node['metrics_export_port']}"
        wait_until(lambda: [(s["metric"]["instance"], s["value"][1])
                            for s in query(url, 'up{job="ray"}')] == [(target, "1")],
                   timeout_s=SCRAPE_WAIT_S, what="Prometheus to scrape the head node")
        with open(os.path.join(head.session_dir, "metrics", "grafana", "provisioning",
                               "datasources", "default.yml")) as f:
            assert f'url: "{url}"' in f.read()
        process = psutil.Process(server.pid)
    finally:
        head.stop()
    # The head stopped the Prometheus it started.
    wait_until(lambda: not alive(process), timeout_s=10, what="Prometheus to exit")
    assert prometheus.running(head.session_dir) is None


def test_a_bad_monitoring_config_fails_the_start(tmp_path):
    config = tmp_path / "cluster.yaml"
    config.write_text("monitoring_config:\n  prometheus:\n    enabled: yes please\n")
    head = Head(tmp_path / "temp")
    try:
        result = head.start(f"--monitoring-config={config}")
    finally:
        head.stop()
    assert result.returncode != 0, result.stdout + result.stderr
    assert ("`monitoring_config.prometheus.enabled` is 'yes please': it must be true or false"
            in result.stderr), result.stderr


def test_a_taken_monitoring_config_port_fails_the_start(tmp_path):
    config = tmp_path / "cluster.yaml"
    head = Head(tmp_path / "temp")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config.write_text(f"prometheus: {{enabled: true, port: {port}}}\n")
        try:
            result = head.start(f"--monitoring-config={config}")
        finally:
            head.stop()
    assert result.returncode != 0, result.stdout + result.stderr
    assert f"Prometheus cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Choose a free one with `monitoring_config: {prometheus: {port: PORT}}`" in \
        result.stderr
