"""The dashboard's process, run as a user runs it: started by its head, killed, started again.

A module-scoped head (``raggio start --head --dashboard-port=0``, one CPU, its own
``--temp-dir``) serves most tests; ``init()`` tests start private heads of their own
(their dashboards on 8265 or the next free port, started when first opened, or none).
Requests go over loopback with ``urllib``; the token is read from the session directory,
as a script on the head's machine would. The last test runs ``raggio stop``, which ends every raggio process of
this machine (as ``tests/cli/test_cli.py`` does).
"""

import glob
import json
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import urllib.error
import urllib.request

import psutil
import pytest

import raggio as ray
from raggio import cluster_file
from raggio.cluster_utils import Cluster
from raggio.test_utils import alive, env_for, wait_until

COMMAND_TIMEOUT_S = 60
#: How long a killed dashboard may take to answer again: its restart pause (0.5-1 s) and
#: its start-up (~1 s on a loaded two-core machine), with room to spare.
RESTART_TIMEOUT_S = 30


def run_raggio(temp_dir, *args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "raggio", *args, f"--temp-dir={temp_dir}"],
                          capture_output=True, text=True, env=env or env_for(temp_dir),
                          timeout=COMMAND_TIMEOUT_S)


def get(url: str, token: str | None = None, cookie: str | None = None):
    """(status, JSON body) of a GET."""
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    if cookie is not None:
        request.add_header("Cookie", cookie)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def answers(url: str, token: str) -> bool:
    try:
        return get(f"{url}/api/version", token)[0] == 200
    except OSError:  # refused, reset, or no answer in time while it starts
        return False


def dashboards(session_dir: str) -> list[psutil.Process]:
    """The running dashboard processes of this session."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "raggio.dashboard" in cmdline and session_dir in cmdline and alive(proc):
            found.append(proc)
    return found


def dashboards_under(root: psutil.Process) -> list[psutil.Process]:
    try:
        children = root.children(recursive=True)
    except psutil.Error:
        return []
    return [p for p in children if alive(p) and "raggio.dashboard" in p.cmdline()]


class Head:
    """The module's ``raggio start --head``: its banner, record and token."""

    def __init__(self, temp_dir, result: subprocess.CompletedProcess):
        self.temp_dir = temp_dir
        self.banner = result.stdout
        self.info = cluster_file.read(str(temp_dir))
        self.url = self.info["dashboard_url"]
        self.token = cluster_file.read_token(self.info)
        self.session_dir = self.info["session_dir"]
        self.daemons = [psutil.Process(self.info["pid"])] + [
            p for p in psutil.process_iter(["cmdline"])
            if "raggio.node.main" in (p.info["cmdline"] or [])
            and self.session_dir in (p.info["cmdline"] or [])]


@pytest.fixture(scope="module")
def head(tmp_path_factory, module_daemons):
    temp_dir = tmp_path_factory.mktemp("dashboard")
    result = run_raggio(temp_dir, "start", "--head", "--port=0", "--dashboard-port=0",
                        "--num-cpus=1", f"--object-store-memory={100 * 1024**2}",
                        "--node-ip-address=127.0.0.1")
    assert result.returncode == 0, result.stdout + result.stderr
    state = Head(temp_dir, result)
    module_daemons.extend(state.daemons)
    try:
        yield state
    finally:
        ours = [p for d in state.daemons if alive(d) for p in [d] + d.children(recursive=True)]
        for daemon in state.daemons:
            if alive(daemon):
                daemon.send_signal(signal.SIGTERM)
        wait_until(lambda: not any(alive(p) for p in ours), timeout_s=30,
                   what="the module's head to exit")


# -- raggio start --head --


def test_the_banner_url_answers_with_the_token_and_401_without(head):
    assert f"View the dashboard at {head.url}" in head.banner
    assert head.url.startswith("http://127.0.0.1:")
    assert stat.S_IMODE(os.stat(os.path.join(head.session_dir, "token")).st_mode) == 0o600
    status, body = wait_until(lambda: answers(head.url, head.token)
                              and get(f"{head.url}/api/version", head.token),
                              what="the dashboard to answer")
    assert body["session_name"] == os.path.basename(head.session_dir)
    assert body["version"] and body["raggio_version"] == ray.__version__
    status, body = get(f"{head.url}/api/version")
    assert status == 401
    assert "token" in body["msg"]
    assert get(f"{head.url}/api/version", "not-the-token")[0] == 401


STATE_BY_URL = """
import sys
from raggio.util.state import list_nodes
print(len(list_nodes(address=sys.argv[1])), "node(s)")
"""


