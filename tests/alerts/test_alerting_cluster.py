"""Alerts from a real cluster, as a user runs one: ``raggio start --head --alerting-config``.

The module's head (its control store, head node and dashboard, which runs the
alerts) posts to a local receiver (``conftest.py``); tests join nodes with
``raggio start --address`` and kill them, run drivers whose actors die, report
an autoscaler launch failure through the control store's KV as the autoscaler
will, run ``raggio alerts test``, and last kill the control store and start it
again. Every process is stopped by its pid at the end (never ``raggio stop``,
which would end every cluster on the machine).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import psutil
import pytest
import yaml

from raggio import cluster_file
from raggio.common import launch_failures
from raggio.core import one_shot
from raggio.job_submission import JobSubmissionClient
from raggio.test_utils import alive, daemons, env_for, free_port, run_cli, wait_until

TIMEOUT_S = 120


def write_config(path, receiver, **extra) -> str:
    section = {"slack_webhook": receiver.url + "/slack", "webhook_url": receiver.url + "/webhook",
               "check_period_s": 0.2, "stats_period_s": 0.5,
               "delivery": {"backoff_s": 0.1, "timeout_s": 5}, **extra}
    # A cluster file, as `raggio up` will have it: its name goes into every alert.
    path.write_text(yaml.safe_dump({"cluster_name": "alerts-test", "alerting": section}))
    return str(path)


class Head:
    """The module's cluster: ``raggio start --head`` with an alerting config."""

    def __init__(self, temp_dir, config_path: str, port: int):
        self.temp_dir = temp_dir
        self.config_path = config_path
        self.port = port
        self.start()

    def start(self) -> None:
        result = run_cli(self.temp_dir, "start", "--head", f"--port={self.port}",
                         "--dashboard-port=0", "--num-cpus=1", "--node-ip-address=127.0.0.1",
                         f"--object-store-memory={100 * 1024**2}", f"--temp-dir={self.temp_dir}",
                         f"--alerting-config={self.config_path}")
        assert result.returncode == 0, result.stdout + result.stderr
        self.info = cluster_file.read(str(self.temp_dir))
        self.address = self.info["gcs_address"]
        self.token = cluster_file.read_token(self.info)

    def env(self) -> dict:
        return dict(env_for(self.temp_dir), RAGGIO_AUTH_TOKEN=self.token)

    def join_node(self) -> psutil.Process:
        """A node joined with ``raggio start --address``; its node manager's process."""
        before = {p.pid for p in daemons(self.temp_dir, "raggio.node.main")}
        result = run_cli(self.temp_dir, "start", f"--address={self.address}",
                         "--num-cpus=1", f"--object-store-memory={80 * 1024**2}",
                         "--node-ip-address=127.0.0.1", f"--temp-dir={self.temp_dir}",
                         env=self.env())
        assert result.returncode == 0, result.stdout + result.stderr
        (node,) = [p for p in daemons(self.temp_dir, "raggio.node.main") if p.pid not in before]
        return node

    def dashboard_log(self) -> str:
        with open(os.path.join(self.info["session_dir"], "logs", "dashboard.log")) as f:
            return f.read()

    def stop(self) -> None:
        procs = daemons(self.temp_dir, "raggio.head") + daemons(self.temp_dir,
                                                                "raggio.node.main")
        family = [p for d in procs if alive(d) for p in [d] + d.children(recursive=True)]
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        wait_until(lambda: not any(alive(p) for p in family), timeout_s=30,
                   what="the module's cluster to exit")


@pytest.fixture(scope="module")
def head(tmp_path_factory, module_receiver, module_daemons):
    temp_dir = tmp_path_factory.mktemp("alerts")
    config = write_config(temp_dir / "cluster.yaml", module_receiver)
    state = Head(temp_dir, config, free_port())
    module_daemons.extend(daemons(temp_dir, "raggio.head") + daemons(temp_dir,
                                                                     "raggio.node.main"))
    try:
        yield state
    finally:
        state.stop()


def node_record(head, node_id: bytes) -> dict:
    cluster = {"gcs_address": head.address, "token": head.token}
    (nodes,) = one_shot.query(cluster, [("get_nodes", None)])
    return next(node for node in nodes if node["node_id"] == node_id)


