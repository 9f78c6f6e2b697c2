"""The state API as Ray programs use it: state objects with attributes, ``StateApiClient``,
``address=`` from a script outside the driver, and ``list_logs``/``get_log``."""

import os
import subprocess
import sys

import pytest

import raggio as ray
from raggio.core import context
from raggio.test_utils import wait_until
from raggio.util import state
from raggio.util.state.common import (GetApiOptions, ListApiOptions, StateResource,
                                      SummaryApiOptions, SummaryResource)


@ray.remote
class Talker:
    def say(self, text):
        print(text)
        return os.getpid()


def test_state_objects_have_rays_fields(ray_start_regular_shared):
    talker = Talker.options(name="talker").remote()
    pid = ray.get(talker.say.remote("hi"))
    (actor,) = state.list_actors(filters=[("name", "=", "talker")])
    assert isinstance(actor, state.ActorState)
    assert (actor.class_name, actor.state, actor.pid) == ("Talker", "ALIVE", pid)
    assert actor["pid"] == actor.get("pid") == actor.asdict()["pid"] == pid
    assert actor.num_restarts is None and actor.get("colour", "none") == "none"
    assert state.get_actor(actor.actor_id).num_restarts == 0
    assert state.list_actors(filters=[("state", "=", "alive"), ("name", "=", "TALKER")])
    (job,) = state.list_jobs(detail=True)
    assert isinstance(job, state.JobState)
    assert (job.type, job.status, job.driver_info["pid"]) == ("DRIVER", "RUNNING",
                                                              str(os.getpid()))
    (node,) = state.list_nodes()
    assert isinstance(node, state.NodeState) and node.is_head_node
    assert all(isinstance(w, state.WorkerState) for w in state.list_workers())
    ref = ray.put("kept")
    (obj,) = state.get_objects(ref.hex())
    assert isinstance(obj, state.ObjectState) and obj.reference_type == "LOCAL_REFERENCE"
    wait_until(lambda: state.list_tasks(filters=[("name", "=", "Talker.say")]),
               what="the call in the task history")
    (task,) = state.list_tasks(filters=[("name", "=", "Talker.say")])
    assert isinstance(task, state.TaskState) and task.type == "ACTOR_TASK"


def test_state_api_client(ray_start_regular_shared):
    client = state.StateApiClient()
    actors = client.list(StateResource.ACTORS, options=ListApiOptions(detail=True),
                         raise_on_missing_output=True)
    assert actors and all(isinstance(a, state.ActorState) for a in actors)
    assert client.get(StateResource.ACTORS, actors[0].actor_id,
                      GetApiOptions()).actor_id == actors[0].actor_id
    assert client.get(StateResource.PLACEMENT_GROUPS, "00" * 18, GetApiOptions()) is None
    summary = client.summary(SummaryResource.ACTORS, options=SummaryApiOptions(),
                             raise_on_missing_output=True)
    assert summary["cluster"]["total_actors"] == len(actors)
    with pytest.raises(state.RayStateApiException, match="HTTP state server"):
        state.StateApiClient(headers={"Authorization": "x"})


QUERY_FROM_OUTSIDE = """
import sys
from raggio.util.state import list_actors, list_nodes
(node,) = list_nodes(address=sys.argv[1])
names = sorted(a.name for a in list_actors(address=sys.argv[1]))
print(node.state, names)
"""


def test_a_script_outside_the_driver_queries_by_address(ray_start_regular_shared):
    Talker.options(name="outside").remote()
    env = dict(os.environ, RAGGIO_AUTH_TOKEN=context.get_core().token)
    address = ray_start_regular_shared["address"]
    out = subprocess.run([sys.executable, "-c", QUERY_FROM_OUTSIDE, address],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ALIVE [") and "'outside'" in out.stdout


def test_list_logs_and_get_log(ray_start_regular_shared):
    talker = Talker.remote()
    pid = ray.get(talker.say.remote("a line for get_log"))
    node_id = ray.get_runtime_context().get_node_id()
    files = state.list_logs(node_id=node_id)
    assert any(name.endswith(f"-{pid}.out") for name in files["worker_out"])
    assert state.list_logs(node_id=node_id, glob_filter="*.err").keys() <= {"worker_err",
                                                                           "raggio", "other"}

    def lines_of(**kwargs):
        return "".join(state.get_log(**kwargs))

    actor_id = talker._ray_actor_id.hex()
    wait_until(lambda: "a line for get_log" in lines_of(actor_id=actor_id),
               what="the actor's line in its log")
    by_pid = lines_of(node_id=node_id, pid=pid)
    assert "a line for get_log" in by_pid
    name = next(n for n in files["worker_out"] if n.endswith(f"-{pid}.out"))
    assert lines_of(node_id=node_id, filename=name, tail=1).strip() == "a line for get_log"
    (call,) = wait_until(lambda: [t for t in state.list_tasks(
        filters=[("name", "=", "Talker.say")]) if t.worker_pid == pid],
        what="the call in the task history")
    assert lines_of(task_id=call.task_id).strip() == "a line for get_log"
    with pytest.raises(ValueError, match="node_id or node_ip must be provided"):
        lines_of(filename=name)
    with pytest.raises(state.RayStateApiException, match="no submission jobs"):
        lines_of(submission_id="raysubmit_x")



def test_get_log_follows_a_growing_file(ray_start_regular_shared):
    talker = Talker.remote()
    ray.get(talker.say.remote("first line to follow"))
    lines = state.get_log(actor_id=talker._ray_actor_id.hex(), follow=True, _interval=0.1)
    assert "first line to follow" in next(line for line in lines if "to follow" in line)
    ray.get(talker.say.remote("second line to follow"))
    assert "second line to follow" in next(line for line in lines if "to follow" in line)
    lines.close()
