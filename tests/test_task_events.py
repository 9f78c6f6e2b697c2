"""Task history: every attempt's state changes, reached through the state API and the CLI.

Each test runs real tasks and actors on a real cluster, then reads what the control store
recorded (``list_tasks``, ``get_task``, ``summarize_tasks``, ``raggio list/summary tasks``,
``raggio status``).
"""

import json
import os
import subprocess
import sys
import time
import warnings

import pytest

import raggio as ray
from raggio.core import context
from raggio.test_utils import wait_until
from raggio.util import state
from raggio.util.placement_group import placement_group, remove_placement_group
from raggio.util.scheduling_strategies import PlacementGroupSchedulingStrategy

_RAGGIO = os.path.join(os.path.dirname(sys.executable), "raggio")
RAGGIO = [_RAGGIO] if os.path.exists(_RAGGIO) else [sys.executable, "-m", "raggio"]


def cli(address_info, *args):
    env = dict(os.environ, RAGGIO_AUTH_TOKEN=context.get_core().token)
    return subprocess.run(RAGGIO + list(args) + ["--address", address_info["address"]],
                          capture_output=True, text=True, env=env, timeout=60)


def tasks_named(name, **kwargs):
    return state.list_tasks(filters=[("name", "=", name)], detail=True, **kwargs)


def wait_for_state(name, wanted, count=1):
    def reached():
        found = [t for t in tasks_named(name) if t.state == wanted]
        return found if len(found) >= count else None
    return wait_until(reached, what=f"{count} {name} task(s) {wanted}")


@ray.remote
def square(x):
    return x * x


@ray.remote
def boom():
    raise ValueError("boom, on purpose")


@ray.remote
def blocker(seconds):
    time.sleep(seconds)
    return seconds


def test_a_finished_task_has_every_state_change_in_order(ray_start_regular):
    assert ray.get(square.remote(3)) == 9
    (task,) = wait_for_state("square", "FINISHED")
    assert [event["state"] for event in task.events] == [
        "PENDING_NODE_ASSIGNMENT", "SUBMITTED_TO_WORKER", "RUNNING", "FINISHED"]
    times = [event["created_ms"] for event in task.events]
    assert times == sorted(times)
    assert task.creation_time_ms <= task.start_time_ms <= task.end_time_ms
    assert task.type == "NORMAL_TASK" and task.func_or_class_name == "square"
    assert task.attempt_number == 0 and task.job_id == "00000001"
    assert task.node_id == ray.get_runtime_context().get_node_id()
    assert task.worker_pid > 0 and task.worker_id
    assert task.required_resources == {"CPU": 1.0}
    # The driver's tasks have the driver task as their parent, as in Ray.
    assert task.parent_task_id == "ff" * 20 + "00000001"
    assert state.get_task(task.task_id).state == "FINISHED"


def test_the_timeline_draws_each_task_that_ran(ray_start_regular, tmp_path):
    ray.get([blocker.remote(0.05) for _ in range(3)])
    wait_for_state("blocker", "FINISHED", count=3)
    runs = [event for event in ray.timeline() if event["name"] == "task::blocker"]
    assert len(runs) == 3
    node_ip = ray.util.get_node_ip_address()
    for event in runs:
        assert event["ph"] == "X" and event["pid"] == node_ip
        assert event["tid"].startswith("worker:") and event["dur"] >= 50_000  # microseconds
        assert event["args"]["state"] == "FINISHED" and event["args"]["attempt_number"] == 0
    path = tmp_path / "timeline.json"
    assert ray.timeline(filename=str(path)) is None
    assert [e for e in json.loads(path.read_text()) if e["name"] == "task::blocker"] == runs


def test_the_timeline_needs_init():
    with pytest.raises(RuntimeError, match="initialized first"):
        ray.timeline()


def test_a_failed_task_keeps_its_error(ray_start_regular):
    with pytest.raises(ray.exceptions.RayTaskError):
        ray.get(boom.remote())
    (task,) = wait_for_state("boom", "FAILED")
    assert task.error_type == "TASK_EXECUTION_EXCEPTION"
    assert "boom, on purpose" in task.error_message
    assert task.events[-1]["state"] == "FAILED"


def test_each_attempt_of_a_retried_task_is_recorded(ray_start_regular, tmp_path):
    marker = str(tmp_path / "crashed-once")

    @ray.remote(max_retries=2)
    def crash_once(path):
        if not os.path.exists(path):
            open(path, "w").close()
            os._exit(1)
        return "second time lucky"

    ref = crash_once.remote(marker)
    assert ray.get(ref) == "second time lucky"
    wait_for_state("crash_once", "FINISHED")
    attempts = state.get_task(ref)  # by the ObjectRef, as Ray allows
    assert [a.attempt_number for a in attempts] == [0, 1]
    assert [a.state for a in attempts] == ["FAILED", "FINISHED"]
    assert attempts[0].error_type == "WORKER_DIED"
    assert attempts[1].events[0]["state"] == "PENDING_NODE_ASSIGNMENT"
    summary = state.summarize_tasks()["cluster"]
    assert summary["summary"]["crash_once"]["state_counts"] == {"FINISHED": 1}


