"""Ray's HTTP API on raggio's dashboard: Ray 2.60's paths, parameters and JSON, real values.

Against a running two-node cluster with its dashboard (``conftest.py``): the
version Ray's clients check, the token, the state listings and summaries in
Ray's envelope with Ray's fields (an actor appears with its class, turns DEAD
when killed; filters and limits count right), the cluster status, the nodes,
the logs (a worker's ``.out`` file listed, its lines read, followed as it
grows), bad input (400 naming what is wrong, 404 JSON) and a control store
that does not answer (503, and the routes answer again once it is back).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import urllib.parse

import pytest

import raggio as ray
from raggio import cluster_file
from raggio.dashboard.control_store import ControlStore
from raggio.dashboard.node_managers import NodeManagers
from raggio.test_utils import wait_until
from raggio.util.state.logs import TaskLines

#: Ray 2.60's fields of an actor (``ActorState.list_columns()``), plain and with detail.
RAY_ACTOR_FIELDS = ["actor_id", "class_name", "state", "job_id", "name", "node_id", "pid",
                    "ray_namespace"]
RAY_ACTOR_DETAIL_FIELDS = RAY_ACTOR_FIELDS + [
    "serialized_runtime_env", "required_resources", "death_cause", "is_detached",
    "placement_group_id", "repr_name", "num_restarts", "num_restarts_due_to_lineage_reconstruction",
    "num_restarts_due_to_node_preemption", "call_site", "label_selector", "fallback_strategy"]
RAY_TASK_FIELDS = ["task_id", "attempt_number", "name", "state", "job_id", "actor_id", "type",
                   "func_or_class_name", "parent_task_id", "node_id", "worker_id", "worker_pid",
                   "error_type"]
ENVELOPE = {"total", "num_after_truncation", "num_filtered", "result",
            "partial_failure_warning", "warnings"}


def filters(*triples) -> str:
    """Ray's filter parameters for (key, predicate, value) triples."""
    params = []
    for key, predicate, value in triples:
        params += [("filter_keys", key), ("filter_predicates", predicate),
                   ("filter_values", value)]
    return urllib.parse.urlencode(params)


def listing(cluster, resource: str, query: str = "") -> dict:
    result = cluster.data(f"/api/v0/{resource}?{query}")["result"]
    assert set(result) == ENVELOPE
    return result


# -- version, health, token --


def test_version_is_what_rays_clients_check(dashboard_cluster):
    answer = dashboard_cluster.get("/api/version")
    assert answer.status == 200
    body = answer.json()
    assert body["version"] == "4"
    # Ray's SubmissionClient refuses a cluster older than Ray 1.9.
    assert tuple(int(part) for part in body["ray_version"].split(".")[:2]) >= (1, 9)
    assert body["session_name"].startswith("session_")


def test_health_checks_answer_without_the_token(dashboard_cluster):
    for path, text in (("/api/gcs_healthz", "success"), ("/-/healthz", "success"),
                       ("/api/healthz", "raylet: success\ngcs: success")):
        answer = dashboard_cluster.get(path, token=None)
        assert (answer.status, answer.body.decode()) == (200, text), path


def test_every_other_route_needs_the_token(dashboard_cluster):
    missing = dashboard_cluster.get("/api/v0/nodes", token=None)
    wrong = dashboard_cluster.get("/api/v0/nodes", token="not-the-token")
    for answer in (missing, wrong):
        assert answer.status == 401
        body = answer.json()
        assert body["result"] is False and "token" in body["msg"]
    bearer = dashboard_cluster.get("/api/v0/nodes")
    ray_header = dashboard_cluster.get(
        "/api/v0/nodes", headers={"X-Ray-Authorization": f"Bearer {dashboard_cluster.token}"})
    assert bearer.status == ray_header.status == 200


# -- the state listings --


