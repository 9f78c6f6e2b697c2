"""Actors as a Ray user meets them: state, ordering, errors, concurrency, names, restarts.

Each test gets a fresh two-CPU cluster: several of them kill workers. What
actors run refers only to the standard library or to names defined inside the
test: as on Ray, workers cannot import a test module, so it must travel by value.
"""

import asyncio
import os
import threading
import time

import pytest

import raggio as ray


@ray.remote
class Counter:
    def __init__(self, start=0):
        self.value = start

    def incr(self, by=1):
        self.value += by
        return self.value

    def get(self):
        return self.value

    def pid(self):
        return os.getpid()


def test_state_is_kept_across_calls(ray_start_regular):
    counter = Counter.remote(10)
    assert ray.get(counter.incr.remote()) == 11
    assert ray.get(counter.incr.remote(by=5)) == 16
    assert ray.get(counter.get.remote()) == 16
    other = Counter.remote()
    assert ray.get(other.get.remote()) == 0  # each actor has its own state


def test_calls_run_in_submission_order(ray_start_regular):
    counter = Counter.remote()
    refs = [counter.incr.remote() for _ in range(200)]
    assert ray.get(refs) == list(range(1, 201))


def test_actor_class_cannot_be_instantiated_directly(ray_start_regular):
    with pytest.raises(TypeError, match=r"\.remote\(\)"):
        Counter()


def test_method_exception_keeps_actor_alive(ray_start_regular):
    class MyError(Exception):
        pass

    @ray.remote
    class Moody:
        def __init__(self):
            self.calls = 0

        def incr(self):
            self.calls += 1
            return self.calls

        def fail(self, message):
            raise MyError(message)

    moody = Moody.remote()
    assert ray.get(moody.incr.remote()) == 1
    with pytest.raises(MyError, match="boom") as excinfo:
        ray.get(moody.fail.remote("boom"))
    assert isinstance(excinfo.value, ray.exceptions.RayTaskError)
    with pytest.raises(ray.exceptions.RayTaskError):
        ray.get(moody.fail.remote("again"))
    assert ray.get(moody.incr.remote()) == 2  # same process, same state


def test_method_num_returns(ray_start_regular):
    @ray.remote
    class Splitter:
        @ray.method(num_returns=2)
        def split(self, text):
            head, _, tail = text.partition(" ")
            return head, tail

    splitter = Splitter.remote()
    head, tail = splitter.split.remote("hello world")
    assert ray.get([head, tail]) == ["hello", "world"]


def test_async_actor_runs_calls_concurrently(ray_start_regular):
    @ray.remote
    class Gate:
        def __init__(self):
            self.event = asyncio.Event()
            self.waiting = 0

        async def wait_open(self, i):
            self.waiting += 1
            await self.event.wait()
            return i

        async def waiting_count(self):
            return self.waiting

        async def open(self):
            self.event.set()

    gate = Gate.remote()
    waiters = [gate.wait_open.remote(i) for i in range(10)]
    # All ten calls are parked on the event at once, and the actor still answers.
    deadline = time.monotonic() + 30
    while ray.get(gate.waiting_count.remote()) < 10:
        assert time.monotonic() < deadline, "the ten calls never all started"
        time.sleep(0.05)
    ready, _ = ray.wait(waiters, timeout=0)
    assert ready == []
    ray.get(gate.open.remote())
    assert ray.get(waiters, timeout=60) == list(range(10))


def test_threaded_actor_max_concurrency(ray_start_regular):
    @ray.remote(max_concurrency=3)
    class Meeting:
        def __init__(self):
            self.barrier = threading.Barrier(3)

        def meet(self):
            # Returns only when three calls are inside at the same time.
            self.barrier.wait(timeout=60)
            return threading.get_ident()

    meeting = Meeting.remote()
    idents = ray.get([meeting.meet.remote() for _ in range(3)], timeout=90)
    assert len(set(idents)) == 3


def test_default_actor_runs_one_call_at_a_time(ray_start_regular):
    @ray.remote
    class Serial:
        def __init__(self):
            self.active = 0
            self.most_active = 0

        def enter(self):
            self.active += 1
            self.most_active = max(self.most_active, self.active)
            time.sleep(0.02)  # a window in which a second call would overlap
            self.active -= 1

        def most(self):
            return self.most_active

    serial = Serial.remote()
    ray.get([serial.enter.remote() for _ in range(10)])
    assert ray.get(serial.most.remote()) == 1