def test_the_state_api_and_cli_take_the_dashboards_url_as_ray_s_do(head, tmp_path):
    # On the head's machine: the URL names this machine's cluster, whose token is known.
    listed = subprocess.run([sys.executable, "-m", "raggio", "list", "nodes", "--address",
                             head.url], capture_output=True, text=True,
                            timeout=COMMAND_TIMEOUT_S, env=env_for(head.temp_dir))
    assert listed.returncode == 0, listed.stderr
    assert "127.0.0.1" in listed.stdout
    # From elsewhere (another temp dir: no record of the cluster), with the token given.
    elsewhere = env_for(tmp_path)
    done = subprocess.run([sys.executable, "-c", STATE_BY_URL, head.url], capture_output=True,
                          text=True, timeout=COMMAND_TIMEOUT_S,
                          env=dict(elsewhere, RAGGIO_AUTH_TOKEN=head.token))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1 node(s)"
    # Without it, the error says which token to set.
    refused = subprocess.run([sys.executable, "-c", STATE_BY_URL, head.url],
                             capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
                             env=elsewhere)
    assert refused.returncode != 0 and "RAGGIO_AUTH_TOKEN" in refused.stderr


def test_status_shows_the_dashboard(head):
    result = run_raggio(head.temp_dir, "status")
    assert result.returncode == 0, result.stderr
    assert f"Dashboard: {head.url} " in result.stdout


