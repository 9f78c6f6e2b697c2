"""How long an actor lives: its handles, its owner, ``lifetime="detached"``, kill with
restart, and ending itself (``exit_actor``, ``__ray_terminate__``)."""

import os
import signal
import time

import psutil

import pytest

import raggio as ray
from raggio.test_utils import wait_until


@ray.remote
class Named:
    def pid(self):
        return os.getpid()


def _actor_is_gone(name):
    try:
        ray.get_actor(name)
    except ValueError:
        return True
    return False


@pytest.mark.parametrize("lifetime", [None, "detached"])
def test_actor_outlives_its_owner_only_when_detached(ray_start_regular, lifetime):
    @ray.remote
    def create(name, lifetime):
        actor = Named.options(name=name, lifetime=lifetime).remote()
        ray.get(actor.pid.remote())
        return actor, os.getpid()  # the driver's copy keeps the actor in scope

    name = f"owned-by-a-task-{lifetime}"
    actor, owner_pid = ray.get(create.remote(name, lifetime))
    assert ray.get(actor.pid.remote())
    os.kill(owner_pid, signal.SIGKILL)  # the worker that created (and owns) the actor
    if lifetime == "detached":
        time.sleep(1)
        assert ray.get(actor.pid.remote(), timeout=30)
    else:
        wait_until(lambda: _actor_is_gone(name), what="the owned actor to die with its owner")
        with pytest.raises(ray.exceptions.RayActorError):
            ray.get(actor.pid.remote(), timeout=30)


def test_kill_with_restart_brings_the_actor_back(ray_start_regular):
    actor = Named.options(max_restarts=1).remote()
    first = ray.get(actor.pid.remote())
    ray.kill(actor, no_restart=False)
    wait_until(lambda: _pid_or_none(actor) not in (None, first), what="a restarted actor")
    ray.kill(actor)  # no_restart=True by default: gone for good
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(actor.pid.remote(), timeout=30)


def _pid_or_none(actor):
    try:
        return ray.get(actor.pid.remote(), timeout=30)
    except ray.exceptions.RayActorError:
        return None


# -- handles: an actor that is not detached lives while some process holds a handle --


@ray.remote
class Counter:
    def __init__(self, atexit_file=None):
        self.count = 0
        if atexit_file:
            import atexit

            def write():
                with open(atexit_file, "w") as f:
                    f.write("atexit ran")
            atexit.register(write)

    def pid(self):
        return os.getpid()

    def add(self, n=1):
        self.count += n
        return self.count

    def exit(self):
        ray.actor.exit_actor()


def _gone(pid):
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:  # (checking pid_exists first races with the exit)
        return True


def _state(actor_id_hex):
    from raggio.util.state import list_actors
    return {a["actor_id"]: a for a in list_actors(detail=True)}[actor_id_hex]


def test_dropping_the_last_handle_ends_the_actor_and_frees_its_cpu(ray_start_regular):
    actor = Counter.options(num_cpus=1).remote()
    pid = ray.get(actor.pid.remote())
    actor_id = actor._ray_actor_id.hex()
    wait_until(lambda: ray.available_resources().get("CPU", 0) == 1, what="the actor's CPU taken")
    del actor
    wait_until(lambda: _gone(pid), what="the actor's process to exit")
    wait_until(lambda: _state(actor_id)["state"] == "DEAD", what="the actor to be DEAD")
    assert "all references to the actor were removed" in _state(actor_id)["death_cause"]
    wait_until(lambda: ray.available_resources().get("CPU", 0) == 2, what="the CPU back")

    actors = [Counter.remote() for _ in range(5)]
    pids = ray.get([a.pid.remote() for a in actors])
    actors = None
    for pid in pids:
        wait_until(lambda: _gone(pid), what=f"actor process {pid} to exit")


def test_a_call_through_a_dropped_handle_still_runs(ray_start_regular):
    assert ray.get(Counter.remote().add.remote(5)) == 5
    refs = [Counter.remote().add.remote(i) for i in range(3)]
    assert ray.get(refs) == [0, 1, 2]


def test_a_copy_in_a_task_keeps_the_actor_until_the_task_ends(ray_start_regular, tmp_path):
    @ray.remote
    def use(actor, ready_file):
        while not os.path.exists(ready_file):  # until the driver dropped its handle
            time.sleep(0.01)
        return ray.get(actor.add.remote(10))

    actor = Counter.remote()
    pid = ray.get(actor.pid.remote())
    ready_file = str(tmp_path / "driver-let-go")
    ref = use.remote(actor, ready_file)
    del actor
    open(ready_file, "w").close()
    assert ray.get(ref) == 10
    wait_until(lambda: _gone(pid), what="the actor to end once the task let go")


