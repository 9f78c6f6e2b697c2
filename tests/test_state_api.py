"""The state API and its commands (``raggio list/get/summary``) against a live cluster."""

import json
import os
import subprocess
import sys

import pytest

import raggio as ray
from raggio.core import context
from raggio.test_utils import wait_until
from raggio.util import state
from raggio.util.placement_group import placement_group, remove_placement_group

_RAGGIO = os.path.join(os.path.dirname(sys.executable), "raggio")
RAGGIO = [_RAGGIO] if os.path.exists(_RAGGIO) else [sys.executable, "-m", "raggio"]


@pytest.fixture
def two_counters(ray_start_regular):
    @ray.remote
    class Counter:
        def ping(self):
            return os.getpid()

    counters = [Counter.options(name=f"counter{i}").remote() for i in range(2)]
    pids = ray.get([c.ping.remote() for c in counters])
    return ray_start_regular, counters, pids


def cli(address_info, *args):
    env = dict(os.environ, RAGGIO_AUTH_TOKEN=context.get_core().token)
    return subprocess.run(RAGGIO + list(args) + ["--address", address_info["address"]],
                          capture_output=True, text=True, env=env, timeout=60)


def test_actors_are_listed_filtered_and_summarized(two_counters):
    _, counters, pids = two_counters
    actors = state.list_actors()
    assert sorted(a.name for a in actors) == ["counter0", "counter1"]
    assert {a.state for a in actors} == {"ALIVE"} and sorted(a.pid for a in actors) == \
        sorted(pids)
    assert isinstance(actors[0], state.ActorState)
    assert actors[0].num_restarts is None  # a detail field
    assert state.list_actors(detail=True)[0].num_restarts == 0
    assert actors[0]["name"] == actors[0].get("name") == actors[0].asdict()["name"]
    assert [a.name for a in state.list_actors(filters=[("name", "=", "counter1")])] == \
        ["counter1"]
    assert len(state.list_actors(limit=1)) == 1

    ray.kill(counters[0])
    wait_until(lambda: state.list_actors(filters=[("state", "=", "DEAD")]), what="a dead actor")
    dead = state.list_actors(filters=[("state", "=", "DEAD")])
    assert [a.name for a in dead] == ["counter0"]
    assert [a.name for a in state.list_actors(filters=[("state", "!=", "DEAD")])] == \
        ["counter1"]
    summary = state.summarize_actors()["cluster"]
    assert summary["total_actors"] == 2
    assert summary["summary"]["Counter"]["state_counts"] == {"ALIVE": 1, "DEAD": 1}
    assert state.get_actor(dead[0].actor_id).death_cause
    assert state.get_actor("ff" * 16) is None


def test_nodes_jobs_and_placement_groups(ray_start_regular):
    (node,) = state.list_nodes()
    assert node.state == "ALIVE" and node.is_head_node is True
    assert node.resources_total["CPU"] == 2.0
    assert node.node_id == ray_start_regular["node_id"]
    job_id = ray.get_runtime_context().get_job_id()
    assert state.get_job(job_id).status == "RUNNING"

    group = placement_group([{"CPU": 0.5}], strategy="PACK")
    assert group.wait(30)
    (row,) = state.list_placement_groups(detail=True)
    assert row.state == "CREATED" and row.creator_job_id == job_id
    assert row.bundles == [{"bundle_id": 0, "resources": {"CPU": 0.5},
                               "node_id": node.node_id}]
    assert "CPU_group" not in "".join(state.get_node(node.node_id).resources_total)
    remove_placement_group(group)


def test_bad_queries_say_what_is_valid(ray_start_regular):
    with pytest.raises(state.RayStateApiException, match="Supported filter keys: actor_id"):
        state.list_actors(filters=[("colour", "=", "red")])
    with pytest.raises(state.RayStateApiException, match="use '=' or '!='"):
        state.list_nodes(filters=[("state", ">", "A")])
    with pytest.raises(state.RayStateApiException, match="a \\(key, predicate, value\\)"):
        state.list_nodes(filters=["state=ALIVE"])


