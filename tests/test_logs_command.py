"""``raggio logs`` against a live cluster: listing, a worker's output, tails, bad names."""

import os
import subprocess
import sys

import pytest

import raggio as ray
from raggio.core import context
from raggio.node import log_files
from raggio.test_utils import wait_until

_RAGGIO = os.path.join(os.path.dirname(sys.executable), "raggio")
RAGGIO = [_RAGGIO] if os.path.exists(_RAGGIO) else [sys.executable, "-m", "raggio"]


def logs(address_info, *args):
    env = dict(os.environ, RAGGIO_AUTH_TOKEN=context.get_core().token)
    return subprocess.run(RAGGIO + ["logs", *args, "--address", address_info["address"]],
                          capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture
def talker(ray_start_regular):
    @ray.remote
    class Talker:
        def say(self, n):
            for i in range(n):
                print(f"line {i} from the actor", flush=True)
            return os.getpid()

    actor = Talker.remote()
    pid = ray.get(actor.say.remote(5))
    return ray_start_regular, pid


def test_lists_each_nodes_files_by_kind(talker):
    address_info, pid = talker
    listing = logs(address_info)
    assert listing.returncode == 0, listing.stderr
    assert f"Node ID: {address_info['node_id']}" in listing.stdout
    assert "worker_out:" in listing.stdout and f"-{pid}.out" in listing.stdout


def test_prints_a_workers_output_by_pid_and_by_actor(talker):
    address_info, pid = talker
    wait_until(lambda: "line 4 from the actor" in logs(address_info, "--pid", str(pid)).stdout,
               what="the actor's output in its log")
    out = logs(address_info, "--pid", str(pid)).stdout
    assert out.splitlines()[-1] == "line 4 from the actor"
    assert ":task_name:" not in out and ":job_id:" not in out
    tail = logs(address_info, "--pid", str(pid), "--tail", "2").stdout.splitlines()
    assert tail == ["line 3 from the actor", "line 4 from the actor"]

    from raggio.util.state import list_actors
    (actor,) = list_actors()
    by_actor = logs(address_info, "--actor-id", actor.actor_id)
    assert by_actor.stdout == out
    # Ray's forms of the same.
    assert logs(address_info, "actor", "--id", actor.actor_id).stdout == out
    assert logs(address_info, "worker", "--pid", str(pid)).stdout == out


def test_bad_names_and_ids_say_what_to_do(talker):
    address_info, _ = talker
    missing = logs(address_info, "no-such-file.txt")
    assert missing.returncode != 0 and "No log file matches 'no-such-file.txt'" in missing.stderr
    node = logs(address_info, "--node-id", "abc")
    assert node.returncode != 0 and "No live node with id 'abc'" in node.stderr
    actor = logs(address_info, "--actor-id", "abc")
    assert actor.returncode != 0 and "No actor with id 'abc'" in actor.stderr
    no_id = logs(address_info, "actor")
    assert no_id.returncode != 0 and "needs --id" in no_id.stderr
    listing = logs(address_info, "cluster")  # Ray's name for the plain listing
    assert listing.returncode == 0 and "worker_out:" in listing.stdout


def test_a_node_serves_only_plain_files_of_its_log_directory(tmp_path):
    (tmp_path / "a.out").write_text("".join(f"line {i}\n" for i in range(10)))
    assert log_files.read_log(str(tmp_path), {"name": "a.out", "tail": 2})["data"] == \
        b"line 8\nline 9\n"
    with pytest.raises(ValueError, match="not the name of a log file"):
        log_files.read_log(str(tmp_path), {"name": "../a.out"})


ROTATING_DRIVER = """
import os, sys, time
import raggio as ray
info = ray.init(num_cpus=1)

@ray.remote
def noisy(n):
    for i in range(n):
        print(f"{i:06d} " + "x" * 93, flush=True)  # 101 bytes a line
        if i % 50 == 49:
            time.sleep(0.15)
    return os.getpid()

pid = ray.get(noisy.remote(300))  # ~30 KB: past the 10 KB limit twice
pid = ray.get(noisy.remote(300))
time.sleep(1)
print("SESSION", info["session_dir"], "PID", pid, flush=True)
ray.shutdown()
"""


def test_worker_logs_rotate_by_size_and_reach_the_driver_whole(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGGIO_")}
    env.update(RAGGIO_LOG_ROTATION_MAX_BYTES="10000", RAGGIO_LOG_ROTATION_BACKUP_COUNT="2",
               RAGGIO_DEDUP_LOGS="0", RAGGIO_TEMP_DIR=str(tmp_path))
    run = subprocess.run([sys.executable, "-c", ROTATING_DRIVER], capture_output=True,
                         text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    printed = [line for line in run.stdout.splitlines() if "xxxx" in line]
    assert len(printed) == 600  # every line reached the driver across the rotations
    session, pid = run.stdout.split("SESSION ")[1].split()[0], run.stdout.split("PID ")[1].split()[0]
    logs_dir = os.path.join(session, "logs")
    (current,) = [n for n in os.listdir(logs_dir) if n.endswith(f"-{pid}.out")]
    names = set(os.listdir(logs_dir))
    assert {current + ".1", current + ".2"} <= names and current + ".3" not in names
    assert os.path.getsize(os.path.join(logs_dir, current)) <= 10000 + 4096


def test_prints_a_tasks_own_lines_by_task_id(ray_start_regular):
    @ray.remote
    class Chatty:
        def greet(self, word):
            print(f"{word} from a task", flush=True)

        def mutter(self):
            print("someone else's line", flush=True)

    chatty = Chatty.remote()
    ray.get(chatty.mutter.remote())
    ref = chatty.greet.remote("hello")
    ray.get(ref)
    ray.get(chatty.mutter.remote())  # the same worker, before and after
    task_id = ref.task_id().hex()
    wait_until(lambda: "hello from a task" in logs(ray_start_regular, "--task-id", task_id)
               .stdout, what="the task's line in its worker's log")
    out = logs(ray_start_regular, "--task-id", task_id).stdout
    assert out == "hello from a task\n"
    assert logs(ray_start_regular, "task", "--id", task_id).stdout == out
    missing = logs(ray_start_regular, "--task-id", "00" * 24)
    assert missing.returncode != 0 and "raggio list tasks" in missing.stderr
