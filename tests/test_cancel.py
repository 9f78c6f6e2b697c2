"""``cancel`` as Ray 2.60 does it: tasks waiting for arguments, queued and finished tasks,
actor calls (queued, running, async, recursive), refs owned by another process.

What tasks run refers only to names defined inside the test (workers cannot import
a test module).
"""

import os

import pytest

import raggio as ray
from raggio import test_utils
from raggio.exceptions import GetTimeoutError, TaskCancelledError
from raggio.test_utils import wait_until


Gate = ray.remote(test_utils.Gate)


def make_gate():
    return Gate.options(max_concurrency=8).remote()


def test_task_waiting_for_its_arguments_fails_at_once_and_never_runs(ray_start_regular,
                                                                     tmp_path):
    marker = str(tmp_path / "ran")

    @ray.remote
    def use(value, marker):
        open(marker, "w").close()
        return value

    gate = make_gate()
    opened = gate.wait.remote()
    waiting = use.remote(opened, marker)
    ray.cancel(waiting)
    with pytest.raises(TaskCancelledError):
        ray.get(waiting, timeout=30)
    gate.open.remote()
    assert ray.get(use.remote(opened, str(tmp_path / "other"))) == "opened"
    assert not os.path.exists(marker)


def test_cancel_of_a_finished_task_changes_nothing(ray_start_regular):
    @ray.remote
    def value():
        return 7

    ref = value.remote()
    assert ray.get(ref) == 7
    ray.cancel(ref)
    ray.cancel(ref, force=True)
    assert ray.get(ref) == 7


def test_cancel_takes_only_object_refs(ray_start_regular):
    gate = make_gate()
    with pytest.raises(TypeError, match="only supported for object refs"):
        ray.cancel(gate)


def test_a_cancelled_chain_fails_downstream(ray_start_regular):
    @ray.remote
    def wait_for(refs):
        return ray.get(refs[0])

    gate = make_gate()
    first = wait_for.remote([gate.wait.remote()])
    second = wait_for.remote([first])
    third = wait_for.remote([second])
    ray.cancel(first)
    for ref in (first, second, third):
        with pytest.raises((TaskCancelledError, ray.exceptions.RayTaskError)):
            ray.get(ref, timeout=30)
    gate.open.remote()


def test_force_cancel_of_an_actor_call_raises_value_error(ray_start_regular):
    gate = make_gate()
    ref = gate.wait.remote()
    with pytest.raises(ValueError, match="force=True is not supported for actor tasks"):
        ray.cancel(ref, force=True)
    gate.open.remote()
    assert ray.get(ref) == "opened"


def test_actor_call_queued_at_the_actor_never_runs(ray_start_regular, tmp_path):
    started, release = str(tmp_path / "started"), str(tmp_path / "release")

    @ray.remote
    class Counter:
        def __init__(self):
            self.count = 0

        def block(self, started, release):
            import time
            open(started, "w").close()
            while not os.path.exists(release):
                time.sleep(0.01)
            return self.count

        def incr(self):
            self.count += 1
            return self.count

    counter = Counter.remote()
    blocked = counter.block.remote(started, release)
    wait_until(lambda: os.path.exists(started), what="the first call to start")
    queued = counter.incr.remote()
    ray.cancel(queued)
    with pytest.raises(TaskCancelledError):
        ray.get(queued, timeout=30)
    ray.cancel(blocked)  # a running call of a plain actor is not interrupted
    open(release, "w").close()
    assert ray.get(blocked, timeout=30) == 0
    assert ray.get(counter.incr.remote(), timeout=30) == 1


def test_recursive_cancel_of_an_async_actor_call_cancels_its_children(ray_start_regular,
                                                                     tmp_path):
    import asyncio

    child_started = str(tmp_path / "child-started")

    @ray.remote(num_cpus=0)
    def child(started):
        import time
        open(started, "w").close()
        while True:
            time.sleep(0.01)

    @ray.remote
    class Parent:
        async def run(self, started):
            self.child = child.remote(started)
            await asyncio.sleep(600)

        async def child_result(self):
            try:
                await self.child
            except TaskCancelledError:
                return "child cancelled"

    parent = Parent.remote()
    ref = parent.run.remote(child_started)
    wait_until(lambda: os.path.exists(child_started), what="the child task to start")
    ray.cancel(ref, recursive=True)
    with pytest.raises(TaskCancelledError):
        ray.get(ref, timeout=30)
    assert ray.get(parent.child_result.remote(), timeout=30) == "child cancelled"


def test_cancel_of_a_ref_owned_by_a_worker_goes_to_its_owner(ray_start_regular):
    @ray.remote
    def wait_for(refs):
        return ray.get(refs[0])

    @ray.remote
    def submit(refs):
        return [wait_for.remote([refs[0]])]

    gate = make_gate()
    inner = ray.get(submit.remote([gate.wait.remote()]))[0]
    with pytest.raises(GetTimeoutError):
        ray.get(inner, timeout=0.5)
    ray.cancel(inner)
    with pytest.raises(TaskCancelledError):
        ray.get(inner, timeout=30)
    gate.open.remote()