def test_list_get_and_summary_commands(two_counters):
    address_info, _, _ = two_counters
    listing = cli(address_info, "list", "actors", "--filter", "name=counter1")
    assert listing.returncode == 0, listing.stderr
    assert "Total: 1" in listing.stdout and "counter1" in listing.stdout
    assert "ACTOR_ID" in listing.stdout and "counter0" not in listing.stdout

    as_json = json.loads(cli(address_info, "list", "actors", "--format", "json").stdout)
    actor_id = as_json[0]["actor_id"]
    shown = cli(address_info, "get", "actors", actor_id)
    assert shown.returncode == 0 and f"actor_id: {actor_id}" in shown.stdout
    assert "num_restarts: 0" in shown.stdout

    summary = cli(address_info, "summary", "actors")
    assert "total_actors: 2" in summary.stdout and "ALIVE: 2" in summary.stdout
    nodes = cli(address_info, "list", "nodes", "--format", "yaml")
    assert "is_head_node: true" in nodes.stdout


def test_commands_fail_clearly_on_bad_input(two_counters):
    address_info, _, _ = two_counters
    bad_key = cli(address_info, "list", "actors", "--filter", "colour=red")
    assert bad_key.returncode != 0 and "Supported filter keys" in bad_key.stderr
    bad_resource = cli(address_info, "list", "widgets")
    assert bad_resource.returncode != 0 and "'nodes', 'actors'" in bad_resource.stderr
    unknown = cli(address_info, "get", "actors", "abc")
    assert unknown.returncode != 0 and "No actor with id 'abc'" in unknown.stderr
    nobody = subprocess.run(RAGGIO + ["list", "nodes", "--address", "127.0.0.1:1"],
                            capture_output=True, text=True, timeout=60,
                            env=dict(os.environ, RAGGIO_AUTH_TOKEN="x"))
    assert nobody.returncode != 0 and "Could not reach 127.0.0.1:1" in nobody.stderr


def test_workers_of_every_node_and_the_driver_are_listed(ray_start_regular):
    @ray.remote
    def where():
        return os.getpid()

    pids = set(ray.get([where.remote() for _ in range(4)]))
    workers = state.list_workers(detail=True)
    assert pids <= {w.pid for w in workers if w.worker_type == "WORKER"}
    assert all(w.node_id == ray_start_regular["node_id"] for w in workers
               if w.worker_type == "WORKER")
    (driver,) = state.list_workers(filters=[("worker_type", "=", "DRIVER")])
    assert driver.pid == os.getpid()
    listing = cli(ray_start_regular, "list", "workers")
    assert listing.returncode == 0 and "WORKER_TYPE" in listing.stdout


def test_objects_are_listed_with_their_reference_types_and_summarized(ray_start_regular):
    import numpy as np

    big = ray.put(np.ones(1_000_000))  # 8 MB: in the node's store
    small = ray.put(5)  # inline in the driver

    @ray.remote
    def size_of(x):
        return x.nbytes

    rows = {r.object_id: r for r in state.list_objects(detail=True)}
    assert rows[big.hex()].object_size >= 8_000_000
    assert rows[big.hex()].stored_on == ray_start_regular["node_id"]
    assert rows[small.hex()].stored_on == "" and rows[small.hex()].type == "DRIVER"
    assert rows[small.hex()].reference_type == "LOCAL_REFERENCE"
    assert rows[small.hex()].pid == os.getpid()

    summary = state.summarize_objects()["cluster"]
    assert summary["total_objects"] == len(rows) == 2
    assert summary["summary"]["disabled"]["ref_type_counts"]["LOCAL_REFERENCE"] >= 2
    assert ray.get(size_of.remote(big)) == 8_000_000

    listing = cli(ray_start_regular, "list", "objects")
    assert listing.returncode == 0 and big.hex() in listing.stdout
    assert "REFERENCE_TYPE" in listing.stdout
    summary_out = cli(ray_start_regular, "summary", "objects")
    assert "total_objects:" in summary_out.stdout and "LOCAL_REFERENCE" in summary_out.stdout


