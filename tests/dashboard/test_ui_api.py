"""The web UI's own HTTP views (``/api/ui/...``) and its live stream, over HTTP.

Against the module's two-node cluster with its dashboard (``conftest.py``): the
task history a page at a time with counts by state and filters, an actor's page
with its calls, nodes with their usage, the cluster's events, a job's workers'
output (only that job's lines), the event stream's first status and the changes it
announces (an actor created and killed, a node joining and leaving), and bad
parameters (400 naming them, 404 for what is not there). The pages that read these
run in a browser in ``test_browser.py``.
"""

from __future__ import annotations

import json
import time

import raggio as ray
from raggio.config import get_config
from raggio.dashboard.job_output import job_lines
from raggio.launch import wait_ready
from raggio.node_spec import NodeSpec
from raggio.test_utils import wait_until


@ray.remote(num_cpus=0)
def square(x):
    return x * x


@ray.remote(num_cpus=0)
class Counter:
    def __init__(self):
        self.n = 0

    def inc(self):
        self.n += 1
        return self.n


def test_tasks_come_a_page_at_a_time_newest_first_with_counts(driver):
    cluster = driver
    refs = [square.remote(i) for i in range(7)]
    ray.get(refs)
    job_id = ray.get_runtime_context().get_job_id()
    one_id = refs[-1].task_id().hex()

    def page(query):
        return cluster.data(f"/api/ui/tasks?job_id={job_id}&{query}")

    wait_until(lambda: page("limit=3")["state_counts"].get("FINISHED") == 7, timeout_s=10,
               what="the seven tasks to be recorded as finished")
    pages = [page(f"limit=3&offset={offset}") for offset in (0, 3, 6)]
    assert [len(p["tasks"]) for p in pages] == [3, 3, 1] and pages[0]["matched"] == 7
    # In the order the control store first heard of them: newest first, near enough.
    assert sorted(t["task_id"] for p in pages for t in p["tasks"]) == sorted(
        ref.task_id().hex() for ref in refs)
    assert page("state=RUNNING")["tasks"] == []
    assert page("state=RUNNING")["state_counts"] == {"FINISHED": 7}  # the other filters'
    assert page("name=squ")["matched"] == 7 and page("name=cube")["matched"] == 0
    one = cluster.data(f"/api/ui/tasks/{one_id}")["attempts"]
    assert [(a["name"], a["state"]) for a in one] == [("square", "FINISHED")]


def test_an_actor_s_page_has_its_calls_and_resources(driver):
    counter = Counter.options(num_cpus=0, memory=2**20).remote()
    ray.get([counter.inc.remote() for _ in range(3)])
    actor_id = counter._actor_id.hex()
    data = driver.data(f"/api/ui/actors/{actor_id}")
    assert data["actor"]["class_name"] == "Counter" and data["actor"]["state"] == "ALIVE"
    assert data["actor"]["required_resources"] == {"memory": 2**20}
    wait_until(lambda: driver.data(f"/api/ui/actors/{actor_id}")["call_states"]
               .get("FINISHED", 0) >= 4, timeout_s=10, what="its calls and creation")
    names = {t["name"] for t in driver.data(f"/api/ui/actors/{actor_id}")["calls"]}
    assert {"Counter.inc", "Counter.__init__"} <= names
    listed = driver.data("/api/ui/actors?class_name=Counter&state=ALIVE")
    assert actor_id in [a["actor_id"] for a in listed["actors"]]
    ray.kill(counter)
    wait_until(lambda: driver.data(f"/api/ui/actors/{actor_id}")["actor"]["state"] == "DEAD",
               timeout_s=10, what="the actor to be DEAD")
    events = driver.data("/api/ui/overview")["events"]
    assert any(e["kind"] == "actor" and e["id"] == actor_id and "died" in e["message"]
               for e in events)


def test_nodes_show_what_they_use(dashboard_cluster):
    data = dashboard_cluster.data("/api/ui/nodes")
    assert {n["node_id"] for n in data["nodes"]} >= set(dashboard_cluster.node_ids)
    assert data["usage"]["CPU"][1] == 3  # 2 + 1 CPUs: [used, total]
    head = next(n for n in data["nodes"] if n["node_id"] == dashboard_cluster.node_ids[0])
    assert head["is_head_node"] and head["usage"]["CPU"][1] == 2


@ray.remote(num_cpus=0)
def shout(word):
    print(f"shouting {word}")