def test_named_actors_and_namespaces(ray_start_regular):
    counter = Counter.options(name="counter").remote()
    assert ray.get(counter.incr.remote()) == 1
    found = ray.get_actor("counter")
    assert ray.get(found.incr.remote()) == 2  # the same actor

    same = Counter.options(name="counter", get_if_exists=True).remote()
    assert ray.get(same.incr.remote()) == 3

    elsewhere = Counter.options(name="shared-name", namespace="other").remote(100)
    assert ray.get(elsewhere.get.remote()) == 100
    with pytest.raises(ValueError):
        ray.get_actor("shared-name")  # not in this job's namespace
    assert ray.get(ray.get_actor("shared-name", namespace="other").get.remote()) == 100

    # The same name is free in another namespace.
    local = Counter.options(name="shared-name").remote(5)
    assert ray.get(local.get.remote()) == 5

    with pytest.raises(ValueError):
        ray.get_actor("no-such-actor")


def test_name_conflict_raises_value_error(ray_start_regular):
    first = Counter.options(name="taken").remote()
    ray.get(first.get.remote())
    with pytest.raises(ValueError):
        Counter.options(name="taken").remote()
    assert ray.get(first.incr.remote()) == 1  # the first actor is untouched


def test_kill_then_calls_raise_actor_error(ray_start_regular):
    counter = Counter.remote()
    pid = ray.get(counter.pid.remote())
    ray.kill(counter)
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(counter.incr.remote(), timeout=60)
    deadline = time.monotonic() + 30
    while _pid_alive(pid):
        assert time.monotonic() < deadline, f"actor process {pid} still running after kill()"
        time.sleep(0.05)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@ray.remote
class Fragile:
    def __init__(self):
        self.calls = 0

    def incr(self):
        self.calls += 1
        return self.calls

    def crash(self):
        os._exit(1)

    def crash_once(self, marker):
        """Exit the process the first time; on a retry, after a restart, answer."""
        if not os.path.exists(marker):
            with open(marker, "w"):
                pass
            os._exit(1)
        return "survived"

    def pid(self):
        return os.getpid()


def test_max_restarts_restarts_a_dead_actor(ray_start_regular):
    actor = Fragile.options(max_restarts=1).remote()
    assert ray.get(actor.incr.remote()) == 1
    first_pid = ray.get(actor.pid.remote())
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(actor.crash.remote(), timeout=60)
    # The actor comes back with fresh state, in a new process.
    assert ray.get(actor.incr.remote(), timeout=60) == 1
    assert ray.get(actor.pid.remote()) != first_pid
    # Its one restart is used up: the next death is final.
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(actor.crash.remote(), timeout=60)
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(actor.incr.remote(), timeout=60)


def test_max_task_retries_retries_the_call_in_flight(ray_start_regular, tmp_path):
    actor = Fragile.options(max_restarts=1, max_task_retries=1).remote()
    marker = str(tmp_path / "crashed-once")
    assert ray.get(actor.crash_once.remote(marker), timeout=60) == "survived"
    assert os.path.exists(marker)
    assert ray.get(actor.incr.remote()) == 1  # the restarted actor


def test_no_restart_without_max_restarts(ray_start_regular):
    actor = Fragile.remote()
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(actor.crash.remote(), timeout=60)
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(actor.incr.remote(), timeout=60)


def test_actor_handle_passed_to_a_task(ray_start_regular):
    @ray.remote
    def bump(counter, times):
        return [ray.get(counter.incr.remote()) for _ in range(times)]

    counter = Counter.remote()
    assert ray.get(bump.remote(counter, 3)) == [1, 2, 3]
    assert ray.get(counter.incr.remote()) == 4


def test_actor_handle_passed_to_another_actor(ray_start_regular):
    @ray.remote
    class Caller:
        def __init__(self, counter):
            self.counter = counter

        def call(self):
            return ray.get(self.counter.incr.remote(10))

    counter = Counter.remote()
    caller = Caller.remote(counter)
    assert ray.get(caller.call.remote()) == 10
    assert ray.get(counter.get.remote()) == 10


def test_init_failure_makes_calls_raise_actor_error(ray_start_regular):
    @ray.remote
    class Broken:
        def __init__(self):
            raise ValueError("bad init: missing config")

        def ping(self):
            return "pong"

    broken = Broken.remote()
    with pytest.raises(ray.exceptions.RayActorError) as excinfo:
        ray.get(broken.ping.remote(), timeout=60)
    assert "bad init: missing config" in str(excinfo.value)