def test_raggio_dashboard_prints_a_url_that_logs_in(head, tmp_path):
    result = run_raggio(head.temp_dir, "dashboard")
    assert result.returncode == 0, result.stderr
    url = result.stdout.strip()
    assert url == f"{head.url}/login#token={head.token}"
    # What the login page does with the fragment: post it, and browse with the cookie.
    wait_until(lambda: answers(head.url, head.token), what="the dashboard to answer")
    request = urllib.request.Request(f"{head.url}/login", method="POST",
                                     data=json.dumps({"token": head.token}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        cookie = response.headers["Set-Cookie"].split(";")[0]
    assert head.token not in cookie  # the cookie is not the token
    assert get(f"{head.url}/api/version", cookie=cookie)[0] == 200

    # --open hands the same URL to the browser ($BROWSER, as Python's webbrowser reads it).
    opened = tmp_path / "opened"
    browser = tmp_path / "browser"
    browser.write_text(f'#!/bin/sh\nprintf %s "$1" > {opened}\n')
    browser.chmod(0o755)
    result = run_raggio(head.temp_dir, "dashboard", "--open",
                        env=dict(env_for(head.temp_dir), BROWSER=str(browser)))
    assert result.returncode == 0, result.stderr
    assert opened.read_text() == url


def test_raggio_dashboard_names_a_missing_cluster_config_file(head):
    # (The cluster-file form forwards a launched cluster's dashboard: tests/launcher.)
    result = run_raggio(head.temp_dir, "dashboard", "cluster.yaml")
    assert result.returncode == 1
    assert "Cannot read the cluster file cluster.yaml" in result.stderr


def test_a_killed_dashboard_comes_back_and_the_cluster_never_notices(head):
    wait_until(lambda: answers(head.url, head.token), what="the dashboard to answer")
    (first,) = dashboards(head.session_dir)
    assert first.parent().pid == head.info["pid"]  # the head's child
    first.kill()
    first.wait(timeout=10)
    driver = subprocess.run(
        [sys.executable, "-c", "import raggio as ray; ray.init(address='auto'); "
         "print(ray.get(ray.remote(lambda: 6 * 7).remote()))"],
        capture_output=True, text=True, env=env_for(head.temp_dir), timeout=COMMAND_TIMEOUT_S)
    assert driver.returncode == 0, driver.stderr
    assert driver.stdout.split()[-1] == "42"
    wait_until(lambda: answers(head.url, head.token), timeout_s=RESTART_TIMEOUT_S,
               what="the dashboard to answer again on the same URL")
    (second,) = dashboards(head.session_dir)
    assert second.pid != first.pid
    log = os.path.join(head.session_dir, "logs", "dashboard.log")
    assert os.path.getsize(log) > 0


def test_a_dashboard_port_in_use_fails_start_at_once_naming_the_flag(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_raggio(tmp_path, "start", "--head", "--port=0", f"--dashboard-port={port}",
                            "--num-cpus=1", "--node-ip-address=127.0.0.1")
    assert result.returncode != 0
    # The head's own reason, not the start timeout's "no ready line": it failed before serving.
    assert f"port {port}" in result.stderr and "--dashboard-port" in result.stderr, (
        result.stderr)
    assert cluster_file.read(str(tmp_path)) is None
    leftovers = [p for p in psutil.process_iter(["cmdline"])
                 if str(tmp_path) in " ".join(p.info["cmdline"] or []) and alive(p)]
    assert leftovers == []


# -- init() --


def test_init_starts_a_dashboard_at_ctx_dashboard_url_when_opened(shutdown_only, tmp_path):
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("raggio.core.api")
    logger.addHandler(handler)
    try:
        ctx = ray.init(num_cpus=1, _temp_dir=str(tmp_path))
    finally:
        logger.removeHandler(handler)
    assert ctx.dashboard_url == ctx["webui_url"] == ctx.address_info["webui_url"]
    url = f"http://{ctx.dashboard_url}"
    assert f"Started a local raggio instance. View the dashboard at {url}" in messages
    assert cluster_file.read(str(tmp_path))["dashboard_url"] == url
    token = open(os.path.join(ctx["session_dir"], "token")).read().strip()
    assert ray.get(ray.remote(lambda: 1).remote()) == 1
    # The private head holds the port; the process starts when someone opens the URL.
    assert dashboards(ctx["session_dir"]) == []
    wait_until(lambda: answers(url, token), what="init()'s dashboard to answer")
    assert len(dashboards(ctx["session_dir"])) == 1
    assert get(f"{url}/api/version")[0] == 401
    # A second driver that joins the cluster learns the URL from the cluster's record.
    joined = subprocess.run(
        [sys.executable, "-c", "import raggio as ray; print(ray.init().dashboard_url)"],
        capture_output=True, text=True, env=env_for(tmp_path), timeout=COMMAND_TIMEOUT_S)
    assert joined.returncode == 0, joined.stderr
    assert joined.stdout.split()[-1] == ctx.dashboard_url
    assert f"Connected to raggio cluster. View the dashboard at {url}" in joined.stderr


def test_init_without_dashboard_starts_none(shutdown_only, tmp_path):
    ctx = ray.init(num_cpus=1, include_dashboard=False, _temp_dir=str(tmp_path))
    assert ctx.dashboard_url is None and ctx["webui_url"] is None
    assert ray.get(ray.remote(lambda: 1).remote()) == 1
    assert "dashboard_url" not in cluster_file.read(str(tmp_path))
    result = run_raggio(tmp_path, "dashboard")
    assert result.returncode == 1
    assert "runs no dashboard" in result.stderr


def test_init_with_a_dashboard_port_in_use_fails_naming_it(shutdown_only):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ray.exceptions.RaySystemError, match="did not start") as raised:
            ray.init(num_cpus=1, dashboard_port=port)
    # The exception itself says why, wherever the head's stderr went.
    assert f"port {port}" in str(raised.value) and "dashboard_port" in str(raised.value)
    assert not ray.is_initialized()


KILLED_HEAD_DRIVER = """
import os, sys, urllib.request, raggio as ray
from raggio.core import api
ctx = ray.init(num_cpus=1, dashboard_port=0)
token = open(os.path.join(ctx["session_dir"], "token")).read()
request = urllib.request.Request(f"http://{ctx.dashboard_url}/api/version",
                                 headers={"Authorization": f"Bearer {token}"})
urllib.request.urlopen(request, timeout=30).read()  # starts the dashboard (on demand)
print(api._head.pid, os.path.basename(ctx["session_dir"]), flush=True)
sys.stdin.read()
"""


def test_a_killed_head_takes_its_dashboard_with_it(tmp_path):
    driver = subprocess.Popen([sys.executable, "-c", KILLED_HEAD_DRIVER],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env=env_for(tmp_path))
    pid, session_name = driver.stdout.readline().split()
    try:
        head = psutil.Process(int(pid))
        (dashboard,) = dashboards_under(head)
        head.kill()
        wait_until(lambda: not alive(dashboard), timeout_s=10,
                   what="the dashboard to die with its head")
    finally:
        driver.kill()
        driver.wait()
        driver.stdout.close()
        driver.stdin.close()
        # A killed head leaves its node's arena behind (`raggio stop` would remove it).
        for arena in glob.glob(f"/dev/shm/raggio-{session_name}-*"):
            os.unlink(arena)


# -- cluster_utils.Cluster --


def test_a_cluster_head_runs_a_dashboard_only_when_asked(shutdown_only):
    with Cluster(initialize_head=True, head_node_args={"num_cpus": 1}) as plain:
        assert plain.webui_url is None
    with Cluster(initialize_head=True, head_node_args={
            "num_cpus": 1, "include_dashboard": True, "dashboard_port": 0}) as cluster:
        assert cluster.webui_url.startswith("127.0.0.1:")
        # A driver joining by address learns the URL from the cluster's control store.
        ctx = ray.init(address=cluster.address)
        assert ctx.dashboard_url == cluster.webui_url
        token = open(os.path.join(cluster.head_node.session_dir, "token")).read().strip()
        wait_until(lambda: answers(f"http://{cluster.webui_url}", token),
                   what="the cluster's dashboard to answer")
        ray.shutdown()


# -- raggio stop (last: it ends the module's head) --


def test_raggio_stop_leaves_no_dashboard(head):
    wait_until(lambda: dashboards(head.session_dir), what="the dashboard to run")
    (dashboard,) = dashboards(head.session_dir)
    result = run_raggio(head.temp_dir, "stop")
    assert result.returncode == 0, result.stderr
    assert not alive(dashboard)
    assert dashboards(head.session_dir) == []