def test_nested_tasks_name_their_parent(ray_start_regular):
    @ray.remote
    def outer():
        return ray.get(square.remote(4))

    assert ray.get(outer.remote()) == 16
    (inner,) = wait_for_state("square", "FINISHED")
    (parent,) = wait_for_state("outer", "FINISHED")
    assert inner.parent_task_id == parent.task_id


def test_actor_creation_and_calls_are_tasks(ray_start_regular):
    @ray.remote
    class Counter:
        def __init__(self):
            self.count = 0

        def inc(self):
            self.count += 1
            return self.count

    counter = Counter.options(name="counter0").remote()
    assert ray.get([counter.inc.remote() for _ in range(3)]) == [1, 2, 3]
    calls = wait_for_state("Counter.inc", "FINISHED", count=3)
    actor_id = counter._ray_actor_id.hex()
    assert {c.actor_id for c in calls} == {actor_id}
    assert {c.type for c in calls} == {"ACTOR_TASK"}
    (creation,) = wait_for_state("counter0:Counter.__init__", "FINISHED")
    assert creation.type == "ACTOR_CREATION_TASK"
    assert creation.task_id == "ff" * 8 + actor_id
    assert creation.func_or_class_name == "Counter.__init__"
    assert creation.worker_pid == calls[0].worker_pid
    summary = state.summarize_tasks()["cluster"]
    assert summary["total_actor_tasks"] == 3 and summary["total_actor_scheduled"] == 1
    assert summary["summary"]["Counter.inc"] == {
        "func_or_class_name": "Counter.inc", "type": "ACTOR_TASK",
        "state_counts": {"FINISHED": 3}}
    # The actor's own state changes, with times.
    (actor,) = state.list_actors(detail=True)
    assert actor.state == "ALIVE"


def test_a_long_task_shows_running_while_it_runs(ray_start_regular):
    ref = blocker.remote(60)
    (task,) = wait_for_state("blocker", "RUNNING")
    assert task.worker_pid > 0 and task.end_time_ms is None
    ray.cancel(ref)
    (task,) = wait_for_state("blocker", "FAILED")
    assert task.error_type == "TASK_CANCELLED"


def test_pending_tasks_say_why_they_wait(ray_start_regular):
    slow = blocker.remote(60)
    waiting = square.remote(slow)
    too_big = square.options(num_cpus=64).remote(1)
    group = placement_group([{"GPU": 1}])
    in_group = square.options(  # (a request must fit a bundle of its group, as in Ray)
        num_cpus=0, num_gpus=1,
        scheduling_strategy=PlacementGroupSchedulingStrategy(group)).remote(1)
    try:
        (blocked,) = wait_until(lambda: [t for t in tasks_named("square")
                                         if t.state == "PENDING_ARGS_AVAIL"],
                                what="a task waiting for its argument")
        assert blocked.task_id == waiting.task_id().hex()
        assert slow.hex() in blocked.pending_reason
        assert "blocker" in blocked.pending_reason
        rows = {t.task_id: t for t in tasks_named("square")}
        reason = wait_until(lambda: (state.get_task(too_big) or {}).get("pending_reason"),
                            what="the reason of an infeasible task")
        assert "no node has 64 CPU" in reason
        reason = state.get_task(in_group).pending_reason
        assert "placement group" in reason and group.id.hex() in reason
        assert rows[state.get_task(in_group).task_id].placement_group_id == group.id.hex()
        # `raggio status` groups them by reason.
        status = cli(ray_start_regular, "status")
        assert status.returncode == 0, status.stderr
        pending = status.stdout.split("Pending tasks:")[1]
        assert "waiting for the objects they take as arguments" in pending
        assert "no node has 64 CPU" in pending
        assert "placement group" in pending
    finally:
        ray.cancel(slow, force=True)
        remove_placement_group(group)


def test_an_actor_call_waits_for_its_actor(ray_start_regular):
    @ray.remote(num_cpus=64)
    class TooBig:
        def hello(self):
            return "hi"

    actor = TooBig.remote()
    call = actor.hello.remote()
    reason = wait_until(lambda: (state.get_task(call) or {}).get("pending_reason"),
                        what="the reason of a call to a pending actor")
    assert "PENDING_CREATION" in reason and actor._ray_actor_id.hex() in reason
    (creation,) = wait_until(lambda: state.list_tasks(
        filters=[("type", "=", "ACTOR_CREATION_TASK")], detail=True), what="the creation task")
    assert "no node has 64 CPU" in creation.pending_reason


