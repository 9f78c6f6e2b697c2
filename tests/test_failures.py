"""What a Ray user sees when tasks fail: crashes, retries, cancellation, bad arguments.

Attempts are counted in a file under ``tmp_path`` (one line per attempt, the
worker's pid), because each retry may run in a different worker process.
What tasks run refers only to the standard library or to names defined
inside the test: as on Ray, workers cannot import a test module, so it must
travel by value.
"""

import os
import threading
import time

import pytest

import raggio as ray
from raggio.test_utils import wait_until


def attempts(path):
    try:
        with open(path) as f:
            return len(f.read().splitlines())
    except FileNotFoundError:
        return 0


@ray.remote
def die(counter_path):
    with open(counter_path, "a") as f:
        f.write(f"{os.getpid()}\n")
    os._exit(1)


@ray.remote
def raise_error(counter_path, error_type, fail_until):
    """Raise ``error_type`` on the first ``fail_until - 1`` attempts, then return."""
    with open(counter_path, "a") as f:
        f.write(f"{os.getpid()}\n")
    with open(counter_path) as f:
        attempt = len(f.read().splitlines())
    if attempt < fail_until:
        raise error_type(f"attempt {attempt}")
    return f"ok after {attempt}"


@ray.remote
def ok():
    return "ok"


# -- worker crashes --


def test_worker_crash_without_retries(ray_start_regular, tmp_path):
    counter = str(tmp_path / "attempts")
    with pytest.raises(ray.exceptions.WorkerCrashedError):
        ray.get(die.options(max_retries=0).remote(counter), timeout=60)
    assert attempts(counter) == 1
    assert ray.get(ok.remote(), timeout=60) == "ok"  # the node carries on


def test_worker_crash_is_retried_max_retries_times(ray_start_regular, tmp_path):
    counter = str(tmp_path / "attempts")
    with pytest.raises(ray.exceptions.WorkerCrashedError):
        ray.get(die.options(max_retries=1).remote(counter), timeout=60)
    assert attempts(counter) == 2


def test_worker_crash_then_success_on_retry(ray_start_regular, tmp_path):
    @ray.remote(max_retries=2)
    def die_once(path):
        with open(path, "a") as f:
            f.write(f"{os.getpid()}\n")
        with open(path) as f:
            if len(f.read().splitlines()) == 1:
                os._exit(1)
        return os.getpid()

    counter = str(tmp_path / "attempts")
    pid = ray.get(die_once.remote(counter), timeout=60)
    with open(counter) as f:
        first_pid = int(f.readline())
    assert attempts(counter) == 2 and pid != first_pid


@pytest.mark.parametrize("code", [0, 1])
def test_sys_exit_in_a_task_ends_its_worker_and_is_retried(ray_start_regular, tmp_path, code):
    @ray.remote(max_retries=1)
    def leave(path, code):
        import sys
        with open(path, "a") as f:
            f.write(f"{os.getpid()}\n")
        sys.exit(code)

    counter = str(tmp_path / "attempts")
    with pytest.raises(ray.exceptions.WorkerCrashedError):
        ray.get(leave.remote(counter, code), timeout=60)
    with open(counter) as f:
        pids = [int(line) for line in f]
    assert len(pids) == 2 and len(set(pids)) == 2  # each attempt ended its worker
    assert ray.get(ok.remote(), timeout=60) == "ok"


def test_sys_exit_in_an_actor_ends_it_without_a_restart(ray_start_regular):
    @ray.remote(max_restarts=1)
    class Leaver:
        def leave(self):
            import sys
            sys.exit()

        def ping(self):
            return "pong"

    actor = Leaver.remote()
    with pytest.raises(ray.exceptions.ActorDiedError, match=r"leave called sys.exit\(\)"):
        ray.get(actor.leave.remote(), timeout=60)
    with pytest.raises(ray.exceptions.ActorDiedError, match="exited on purpose"):
        ray.get(actor.ping.remote(), timeout=60)


# -- application errors --


@pytest.fixture
def MyError():
    """A user-defined exception type that is not importable, so it travels by value."""
    class MyError(Exception):
        pass
    return MyError


def test_application_errors_are_not_retried_by_default(ray_start_regular, tmp_path, MyError):
    counter = str(tmp_path / "attempts")
    with pytest.raises(MyError, match="attempt 1") as excinfo:
        ray.get(raise_error.remote(counter, MyError, fail_until=99), timeout=60)
    assert isinstance(excinfo.value, ray.exceptions.RayTaskError)
    assert attempts(counter) == 1


def test_retry_exceptions_true(ray_start_regular, tmp_path, MyError):
    counter = str(tmp_path / "attempts")
    ref = raise_error.options(max_retries=3, retry_exceptions=True).remote(
        counter, MyError, fail_until=3)
    assert ray.get(ref, timeout=60) == "ok after 3"
    assert attempts(counter) == 3


