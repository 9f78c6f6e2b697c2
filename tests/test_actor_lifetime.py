"""How long an actor lives: its owner, ``lifetime="detached"``, kill with restart."""

import os
import signal
import time

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
        return os.getpid()

    name = f"owned-by-a-task-{lifetime}"
    owner_pid = ray.get(create.remote(name, lifetime))
    actor = ray.get_actor(name)
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