def test_a_killed_node_sends_one_slack_and_one_generic_alert(head, module_receiver):
    node = head.join_node()
    cluster = {"gcs_address": head.address, "token": head.token}
    (joined,) = [n for n in one_shot.query(cluster, [("get_nodes", None)])[0]
                 if n["state"] == "ALIVE" and not n["is_head"]]
    node_hex = joined["node_id"].hex()
    family = [node] + node.children(recursive=True)
    node.send_signal(signal.SIGKILL)
    wait_until(lambda: not any(alive(p) for p in family), what="the killed node to exit")
    if os.path.exists(joined["arena_path"]):  # a killed node leaves its arena behind
        os.remove(joined["arena_path"])
    wait_until(lambda: node_record(head, joined["node_id"])["state"] == "DEAD",
               what="the control store to see the node dead")

    try:
        generic = module_receiver.wait_for(
            "webhook", lambda body: body["name"] == "node_died" and body["node"] == node_hex)
    except AssertionError as exc:  # say what the alert manager saw
        raise AssertionError(f"{exc}; the dashboard's log:\n{head.dashboard_log()[-3000:]}")
    assert generic["severity"] == "critical"
    assert generic["cluster"] == "alerts-test"
    assert generic["details"]["node_ip"] == "127.0.0.1"
    assert "died" in generic["message"] and node_hex[:8] in generic["message"]
    assert set(generic) == {"name", "severity", "message", "cluster", "node", "time",
                            "details"}
    slack = module_receiver.wait_for("slack", lambda body: node_hex[:8] in body["text"])
    assert "alerts-test" in slack["text"] and "CRITICAL" in slack["text"]
    assert [block["type"] for block in slack["blocks"]] == ["header", "section", "context"]

    # One alert per webhook for one death, however many looks came after it: another node
    # joins (the node table changes again) and its own alert-free life is looked at.
    later = head.join_node()
    wait_until(lambda: len(daemons(head.temp_dir, "raggio.node.main")) >= 2)
    family = [later] + later.children(recursive=True)
    later.send_signal(signal.SIGTERM)
    wait_until(lambda: not any(alive(p) for p in family), what="the second node to exit")
    module_receiver.wait_for("webhook", lambda body: body["name"] == "node_died"
                             and body["node"] != node_hex, what="the second node's alert")
    for path in ("webhook", "slack"):
        about_first = module_receiver.received(
            path, lambda body: node_hex[:8] in (body.get("text") or body.get("message")))
        assert len(about_first) == 1, about_first


CRASHING_ACTOR = textwrap.dedent("""
    import os
    import raggio as ray
    ray.init(address="auto")

    @ray.remote(max_restarts=0)
    class Crasher:
        def crash(self):
            os._exit(3)

    @ray.remote
    class Killed:
        def ping(self):
            return "pong"

    killed = Killed.remote()
    ray.get(killed.ping.remote())
    ray.kill(killed)  # on purpose: no alert
    crasher = Crasher.remote()
    try:
        ray.get(crasher.crash.remote())
    except ray.exceptions.RayActorError:
        print("crashed")
""")


def test_an_actor_that_dies_for_good_alerts_and_a_killed_one_does_not(head, module_receiver):
    result = subprocess.run([sys.executable, "-c", CRASHING_ACTOR], capture_output=True,
                            text=True, env=head.env(), timeout=TIMEOUT_S)
    assert result.stdout.strip() == "crashed", result.stderr
    alert = module_receiver.wait_for("webhook", lambda body: body["name"] == "actor_died")
    assert alert["details"]["class_name"] == "Crasher"
    assert "exit code 3" in alert["message"], alert["message"]
    assert alert["severity"] == "error"
    assert not module_receiver.received(
        "webhook", lambda body: body["details"].get("class_name") == "Killed")


def test_a_submitted_job_that_fails_alerts(head, module_receiver):
    client = JobSubmissionClient(head.info["dashboard_url"],
                                 headers={"Authorization": f"Bearer {head.token}"})
    job = client.submit_job(entrypoint="python -c 'import sys; print(\"oops\"); sys.exit(3)'")
    alert = module_receiver.wait_for(
        "webhook", lambda body: body["name"] == "job_failed"
        and body["details"]["submission_id"] == job)
    assert "exit code 3" in alert["message"] and "oops" in alert["details"]["message"]
    assert alert["severity"] == "error"


FAILING_TASKS = textwrap.dedent("""
    import raggio as ray
    ray.init(address="auto")

    @ray.remote(max_retries=0)
    def fail():
        raise ValueError("boom")

    @ray.remote
    def succeed():
        return 1

    refs = [fail.remote() for _ in range(10)] + [succeed.remote() for _ in range(5)]
    ray.wait(refs, num_returns=len(refs))
    print("done")
""")


def test_a_high_task_failure_rate_alerts(head, module_receiver):
    result = subprocess.run([sys.executable, "-c", FAILING_TASKS], capture_output=True,
                            text=True, env=head.env(), timeout=TIMEOUT_S)
    assert result.stdout.strip() == "done", result.stderr
    alert = module_receiver.wait_for("webhook", lambda body: body["name"] == "task_failure_rate")
    # The rate counts every attempt that ended lately (the earlier tests' actor tasks too),
    # from the first look that finds ten.
    details = alert["details"]
    assert details["ended"] >= 10 and details["failed"] / details["ended"] > 0.2
    assert "fail" in [example["name"] for example in details["examples"]]