def test_retry_exceptions_gives_up_after_max_retries(ray_start_regular, tmp_path, MyError):
    counter = str(tmp_path / "attempts")
    ref = raise_error.options(max_retries=2, retry_exceptions=True).remote(
        counter, MyError, fail_until=99)
    with pytest.raises(MyError, match="attempt 3"):
        ray.get(ref, timeout=60)
    assert attempts(counter) == 3


def test_retry_exceptions_list_of_types(ray_start_regular, tmp_path, MyError):
    listed = str(tmp_path / "listed")
    ref = raise_error.options(max_retries=3, retry_exceptions=[KeyError, MyError]).remote(
        listed, MyError, fail_until=2)
    assert ray.get(ref, timeout=60) == "ok after 2"
    assert attempts(listed) == 2

    unlisted = str(tmp_path / "unlisted")
    ref = raise_error.options(max_retries=3, retry_exceptions=[KeyError]).remote(
        unlisted, ValueError, fail_until=2)
    with pytest.raises(ValueError, match="attempt 1"):
        ray.get(ref, timeout=60)
    assert attempts(unlisted) == 1


# -- cancellation --


def test_cancel_running_task(ray_start_regular, tmp_path):
    @ray.remote
    def long_running(started):
        open(started, "w").close()
        # Python code that keeps running. (A single long time.sleep() is not
        # interrupted by a non-force cancel on Ray either.)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            time.sleep(0.01)
        return "finished"

    started = str(tmp_path / "started")
    ref = long_running.remote(started)
    wait_until(lambda: os.path.exists(started), what="the task to start")
    ray.cancel(ref)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(ref, timeout=60)
    assert ray.get(ok.remote(), timeout=60) == "ok"


def test_cancel_queued_task(ray_start_regular):
    ref = ok.options(num_cpus=100).remote()  # infeasible: it never starts
    ray.cancel(ref)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(ref, timeout=60)


def test_force_cancel_ends_the_worker(ray_start_regular, tmp_path):
    @ray.remote
    def sleeper(started):
        open(started, "w").close()
        time.sleep(600)
        return os.getpid()

    started = str(tmp_path / "started")
    ref = sleeper.remote(started)
    wait_until(lambda: os.path.exists(started), what="the task to start")
    ray.cancel(ref, force=True)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(ref, timeout=60)
    assert ray.get(ok.remote(), timeout=60) == "ok"


def test_recursive_cancel_reaches_child_tasks(ray_start_regular, tmp_path):
    @ray.remote(num_cpus=0)
    def child(started, stopped):
        open(started, "w").close()
        try:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            open(stopped, "w").close()
        return "child finished"

    @ray.remote(num_cpus=0)
    def parent(started, stopped):
        return ray.get(child.remote(started, stopped))

    started, stopped = str(tmp_path / "child-started"), str(tmp_path / "child-stopped")
    ref = parent.remote(started, stopped)
    wait_until(lambda: os.path.exists(started), what="the child task to start")
    ray.cancel(ref, recursive=True)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(ref, timeout=60)
    wait_until(lambda: os.path.exists(stopped), what="the child task to be cancelled")


def test_cancel_a_running_async_actor_call(ray_start_regular):
    import asyncio

    @ray.remote
    class Sleeper:
        async def sleep(self):
            await asyncio.sleep(600)

        async def ping(self):
            return "pong"

    actor = Sleeper.remote()
    assert ray.get(actor.ping.remote(), timeout=60) == "pong"
    ref = actor.sleep.remote()
    time.sleep(0.2)
    ray.cancel(ref)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(ref, timeout=60)
    assert ray.get(actor.ping.remote(), timeout=60) == "pong"  # the actor lives on


# -- arguments --


def test_unpicklable_argument_raises_type_error(ray_start_regular):
    @ray.remote
    def use(lock):
        return lock

    with pytest.raises(TypeError, match="lock"):
        use.remote(threading.Lock())
    with pytest.raises(TypeError, match="lock"):
        ray.put(threading.Lock())
    assert ray.get(ok.remote(), timeout=60) == "ok"  # nothing broken


def test_unpicklable_return_value_raises_on_get(ray_start_regular):
    @ray.remote
    def make_lock():
        return threading.Lock()

    with pytest.raises(Exception, match="lock"):
        ray.get(make_lock.remote(), timeout=60)


# -- scheduling --


def test_infeasible_task_stays_pending(ray_start_regular):
    infeasible = ok.options(num_cpus=100).remote()
    ready, not_ready = ray.wait([infeasible], timeout=1.0)
    assert ready == [] and not_ready == [infeasible]
    # Feasible work still runs beside it.
    assert ray.get(ok.remote(), timeout=60) == "ok"
    ready, not_ready = ray.wait([infeasible], timeout=0)
    assert ready == [] and not_ready == [infeasible]