def test_nodes_are_listed_with_rays_fields_and_filtered(dashboard_cluster):
    result = listing(dashboard_cluster, "nodes")
    rows = result["result"]
    assert {row["node_id"] for row in rows} == set(dashboard_cluster.node_ids)
    assert result["total"] == result["num_after_truncation"] == result["num_filtered"] == 2
    assert all(row["state"] == "ALIVE" and row["node_ip"] == "127.0.0.1" for row in rows)
    assert list(rows[0]) == ["node_id", "node_ip", "is_head_node", "state", "state_message",
                             "node_name", "resources_total", "labels"]
    heads = listing(dashboard_cluster, "nodes", filters(("is_head_node", "=", "true")))
    assert heads["num_filtered"] == 1
    assert heads["result"][0]["node_id"] == dashboard_cluster.node_ids[0]
    assert heads["result"][0]["resources_total"]["CPU"] == 2.0
    detailed = listing(dashboard_cluster, "nodes", "detail=true")["result"][0]
    assert detailed["start_time_ms"] > 0 and detailed["end_time_ms"] is None


def test_an_actor_appears_with_its_class_and_turns_dead_when_killed(driver):
    @ray.remote(num_cpus=0)
    class Keeper:
        def ping(self):
            return "pong"

    keeper = Keeper.options(name="keeper").remote()
    assert ray.get(keeper.ping.remote()) == "pong"
    query = filters(("name", "=", "keeper"))
    (row,) = listing(driver, "actors", query)["result"]
    assert list(row) == RAY_ACTOR_FIELDS
    assert (row["class_name"], row["state"]) == ("Keeper", "ALIVE")
    assert row["node_id"] in driver.node_ids and row["pid"] > 0
    actor_id = row["actor_id"]

    ray.kill(keeper)
    wait_until(lambda: listing(driver, "actors", query)["result"][0]["state"] == "DEAD",
               timeout_s=30, what="the killed actor to be DEAD")
    (dead,) = listing(driver, "actors", f"{query}&detail=1")["result"]
    assert list(dead) == RAY_ACTOR_DETAIL_FIELDS
    assert dead["actor_id"] == actor_id
    assert "kill" in dead["death_cause"]["actor_died_error_context"]["error_message"]
    # Filters on the state find it, and string values compare case-insensitively as Ray's.
    dead_ids = [r["actor_id"] for r in listing(driver, "actors",
                                               filters(("state", "=", "dead")))["result"]]
    assert actor_id in dead_ids
    alive = listing(driver, "actors", filters(("state", "!=", "DEAD")))["result"]
    assert actor_id not in [r["actor_id"] for r in alive]
    summary = driver.data("/api/v0/actors/summarize")["result"]["result"]
    keeper_counts = summary["node_id_to_summary"]["cluster"]["summary"]["Keeper"]
    assert keeper_counts["state_counts"].get("DEAD", 0) >= 1


