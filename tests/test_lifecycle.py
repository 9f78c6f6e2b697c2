"""A private cluster lives and dies with its driver."""

import os
import signal
import subprocess
import sys
import textwrap

import psutil
import pytest

import raggio as ray

DRIVER = textwrap.dedent("""
    import os, sys, time
    import raggio as ray
    ray.init(num_cpus=2)

    @ray.remote
    def pid():
        return os.getpid()

    print(" ".join(str(p) for p in ray.get([pid.remote(), pid.remote()])), flush=True)
    {ending}
""")


def _descendants_of_driver(ending: str) -> tuple[subprocess.Popen, list[psutil.Process]]:
    proc = subprocess.Popen([sys.executable, "-c", DRIVER.format(ending=ending)],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.strip(), "the driver printed no worker pids"
    cluster = psutil.Process(proc.pid).children(recursive=True)
    assert any("raggio.head" in " ".join(p.cmdline()) for p in cluster)
    return proc, cluster


def _all_gone(processes: list[psutil.Process], timeout_s: float = 30) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(processes, timeout=timeout_s)
    return alive


@pytest.mark.parametrize("ending", [
    "ray.shutdown()",
    "sys.exit(0)",                       # atexit shuts down
    "time.sleep(60)",                    # killed from outside with SIGKILL below
])
def test_cluster_processes_end_with_the_driver(ending):
    proc, cluster = _descendants_of_driver(ending)
    if "sleep" in ending:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    leftovers = _all_gone(cluster)
    assert leftovers == [], [p.cmdline() for p in leftovers]


def test_second_init_needs_ignore_reinit_error(shutdown_only):
    ray.init(num_cpus=1)
    with pytest.raises(RuntimeError, match="ignore_reinit_error"):
        ray.init(num_cpus=1)
    ray.init(num_cpus=1, ignore_reinit_error=True)
    assert ray.is_initialized()
    ray.shutdown()
    assert not ray.is_initialized()


def test_api_before_init_starts_a_cluster(shutdown_only):
    @ray.remote
    def one():
        return 1

    assert not ray.is_initialized()
    assert ray.get(one.remote()) == 1
    assert ray.is_initialized()


def test_a_private_cluster_is_one_head_and_its_workers(shutdown_only):
    ray.init(num_cpus=2)
    assert ray.get(ray.put("x")) == "x"
    cluster = psutil.Process().children(recursive=True)
    heads = [p for p in cluster if "raggio.head" in " ".join(p.cmdline())]
    zygotes = [p for p in cluster if "raggio.node.zygote" in " ".join(p.cmdline())]
    assert len(heads) == 1 and len(zygotes) == 1
    assert all(p.ppid() in (os.getpid(), heads[0].pid, zygotes[0].pid) for p in cluster)