def test_a_job_s_log_is_its_workers_lines_of_that_job(driver):
    ray.get([shout.remote(f"word-{i}") for i in range(3)])
    job_id = ray.get_runtime_context().get_job_id()
    wait_until(lambda: "shouting word-2" in driver.get(f"/api/ui/jobs/{job_id}/logs")
               .body.decode(), timeout_s=10, what="the job's lines")
    assert "--- stdout of worker pid" in driver.get(f"/api/ui/jobs/{job_id}/logs").body.decode()


def test_job_lines_keeps_the_job_s_lines_only():
    data = (b"before any marker\n:job_id:1\n:task_name:f\nmine\n:job_id:2\ntheirs\n"
            b":job_id:1\nmine again\n")
    assert job_lines(data, 1) == [b"mine\n", b"mine again\n"]
    assert job_lines(data, 2) == [b"theirs\n"]


def test_the_event_stream_says_it_is_live_then_an_actor_s_birth_and_death(dashboard_cluster):
    with dashboard_cluster.open("/api/ui/events", timeout_s=30) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        events = _events(stream)
        assert next(events) == ("status", {"available": True, "message": ""})
        ray.init(address=dashboard_cluster.gcs_address)
        try:
            counter = Counter.remote()
            ray.get(counter.inc.remote())
            path = f"/api/ui/actors/{counter._actor_id.hex()}"
            _wait_for_change(events, "actors", lambda: dashboard_cluster.data(path)
                             ["actor"]["state"] == "ALIVE")
            ray.kill(counter)
            _wait_for_change(events, "actors", lambda: dashboard_cluster.data(path)
                             ["actor"]["state"] == "DEAD")
        finally:
            ray.shutdown()


def test_the_event_stream_says_when_a_node_joins_and_leaves(dashboard_cluster):
    def state_of(node_id):
        nodes = dashboard_cluster.data("/api/ui/nodes")["nodes"]
        return next((n["state"] for n in nodes if n["node_id"] == node_id), None)

    with dashboard_cluster.open("/api/ui/events", timeout_s=30) as stream:
        events = _events(stream)
        assert next(events)[0] == "status"
        node = NodeSpec(gcs_address=dashboard_cluster.gcs_address, token=dashboard_cluster.token,
                        tied=True, num_cpus=1, object_store_memory=100 * 1024**2
                        ).start_process()
        try:
            node_id = wait_ready(node, get_config().head_start_timeout_s, "raggio node")["node_id"]
            _wait_for_change(events, "nodes", lambda: state_of(node_id) == "ALIVE")
        finally:
            node.stdin.close()  # tied: it exits when its stdin closes
            node.wait(timeout=30)
            node.stdout.close()
        _wait_for_change(events, "nodes", lambda: state_of(node_id) == "DEAD")


def _wait_for_change(events, topic: str, shown=lambda: True, timeout_s: float = 30) -> None:
    """Read the stream until a ``changed`` event names ``topic`` after which a page that
    refetches sees ``shown()`` hold (an earlier change of the topic may come first)."""
    deadline = time.monotonic() + timeout_s
    for name, data in events:
        if name == "changed" and topic in data["topics"] and shown():
            return
        assert time.monotonic() < deadline, f"no change of {topic} that shows it in {timeout_s} s"
    raise AssertionError("the stream ended")


def _events(stream):
    """(event, data) pairs of a server-sent event stream; (None, None) for a keep-alive."""
    name = None
    for raw in stream:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            yield name, json.loads(line[len("data: "):])
        elif line.startswith(":"):
            yield None, None


def test_bad_parameters_are_400s_naming_them_and_missing_things_404(dashboard_cluster):
    for path, named in [("/api/ui/tasks?job_id=zz", "job_id"),
                        ("/api/ui/tasks?limit=100000", "limit"),
                        ("/api/ui/tasks?offset=-1", "offset"),
                        ("/api/ui/actors/not-hex", "actor_id"),
                        ("/api/ui/jobs/xyz/logs", "job_id"),
                        ("/api/ui/jobs/01/logs?lines=-3", "lines"),
                        ("/api/ui/jobs/01/logs?lines=0", "lines"),
                        ("/api/ui/jobs/01/logs?lines=20000", "lines"),
                        ("/api/ui/nodes/not-hex", "node_id"),
                        ("/api/ui/tasks?actor_id=not-hex", "actor_id")]:
        answer = dashboard_cluster.get(path)
        assert answer.status == 400, (path, answer.status)
        assert named in answer.json()["msg"]
    missing = dashboard_cluster.get("/api/ui/actors/" + "ab" * 16)
    assert missing.status == 404 and "No actor" in missing.json()["msg"]
    assert dashboard_cluster.get("/api/ui/tasks/" + "ab" * 24).status == 404