def test_tasks_are_listed_limited_and_summarized(driver):
    @ray.remote(num_cpus=0)
    def dashboard_square(x):
        return x * x

    assert ray.get([dashboard_square.remote(i) for i in range(5)]) == [0, 1, 4, 9, 16]
    query = filters(("func_or_class_name", "=", "dashboard_square"))

    def finished():
        result = listing(driver, "tasks", query)
        return result if [r["state"] for r in result["result"]] == ["FINISHED"] * 5 else None

    result = wait_until(finished, timeout_s=30, what="5 finished tasks in the listing")
    assert result["num_filtered"] == 5
    row = result["result"][0]
    assert list(row) == RAY_TASK_FIELDS
    assert (row["type"], row["name"]) == ("NORMAL_TASK", "dashboard_square")
    assert row["node_id"] in driver.node_ids and row["worker_pid"] > 0
    limited = listing(driver, "tasks", f"{query}&limit=2")
    assert (len(limited["result"]), limited["num_filtered"]) == (2, 5)
    # The newest `limit` attempts the control store heard of (a departure: see
    # state_routes.py), sorted by id as Ray's listing is.
    ids = [r["task_id"] for r in limited["result"]]
    assert ids == sorted(ids) and set(ids) <= {r["task_id"] for r in result["result"]}
    detailed = listing(driver, "tasks", f"{query}&detail=true")["result"][0]
    assert detailed["required_resources"] == {} and detailed["end_time_ms"] > 0
    assert "pending_reason" not in detailed  # raggio's field, only with raggio_fields
    assert "pending_reason" in listing(driver, "tasks",
                                       f"{query}&raggio_fields=1")["result"][0]
    unfiltered = listing(driver, "tasks", "limit=1")
    assert len(unfiltered["result"]) == 1 and unfiltered["num_filtered"] >= 5

    # Filters the control store applies itself (state, job, type...) give what the same
    # filters applied to every row give ("!=" forces the latter: it is not pushed down).
    job_hex = result["result"][0]["job_id"]
    pushed = listing(driver, "tasks", filters(("state", "=", "finished"),
                                              ("job_id", "=", job_hex),
                                              ("type", "=", "normal_task")) + "&limit=10000")
    by_rows = listing(driver, "tasks", filters(("state", "!=", "running"),
                                               ("job_id", "=", job_hex),
                                               ("type", "=", "NORMAL_TASK")) + "&limit=10000")
    finished_rows = [r for r in by_rows["result"] if r["state"] == "FINISHED"]
    assert pushed["result"] == finished_rows and pushed["num_filtered"] == len(finished_rows)
    assert {"dashboard_square"} <= {r["name"] for r in pushed["result"]}
    assert listing(driver, "tasks", filters(("job_id", "=", "not-hex")))["num_filtered"] == 0
    named = listing(driver, "tasks", filters(("name", "=", "Dashboard_Square")))
    assert named["result"] == listing(driver, "tasks", filters(
        ("name", "=", "dashboard_square"), ("state", "!=", "no such state")))["result"]
    assert named["num_filtered"] == 5

    summary = driver.data("/api/v0/tasks/summarize")["result"]
    cluster = summary["result"]["node_id_to_summary"]["cluster"]
    assert cluster["summary"]["dashboard_square"] == {
        "func_or_class_name": "dashboard_square", "type": "NORMAL_TASK",
        "state_counts": {"FINISHED": 5}}
    assert cluster["summary_by"] == "func_name" and cluster["total_tasks"] >= 5


def test_workers_objects_jobs_and_placement_groups_answer_rays_rows(driver):
    kept = ray.put(b"x" * 200_000)
    group = ray.util.placement_group([{"CPU": 1}], strategy="PACK")
    ray.get(group.ready(), timeout=30)
    job_hex = ray.get_runtime_context().get_job_id()

    jobs = listing(driver, "jobs", filters(("job_id", "=", job_hex)))["result"]
    assert [(j["type"], j["status"]) for j in jobs] == [("DRIVER", "RUNNING")]
    assert jobs[0]["driver_info"]["pid"] == str(os.getpid())

    objects = listing(driver, "objects", filters(("object_id", "=", kept.hex())))
    (obj,) = objects["result"]
    assert obj["object_size"] >= 200_000 and obj["type"] == "DRIVER"
    assert obj["reference_type"] == "LOCAL_REFERENCE" and obj["attempt_number"] == 0
    assert objects["warnings"] and "Callsite" in objects["warnings"][0]
    object_summary = driver.data("/api/v0/objects/summarize")["result"]["result"]
    assert object_summary["node_id_to_summary"]["cluster"]["total_objects"] >= 1

    workers = listing(driver, "workers", filters(("worker_type", "=", "DRIVER")))["result"]
    assert os.getpid() in [w["pid"] for w in workers]

    (pg,) = listing(driver, "placement_groups",
                    filters(("placement_group_id", "=", group.id.hex())) + "&detail=1")["result"]
    assert pg["state"] == "CREATED"
    assert pg["bundles"][0]["unit_resources"] == {"CPU": 1.0}
    assert pg["bundles"][0]["node_id"] in driver.node_ids
    ray.util.remove_placement_group(group)


# -- bad input --