def test_memory_command_lists_every_ref_and_the_store_usage(ray_start_regular):
    import numpy as np

    big = ray.put(np.ones(1_000_000))
    small = ray.put("x" * 100)
    out = cli(ray_start_regular, "memory", "--sort-by", "OBJECT_SIZE")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "--- Summary for node address: 127.0.0.1 ---" in text
    assert text.index(big.hex()) < text.index(small.hex())  # the biggest first
    assert "2, (" in text.split("Local References")[1].splitlines()[1]
    assert "Plasma memory usage 7 MiB, 1 objects" in text
    stats = cli(ray_start_regular, "memory", "--stats-only").stdout
    assert "Plasma memory usage" in stats and big.hex() not in stats
    bad = cli(ray_start_regular, "memory", "--group-by", "COLOUR")
    assert bad.returncode != 0 and "NODE_ADDRESS" in bad.stderr


def test_actor_handles_are_references_too(ray_start_regular):
    @ray.remote
    class Keeper:
        def ping(self):
            return "pong"

    keeper = Keeper.remote()
    assert ray.get(keeper.ping.remote()) == "pong"
    handles = state.list_objects(filters=[("reference_type", "=", "ACTOR_HANDLE")])
    assert [h.object_id[:48] for h in handles] == ["ff" * 8 + keeper._ray_actor_id.hex()]
    text = cli(ray_start_regular, "memory").stdout
    assert "ACTOR_HANDLE" in text and "RAY_record_ref_creation_sites=1" in text
    del keeper
    wait_until(lambda: not state.list_objects(filters=[("reference_type", "=", "ACTOR_HANDLE")]),
               what="the dropped handle to leave the listing")


CALL_SITES = """
import raggio as ray
from raggio.util import state
ray.init(num_cpus=1)

@ray.remote
def two():
    return 2

kept = ray.put("kept")
made = two.remote()
ray.get(made)
for row in state.list_objects(detail=True):
    print(row.call_site)
print(state.summarize_objects()["cluster"]["callsite_enabled"])
"""


def test_call_sites_are_recorded_when_asked(tmp_path):
    script = tmp_path / "call_sites.py"
    script.write_text(CALL_SITES)
    env = dict(os.environ, RAY_record_ref_creation_sites="1", RAGGIO_TEMP_DIR=str(tmp_path))
    env.pop("RAY_ADDRESS", None)
    env.pop("RAGGIO_ADDRESS", None)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"(put object) | {script}:10:<module>" in lines
    assert f"(task call) | {script}:11:<module>" in lines
    assert lines[-1] == "True"


def test_get_worker_and_get_objects_by_id(ray_start_regular):
    @ray.remote
    def hold(refs):
        return ray.get(refs[0])

    kept = ray.put("kept")
    assert ray.get(hold.remote([kept])) == "kept"
    worker = next(w for w in state.list_workers() if w.worker_type == "WORKER")
    assert state.get_worker(worker.worker_id).pid == worker.pid
    assert state.get_worker("00" * 28) is None
    rows = state.get_objects(kept.hex())
    assert isinstance(rows, list) and {r.object_id for r in rows} == {kept.hex()}
    assert state.get_objects("00" * 28) is None  # as Ray's


def test_an_unreachable_cluster_is_server_unavailable():
    from raggio.util.state.exception import RayStateApiException, ServerUnavailable
    with pytest.raises(ServerUnavailable, match="127.0.0.1:1") as info:
        state.list_nodes(address="127.0.0.1:1", timeout=2)
    assert isinstance(info.value, RayStateApiException)