def test_the_history_is_bounded_and_counts_what_it_dropped(monkeypatch, request):
    monkeypatch.setenv("RAGGIO_TASK_EVENTS_MAX_TASKS", "5")
    address_info = request.getfixturevalue("ray_start_regular")
    assert ray.get([square.remote(i) for i in range(12)]) == [i * i for i in range(12)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wait_until(lambda: state.summarize_tasks()["cluster"]["dropped"] >= 7,
                   what="the oldest task attempts dropped")
    with pytest.warns(UserWarning, match="7 task attempts were dropped"):
        rows = state.list_tasks()
    assert len(rows) == 5
    listing = cli(address_info, "list", "tasks")
    assert listing.returncode == 0, listing.stderr
    assert "Dropped from the history: 7" in listing.stdout
    assert "7 task attempts were dropped" in listing.stderr


def test_cli_lists_gets_and_summarizes_tasks(ray_start_regular):
    assert ray.get([square.remote(i) for i in range(3)]) == [0, 1, 4]
    with pytest.raises(ray.exceptions.RayTaskError):
        ray.get(boom.remote())
    wait_for_state("square", "FINISHED", count=3)
    wait_for_state("boom", "FAILED")

    listing = cli(ray_start_regular, "list", "tasks")
    assert listing.returncode == 0, listing.stderr
    assert "Total: 4" in listing.stdout
    header = listing.stdout.split("Table:")[1].splitlines()[2].split()
    assert header[:4] == ["TASK_ID", "ATTEMPT_NUMBER", "NAME", "STATE"]

    failed = json.loads(cli(ray_start_regular, "list", "tasks", "--filter", "state=FAILED",
                            "--format", "json", "--detail").stdout)
    assert [t["name"] for t in failed] == ["boom"]
    assert "boom, on purpose" in failed[0]["error_message"]

    got = cli(ray_start_regular, "get", "tasks", failed[0]["task_id"])
    assert got.returncode == 0, got.stderr
    assert "error_type: TASK_EXECUTION_EXCEPTION" in got.stdout

    summary = cli(ray_start_regular, "summary", "tasks")
    assert summary.returncode == 0, summary.stderr
    assert "total_tasks: 4" in summary.stdout
    assert "Table (group by func_name):" in summary.stdout
    rows = summary.stdout.split("Table (group by func_name):")[1]
    assert "square" in rows and "FINISHED: 3" in rows and "FAILED: 1" in rows


def test_bad_task_queries_say_what_is_valid(ray_start_regular):
    with pytest.raises(state.RayStateApiException, match="Supported filter keys: task_id"):
        state.list_tasks(filters=[("colour", "=", "red")])
    assert state.get_task("00" * 24) is None
    missing = cli(ray_start_regular, "get", "tasks", "00" * 24)
    assert missing.returncode != 0 and "raggio list tasks" in missing.stderr


def test_an_actor_restart_is_in_its_history_and_its_creation_attempts(ray_start_regular):
    @ray.remote(max_restarts=1)
    class Fragile:
        def pid(self):
            return os.getpid()

    fragile = Fragile.remote()
    first = ray.get(fragile.pid.remote())
    os.kill(first, 9)

    def restarted():
        try:
            return ray.get(fragile.pid.remote()) != first
        except ray.exceptions.RayActorError:  # a call that met the dying worker
            return False
    wait_until(restarted, what="the restarted actor")
    (actor,) = state.list_actors(detail=True)
    assert [e["state"] for e in actor.events] == [
        "PENDING_CREATION", "ALIVE", "RESTARTING", "ALIVE"]
    assert all(e["node_id"] for e in actor.events[1:])
    times = [e["created_ms"] for e in actor.events]
    assert times == sorted(times)

    def creations():
        found = state.list_tasks(filters=[("type", "=", "ACTOR_CREATION_TASK")])
        return found if [t.state for t in found] == ["FINISHED"] * 2 else None
    attempts = wait_until(creations, what="two finished creation attempts")
    assert sorted(t.attempt_number for t in attempts) == [0, 1]


@pytest.mark.parametrize("ray_start_cluster", [{"num_cpus": 1}], indirect=True)
def test_tasks_on_another_node_are_recorded_there(ray_start_cluster):
    cluster = ray_start_cluster
    other = cluster.add_node(num_cpus=1, resources={"other": 1})
    ray.init(address=cluster.address)

    @ray.remote(resources={"other": 1})
    def far_away():
        print("printed far away", flush=True)
        return ray.get_runtime_context().get_node_id()

    ref = far_away.remote()
    assert ray.get(ref) == other.node_id
    (task,) = wait_for_state("far_away", "FINISHED")
    assert task.node_id == other.node_id
    assert task.required_resources == {"CPU": 1.0, "other": 1.0}
    slow = blocker.options(resources={"other": 1}).remote(60)
    (running,) = wait_for_state("blocker", "RUNNING")
    assert running.node_id == other.node_id  # reported by the worker over there
    ray.cancel(slow, force=True)
    out = cli({"address": cluster.address}, "logs", "--task-id", ref.task_id().hex())
    assert out.returncode == 0 and out.stdout == "printed far away\n", out.stderr