FILLING_THE_STORE = textwrap.dedent("""
    import sys
    import numpy as np
    import raggio as ray
    ray.init(address="auto")
    # The head node's store holds 100 MiB: four fill 92% of it, the fifth spills one.
    refs = [ray.put(np.zeros(23 * 2**20, dtype=np.uint8)) for _ in range(5)]
    print("filled", flush=True)
    sys.stdin.readline()
""")


def test_a_full_and_spilling_object_store_alerts(head, module_receiver):
    driver = subprocess.Popen([sys.executable, "-c", FILLING_THE_STORE], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=head.env())
    try:
        assert driver.stdout.readline().strip() == "filled"
        full = module_receiver.wait_for("webhook",
                                        lambda body: body["name"] == "object_store_full")
        spilling = module_receiver.wait_for(
            "webhook", lambda body: body["name"] == "object_store_spilling")
    finally:
        driver.stdin.close()
        driver.wait(TIMEOUT_S)
        driver.stdout.close()
    assert full["details"]["used_bytes"] >= 0.9 * full["details"]["capacity_bytes"]
    assert spilling["details"]["spilled_bytes"] >= 23 * 2**20
    assert full["node"] == spilling["node"]


def report_launch_failure(head, receiver, node_type: str) -> dict:
    """Report a failed launch as the autoscaler does (rewriting its record in the control
    store's KV); the alert it brings."""
    cluster = {"gcs_address": head.address, "token": head.token}
    (value,) = one_shot.query(cluster, [("kv_get", launch_failures.LAUNCH_FAILURES_KEY)])
    value = launch_failures.with_failure(value, node_type, 2, "quota exceeded")
    one_shot.query(cluster, [("kv_put", [launch_failures.LAUNCH_FAILURES_KEY, value, True])])
    return receiver.wait_for(
        "webhook", lambda body: body["name"] == "autoscaler_launch_failed"
        and body["details"]["node_type"] == node_type)


def test_an_autoscaler_launch_failure_alerts(head, module_receiver):
    alert = report_launch_failure(head, module_receiver, "gpu-worker")
    assert alert["details"] == {"node_type": "gpu-worker", "count": 2,
                                "error": "quota exceeded"}
    assert "2 node(s) of type gpu-worker" in alert["message"]


def test_raggio_alerts_test_posts_to_every_webhook_and_says_so(head, module_receiver):
    result = run_cli(head.temp_dir, "alerts", "test", f"--address={head.address}",
                     env=head.env())
    assert result.returncode == 0, result.stdout + result.stderr
    host = module_receiver.url.removeprefix("http://")
    assert f"slack ({host}): delivered (HTTP 200)" in result.stdout
    assert f"webhook ({host}): delivered (HTTP 200)" in result.stdout
    assert module_receiver.received("webhook", lambda body: body["name"] == "test")
    assert module_receiver.received("slack", lambda body: "test alert" in body["text"])


def test_raggio_alerts_test_says_which_webhook_failed(head, module_receiver, tmp_path):
    config = tmp_path / "alerting.yaml"
    config.write_text(yaml.safe_dump({
        "webhook_url": module_receiver.url + "/refuse",
        "slack_webhook": module_receiver.url + "/slack"}))
    result = run_cli(head.temp_dir, "alerts", "test", f"--alerting-config={config}")
    assert result.returncode == 1
    assert "webhook (" in result.stdout and "not delivered: HTTP 403" in result.stdout
    assert "slack (" in result.stdout and "delivered (HTTP 200)" in result.stdout


# -- last: the control store restarts --


def test_a_restarted_head_sends_head_restarted(head, module_receiver, module_daemons):
    (control_store,) = daemons(head.temp_dir, "raggio.head")
    family = [control_store] + control_store.children(recursive=True)
    control_store.send_signal(signal.SIGKILL)
    wait_until(lambda: not any(alive(p) for p in family), what="the killed head to exit")
    assert not module_receiver.received("webhook", lambda b: b["name"] == "head_restarted")
    head.start()
    module_daemons.extend(daemons(head.temp_dir, "raggio.head")
                          + daemons(head.temp_dir, "raggio.node.main"))
    alert = module_receiver.wait_for("webhook", lambda body: body["name"] == "head_restarted")
    assert alert["severity"] == "warning"
    assert alert["details"]["previous_epoch"] != alert["details"]["epoch"]
    # The restarted head's alerts go on: a launch failure after it is sent, and by then the
    # first look of the new dashboard is done. What still held before it (the failure
    # rate) is not sent again; nor is an event from before it.
    report_launch_failure(head, module_receiver, "after-restart")
    names = [body["name"] for body in module_receiver.received("webhook")]
    assert names.count("task_failure_rate") == 1, names
    assert names.count("autoscaler_launch_failed") == 2, names
    assert names.count("actor_died") == 1, names
    # The head node lived through it: no alert says it died.
    assert not module_receiver.received(
        "webhook", lambda body: body["name"] == "node_died" and body["details"]["is_head"])