@pytest.mark.parametrize("path, status, needle", [
    ("/api/v0/pineapples", 400, "pineapples"),
    ("/api/v0/actors?" + filters(("colour", "=", "red")), 400, "colour"),
    ("/api/v0/actors?" + filters(("state", ">", "ALIVE")), 400, ">"),
    ("/api/v0/actors?filter_keys=state&filter_values=ALIVE", 400, "filter_predicates"),
    ("/api/v0/tasks?limit=0", 400, "limit"),
    ("/api/v0/tasks?limit=many", 400, "limit"),
    ("/api/v0/tasks?limit=20000", 400, "20000"),
    ("/api/v0/tasks?detail=maybe", 400, "detail"),
    ("/api/v0/tasks/summarize?summary_by=colour", 400, "summary_by"),
    ("/nodes?view=everything", 400, "Unknown view everything"),
    ("/api/v0/logs", 400, "Both node id and node ip are not provided"),
    ("/api/v0/logs?node_ip=10.9.9.9", 404, "10.9.9.9"),
    ("/api/v0/logs/file?node_ip=127.0.0.1", 400, "At least one of them is required"),
    ("/api/v0/logs/file?node_ip=127.0.0.1&filename=no-such.out", 404, "no-such.out"),
    ("/api/v0/logs/file?node_ip=127.0.0.1&filename=x&suffix=log", 400, "Invalid suffix"),
    ("/api/v0/logs/video?node_ip=127.0.0.1&filename=x", 400, "video"),
    # A stream polled every -1 s (or 1 ms) would spin the node manager.
    ("/api/v0/logs/stream?node_ip=127.0.0.1&filename=x&interval=-1", 400, "interval"),
    ("/api/v0/logs/stream?node_ip=127.0.0.1&filename=x&interval=0.001", 400, "interval"),
    ("/api/v0/logs/stream?node_ip=127.0.0.1&filename=x&interval=soon", 400, "interval"),
    ("/api/v0/logs/file?node_ip=127.0.0.1&filename=x&lines=-3", 400, "lines"),
    ("/api/v0/logs/file?node_ip=127.0.0.1&filename=x&lines=many", 400, "lines"),
    ("/api/no/such/route", 404, "/api/no/such/route"),
])
def test_bad_input_is_an_error_that_names_it(dashboard_cluster, path, status, needle):
    answer = dashboard_cluster.get(path)
    assert answer.status == status, answer.body[:300]
    body = answer.json()
    assert body["result"] is False and needle in body["msg"]


# -- the cluster's status and nodes --


def test_cluster_status_has_rays_shape_and_raggio_status_text(dashboard_cluster):
    data = dashboard_cluster.data("/api/cluster_status")
    assert set(data) == {"autoscalingStatus", "autoscalingError", "clusterStatus"}
    assert "Node status" in data["autoscalingStatus"]
    for node_id in dashboard_cluster.node_ids:
        assert f"node_{node_id}" in data["autoscalingStatus"]
    load = data["clusterStatus"]["loadMetricsReport"]
    assert load["usage"]["CPU"][1] == 3.0  # 2 + 1 CPUs
    assert set(load["usageByNode"]) == set(dashboard_cluster.node_ids)
    assert "objectStoreMemory" in load["usage"]  # Ray's camelCase keys
    assert len(data["clusterStatus"]["autoscalerReport"]["activeNodes"]) == 2
    text = dashboard_cluster.data("/api/cluster_status?format=1")["clusterStatus"]
    assert "Resources" in text


def test_nodes_summary_view(dashboard_cluster):
    data = dashboard_cluster.data("/nodes?view=summary")
    summary = {node["raylet"]["nodeId"]: node for node in data["summary"]}
    assert set(summary) == set(dashboard_cluster.node_ids)
    head = summary[dashboard_cluster.node_ids[0]]
    assert head["raylet"]["isHeadNode"] is True and head["raylet"]["state"] == "ALIVE"
    assert head["ip"] == "127.0.0.1" and head["raylet"]["resourcesTotal"]["CPU"] == 2.0
    assert "/2.0 CPU" in data["nodeLogicalResources"][dashboard_cluster.node_ids[0]]
    hosts = dashboard_cluster.data("/nodes?view=hostNameList")["hostNameList"]
    assert hosts == [head["hostname"]]