def test_an_actor_holding_a_handle_keeps_that_actor(ray_start_regular):
    @ray.remote
    class Holder:
        def __init__(self, other):
            self.other = other

        def add(self):
            return ray.get(self.other.add.remote())

    counter = Counter.remote()
    counter_pid = ray.get(counter.pid.remote())
    holder = Holder.remote(counter)
    del counter
    assert ray.get(holder.add.remote()) == 1
    assert ray.get(holder.add.remote()) == 2
    del holder
    wait_until(lambda: _gone(counter_pid), what="the held actor to end with its holder")


def test_a_handle_returned_by_a_task_keeps_the_actor(ray_start_regular):
    @ray.remote
    def make():
        actor = Counter.remote()
        ray.get(actor.add.remote())
        return actor

    actor = ray.get(make.remote())
    assert ray.get(actor.add.remote()) == 2
    pid = ray.get(actor.pid.remote())
    del actor
    wait_until(lambda: _gone(pid), what="the actor to end")


def test_detached_and_weak_handles(ray_start_regular):
    detached = Counter.options(name="kept", lifetime="detached").remote()
    pid = ray.get(detached.pid.remote())
    del detached
    time.sleep(0.5)  # a non-detached actor would be gone by now (see the tests above)
    again = ray.get_actor("kept")
    assert ray.get(again.pid.remote()) == pid
    ray.kill(again)

    named = Counter.options(name="weakly-held").remote()
    pid = ray.get(named.pid.remote())
    weak = ray.get_actor("weakly-held")  # does not keep it alive, as in Ray
    del named
    wait_until(lambda: _gone(pid), what="the named actor to end")
    wait_until(lambda: _actor_is_gone("weakly-held"), what="its name to be released")
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(weak.add.remote(), timeout=30)
    Counter.options(name="weakly-held").remote()  # the name is free again


def test_an_actor_dropped_at_creation_never_lingers(ray_start_regular):
    Counter.options(name="dropped").remote()
    wait_until(lambda: _actor_is_gone("dropped"), what="the dropped actor to end")
    wait_until(lambda: ray.available_resources().get("CPU", 0) == 2, what="CPUs back")


@pytest.mark.parametrize("how", ["out_of_scope", "__ray_terminate__", "exit_actor", "kill"])
def test_atexit_handlers_run_unless_killed(ray_start_regular, tmp_path, how):
    marker = str(tmp_path / "atexit")
    actor = Counter.remote(marker)
    pid = ray.get(actor.pid.remote())
    if how == "out_of_scope":
        del actor
    elif how == "__ray_terminate__":
        ray.wait([actor.__ray_terminate__.remote()])
    elif how == "exit_actor":
        ray.wait([actor.exit.remote()])
    else:
        ray.kill(actor)
    wait_until(lambda: _gone(pid), what="the actor's process to exit")
    assert os.path.exists(marker) == (how != "kill")


@pytest.mark.parametrize("is_async", [False, True])
def test_exit_actor_ends_it_for_good(ray_start_regular, is_async):
    @ray.remote(max_restarts=2)
    class Plain:
        def pid(self):
            return os.getpid()

        def exit(self):
            ray.actor.exit_actor()

    @ray.remote(max_restarts=2)
    class Async:
        async def pid(self):
            return os.getpid()

        async def exit(self):
            ray.actor.exit_actor()

    actor = (Async if is_async else Plain).remote()
    assert ray.get(actor.__ray_ready__.remote()) is True
    pid = ray.get(actor.pid.remote())
    with pytest.raises(ray.exceptions.ActorDiedError, match="exit_actor"):
        ray.get(actor.exit.remote(), timeout=30)
    with pytest.raises(ray.exceptions.ActorDiedError, match="exit_actor"):
        ray.get(actor.pid.remote(), timeout=30)
    wait_until(lambda: _gone(pid), what="the actor's process to exit")
    assert _state(actor._ray_actor_id.hex())["num_restarts"] == 0


def test_exit_actor_outside_an_actor_is_a_type_error(ray_start_regular):
    with pytest.raises(TypeError, match="non-actor"):
        ray.actor.exit_actor()

    @ray.remote
    def task():
        ray.actor.exit_actor()

    with pytest.raises(TypeError, match="non-actor"):
        ray.get(task.remote())


def test_ray_call_runs_a_function_on_the_actor(ray_start_regular):
    actor = Counter.remote()
    ray.get(actor.add.remote(3))
    assert ray.get(actor.__ray_call__.remote(lambda self, n: self.count * n, 2)) == 6


def test_a_worker_owning_returned_refs_never_hosts_an_actor_that_ends(ray_start_regular):
    """The worker that ran ``make`` owns ``ref``; were it reused for the actor, the actor's
    end (its last handle gone with the task) would end the owner and lose the value."""
    @ray.remote
    def make():
        actor = Counter.remote()
        ref = actor.pid.remote()
        return [ref, os.getpid()]

    for _ in range(5):
        ref, owner_pid = ray.get(make.remote())
        actor_pid = ray.get(ref, timeout=30)
        assert actor_pid != owner_pid
        assert not _gone(owner_pid)
