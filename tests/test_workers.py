"""Worker processes as a user sees them: titles, reuse, output, GPUs, memory."""

import os
import time

import numpy as np
import psutil
import pytest

import raggio as ray
from raggio.test_utils import wait_until
from raggio.core import context


def _store_used_bytes():
    stats = context.get_core().request("node", "get_node_stats")
    return stats["object_store"]["used_bytes"]


def test_process_titles_name_the_running_task(ray_start_regular):
    @ray.remote
    def my_task():
        return psutil.Process().cmdline()[0], os.getpid()

    @ray.remote
    class Greeter:
        def title(self):
            return psutil.Process().cmdline()[0]

    title, pid = ray.get(my_task.remote())
    assert title == "raggio::my_task"
    wait_until(lambda: psutil.Process(pid).cmdline()[0] == "raggio::IDLE", what="IDLE title")
    greeter = Greeter.remote()
    assert ray.get(greeter.title.remote()) == "raggio::Greeter.title"


def test_workers_are_reused_and_forked_from_the_zygote(ray_start_regular):
    @ray.remote
    def whoami():
        return os.getpid(), psutil.Process().parent().cmdline()

    pids = set()
    for _ in range(20):
        pid, parent_cmdline = ray.get(whoami.remote())
        pids.add(pid)
        assert "raggio.node.zygote" in " ".join(parent_cmdline)
    assert len(pids) <= 2  # num_cpus=2: the same workers serve every call


def _worker_processes():
    return [p for p in psutil.Process().children(recursive=True)
            if p.cmdline() and p.cmdline()[0].startswith("raggio::")]


def test_a_burst_of_tasks_starts_no_more_workers_than_cpus(ray_start_regular):
    @ray.remote
    def nap():
        time.sleep(0.05)
        return os.getpid()

    pids = set(ray.get([nap.remote() for _ in range(20)]))
    assert len(pids) <= 2  # num_cpus=2
    assert len(_worker_processes()) <= 2


def test_an_idle_node_holds_no_workers_until_a_driver_connects(ray_start_cluster):
    cluster = ray_start_cluster
    cluster.add_node(num_cpus=2)
    zygote = next(p for p in psutil.Process(cluster.head_node.process.pid).children(recursive=True)
                  if "raggio.node.zygote" in " ".join(p.cmdline()))
    time.sleep(0.5)  # room for a worker that should not start
    assert zygote.children() == []
    ray.init(address=cluster.address)
    wait_until(lambda: len(zygote.children()) == 2, what="two prestarted workers")


def test_workers_that_die_before_registering_fail_the_task_instead_of_hanging(
        ray_start_regular):
    # An invalid setting in the task's env makes each worker exit in get_config(), before it
    # registers; counted as "starting" for ever, such a worker used to hold the task's lease
    # request, and so the task, without end. Now a replacement starts, and after a few in a
    # row the request fails with the worker's error.
    @ray.remote(runtime_env={"env_vars": {"RAGGIO_RPC_TIMEOUT_S": "not-a-number"}})
    def broken():
        return 1

    @ray.remote
    def fine():
        return 2

    with pytest.raises(ray.exceptions.TaskUnschedulableError,
                       match="(?s)exited before registering.*RAGGIO_RPC_TIMEOUT_S"):
        ray.get(broken.remote(), timeout=60)
    assert ray.get(fine.remote(), timeout=60) == 2  # the node's other workers are unharmed


def test_task_output_reaches_the_driver_with_a_prefix(ray_start_regular, capfd):
    @ray.remote
    def chatty():
        print("hello from a task")
        return os.getpid()

    pid = ray.get(chatty.remote())
    expected = f"(chatty pid={pid}, ip=127.0.0.1) hello from a task"
    seen = ""
    deadline = time.monotonic() + 30
    while expected not in seen and time.monotonic() < deadline:
        time.sleep(0.1)
        seen += capfd.readouterr().out
    assert expected in seen


@pytest.mark.parametrize("ray_start_regular", [{"num_cpus": 2, "num_gpus": 2}], indirect=True)
def test_gpu_tasks_see_their_ids(ray_start_regular):
    @ray.remote(num_gpus=1)
    def gpu_task():
        return os.environ.get("CUDA_VISIBLE_DEVICES"), ray.get_gpu_ids()

    first, second = ray.get([gpu_task.remote(), gpu_task.remote()])
    for visible, ids in (first, second):
        assert visible == ",".join(str(i) for i in ids)
        assert len(ids) == 1
    assert ray.cluster_resources()["GPU"] == 2


def test_arena_space_is_freed_when_refs_go_away(ray_start_regular):
    before = _store_used_bytes()
    refs = [ray.put(np.ones(1024 * 1024)) for _ in range(5)]  # 8 MiB each
    assert _store_used_bytes() >= before + 5 * 8 * 1024 * 1024
    array = ray.get(refs[0])
    del refs
    wait_until(lambda: _store_used_bytes() <= before + 8 * 1024 * 1024 + 4096,
              what="four unreferenced objects to be freed")
    assert array.sum() == 1024 * 1024  # still readable: its pin keeps it
    del array
    wait_until(lambda: _store_used_bytes() <= before, what="the last object to be freed")