# -- logs --


def start_talker():
    """An actor that prints what it is told and says where it runs."""

    @ray.remote(num_cpus=0)
    class Talker:
        def say(self, text: str) -> dict:
            print(text, flush=True)
            context = ray.get_runtime_context()
            return {"pid": os.getpid(), "node_id": context.get_node_id(),
                    "actor_id": context.get_actor_id()}

    return Talker.remote()


def _worker_log_of(cluster, node_id: str, pid: int) -> str:
    groups = cluster.data(f"/api/v0/logs?node_id={node_id}")["result"]
    (name,) = [n for n in groups["worker_out"] if n.endswith(f"-{pid}.out")]
    return name


def test_logs_list_a_workers_file_and_return_its_lines(driver):
    talker = start_talker()
    where = ray.get(talker.say.remote("first line"))
    ray.get(talker.say.remote("second line"))
    pid, node_id = where["pid"], where["node_id"]
    name = _worker_log_of(driver, node_id, pid)
    by_ip = driver.data("/api/v0/logs?node_ip=127.0.0.1")["result"]
    assert "worker_out" in by_ip and "worker_err" in by_ip

    def lines(query: str) -> list[str]:
        answer = driver.get(f"/api/v0/logs/file?{query}")
        assert answer.status == 200, answer.body[:300]
        assert answer.headers["Content-Type"].startswith("text/plain")
        return answer.body.decode().splitlines()

    # The query Ray 2.60's get_log() sends.
    rays_query = urllib.parse.urlencode({
        "timeout": 30, "node_id": node_id, "media_type": "file", "filename": name,
        "download_filename": "file.txt", "attempt_number": 0, "lines": 1000, "suffix": "out",
        "filter_ansi_code": False})
    whole = wait_until(lambda: (found := lines(rays_query)) and "second line" in found
                       and found, what="the worker's two lines")
    assert whole.index("first line") < whole.index("second line")
    assert lines(f"node_id={node_id}&filename={name}&lines=1") == ["second line"]
    assert lines(f"node_id={node_id}&pid={pid}")[-1] == "second line"
    assert lines(f"actor_id={where['actor_id']}&lines=2") == ["first line", "second line"]
    named = driver.get(f"/api/v0/logs/file?node_id={node_id}&filename={name}"
                       "&download_filename=talker.txt")
    assert named.headers["Content-Disposition"] == 'attachment; filename="talker.txt"'


def test_logs_of_a_task_are_the_lines_it_printed(driver):
    @ray.remote(num_cpus=0)
    def dashboard_printer(text):
        print(text, flush=True)

    ray.get(dashboard_printer.remote("printed by the task"))
    query = filters(("name", "=", "dashboard_printer"))
    (task,) = wait_until(lambda: listing(driver, "tasks", query)["result"],
                         what="the task in the listing")
    answer = wait_until(
        lambda: (got := driver.get(f"/api/v0/logs/file?task_id={task['task_id']}")).status
        == 200 and b"printed by the task" in got.body and got, what="the task's line")
    assert answer.body.decode().splitlines() == ["printed by the task"]


def test_logs_of_a_task_are_found_past_the_first_chunk(driver):
    @ray.remote(num_cpus=0)
    class Filler:
        def fill(self, megabytes: int) -> None:
            line = "filler " + "x" * 1000 + "\n"
            for _ in range(megabytes * 1024):
                print(line, end="")

        def say(self, text: str) -> None:
            print(text, flush=True)

    filler = Filler.remote()
    fill = filler.fill.remote(5)  # more than one reply of the node manager (4 MiB)
    ray.get(fill)
    said = filler.say.remote("after the filler")
    ray.get(said)

    def task_log(ref, lines: int) -> list[str] | None:
        answer = driver.get(f"/api/v0/logs/file?task_id={ref.task_id().hex()}&lines={lines}")
        return answer.status == 200 and answer.body.decode().splitlines()

    assert wait_until(lambda: task_log(said, 10), what="the task's line") == [
        "after the filler"]
    filled = task_log(fill, 3)
    assert len(filled) == 3 and all(line.startswith("filler x") for line in filled)


def test_task_lines_are_picked_chunk_by_chunk_keeping_only_the_last():
    data = (b":job_id:1\n:task_name:f\nf one\nf two\n:task_name:g\ng one\n"
            b":task_name:f\nf three\nf four, unended")
    for size in (1, 5, 7, len(data)):  # chunks that end anywhere in a line
        picked = TaskLines("f", 3)
        for start in range(0, len(data), size):
            picked.feed(data[start:start + size])
        assert picked.lines() == [b"f two\n", b"f three\n", b"f four, unended"], size
    every = TaskLines("g", -1)
    every.feed(data)
    assert every.lines() == [b"g one\n"]


def test_the_dashboard_forgets_the_node_managers_of_dead_nodes(ray_start_cluster):
    cluster = ray_start_cluster
    small = {"num_cpus": 0, "object_store_memory": 100 * 1024**2}
    cluster.add_node(**small)
    token = cluster_file.known_token(cluster.address)

    async def connect_to_each_then_lose_one(store: ControlStore, managers: NodeManagers):
        node = await asyncio.to_thread(cluster.add_node, **small)
        for record in await store.call("get_nodes"):
            if record["state"] == "ALIVE":
                await managers.call(record["address"], "list_logs")
        assert node.address in managers.addresses
        await asyncio.to_thread(cluster.remove_node, node)
        await asyncio.to_thread(cluster.wait_for_nodes)  # the control store says DEAD
        managers.forget_dead(await store.call("get_nodes"))

    async def main():
        store, managers = ControlStore(cluster.address, token), NodeManagers(token)
        try:
            for _ in range(2):  # nodes die; the connections do not pile up
                await connect_to_each_then_lose_one(store, managers)
                assert managers.addresses == {cluster.head_node.address}
        finally:
            store.close()
            managers.close()

    asyncio.run(main())


def test_logs_stream_follows_the_file(driver):
    talker = start_talker()
    where = ray.get(talker.say.remote("before the stream"))
    name = _worker_log_of(driver, where["node_id"], where["pid"])
    received: list[bytes] = []
    with driver.open(f"/api/v0/logs/stream?node_id={where['node_id']}&filename={name}"
                     "&interval=0.1&lines=10") as answer:
        assert answer.status == 200

        def read():
            while line := answer.readline():
                received.append(line)
                if b"after the stream" in line:
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        wait_until(lambda: any(b"before the stream" in line for line in received),
                   what="the lines already there")
        ray.get(talker.say.remote("after the stream"))
        reader.join(timeout=30)
    assert any(b"after the stream" in line for line in received)


# -- a control store that does not answer --


def test_a_control_store_that_does_not_answer_is_a_503_until_it_is_back(
        own_dashboard_cluster):
    cluster = own_dashboard_cluster
    # The head process runs the control store, and the dashboard's supervisor (killed, it
    # takes the dashboard along): stopped, it answers nothing while the dashboard stays up.
    os.kill(cluster.head.pid, signal.SIGSTOP)
    try:
        # The route's timeout (1 s), not the default 30 s: the request's own safety net is
        # shorter than the default, so a route that ignored ?timeout= would fail it.
        answer = cluster.get("/api/v0/nodes?timeout=1", timeout_s=15)
        assert answer.status == 503
        body = answer.json()
        assert body["result"] is False and "control store" in body["msg"]
        assert cluster.get("/api/gcs_healthz").status == 503
    finally:
        os.kill(cluster.head.pid, signal.SIGCONT)
    wait_until(lambda: cluster.get("/api/v0/nodes?timeout=2").status == 200,
               timeout_s=30, what="the listing to answer again")
    assert listing(cluster, "nodes")["result"][0]["state"] == "ALIVE"
