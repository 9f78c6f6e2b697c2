"""Cluster-management benchmarks: start, stop, idle head memory, cross-node transfer.

Usage: python bench/cluster_bench.py --backend ray|raggio [--json OUT]

Rows (the same JSON shape as microbenchmark.py, so compare.py prints both):
- `start --head` wall time: the CLI from launch until it returns (a head with 2 CPUs
  on 127.0.0.1 and a fresh temp dir).
- idle head memory: 3 s after start, the PSS of every process the head started plus the
  pages of the /dev/shm files they hold (the object store's arena), mapped or not; with the
  dashboard (both backends' default) and without it (`--include-dashboard=false`, after
  which Ray still runs its dashboard process, without the web UI's modules), and the PSS of
  the dashboard's own processes.
- `stop` wall time: the CLI from launch until it returns with everything stopped.
- cross-node transfer: two nodes on this machine (cluster_utils.Cluster); a task on the
  second node makes a 1 GiB array; the driver on the head node `get`s it. Reported for
  the first transfer and as the best of three.
- actor failover: an actor (max_restarts=1) on the second node; the node is killed
  (`remove_node(allow_graceful=False)`) and the time until a call answers from the head.
- head restart (raggio only: Ray needs a Redis-backed control store for this): a head and a
  node on 127.0.0.2 started with the CLI, a driver on that node; the head is SIGKILLed and
  started again on its port; the time from the kill to a new task's result.
"""

import argparse
import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import psutil
from microbenchmark import load_microbenchmark

GIB = 1024**3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli(backend: str) -> str:
    return os.path.join(os.path.dirname(sys.executable), backend)


def new_processes(before: set[int]) -> list[psutil.Process]:
    out = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if proc.pid in before or proc.pid == os.getpid():
            continue
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "ray" in cmdline or "raggio" in cmdline or "gcs_server" in cmdline:
            out.append(proc)
    return out


#: What names a dashboard process on its command line: raggio's, Ray's head process and the
#: module subprocesses it starts (titled ray-dashboard-<Module>-<n>).
DASHBOARD_MARKERS = ("raggio.dashboard", "dashboard/dashboard.py", "ray-dashboard-")


def start_head(backend: str, temp_dir: str, *flags: str) -> float:
    """`start --head` on 127.0.0.1 with 2 CPUs; its wall time. raggio's dashboard takes any
    free port, so that it never meets another cluster's on 8265 (Ray runs alone in its
    network namespace, on its default port)."""
    cmd = [cli(backend), "start", "--head", f"--port={free_port()}",
           "--node-ip-address=127.0.0.1", "--num-cpus=2", f"--temp-dir={temp_dir}", *flags]
    if backend == "raggio" and "--include-dashboard=false" not in flags:
        cmd.append("--dashboard-port=0")
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - started


def stop(backend: str, temp_dir: str) -> float:
    started = time.perf_counter()
    subprocess.run([cli(backend), "stop"] + (["--temp-dir", temp_dir] if backend == "raggio"
                                             else []), check=True, capture_output=True)
    return time.perf_counter() - started


def idle_head(backend: str, *flags: str) -> dict:
    """Start a head, measure it idle 3 s later, stop it: {start_s, stop_s, memory_bytes,
    shm_bytes, processes, dashboard_bytes}."""
    temp_dir = tempfile.mkdtemp(prefix=f"{backend}-bench-")
    before = {p.pid for p in psutil.process_iter()}
    try:
        start_s = start_head(backend, temp_dir, *flags)
        time.sleep(3)
        processes = new_processes(before)
        held = load_microbenchmark().held_memory
        memory_bytes, shm_bytes = held(processes)
        dashboard_bytes, _ = held([p for p in processes if _is_dashboard(p)])
        return {"start_s": start_s, "memory_bytes": memory_bytes, "shm_bytes": shm_bytes,
                "processes": len(processes), "dashboard_bytes": dashboard_bytes,
                "stop_s": stop(backend, temp_dir)}
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


def _is_dashboard(proc: psutil.Process) -> bool:
    try:
        cmdline = " ".join(proc.cmdline())
    except psutil.Error:
        return False
    return any(marker in cmdline for marker in DASHBOARD_MARKERS)


def start_stop_rows(backend: str) -> list[dict]:
    default = idle_head(backend)
    without = idle_head(backend, "--include-dashboard=false")
    mib = 2**20
    return [row("`start --head` wall time", "s", default["start_s"], True),
            row("idle head: PSS + /dev/shm", "MiB", default["memory_bytes"] / mib, True),
            row("idle head: /dev/shm held", "MiB", default["shm_bytes"] / mib, True),
            row("idle head: processes", "count", default["processes"], True),
            row("idle head: the dashboard's processes (PSS)", "MiB",
                default["dashboard_bytes"] / mib, True),
            row("idle head without dashboard: PSS + /dev/shm", "MiB",
                without["memory_bytes"] / mib, True),
            row("idle head without dashboard: processes", "count", without["processes"], True),
            row("`stop` wall time", "s", default["stop_s"], True)]


def transfer_rows(backend: str) -> list[dict]:
    ray = importlib.import_module(backend)
    cluster_utils = importlib.import_module(f"{backend}.cluster_utils")
    store = 3 * GIB
    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "object_store_memory": store})
    cluster.add_node(num_cpus=1, resources={"second": 1}, object_store_memory=store)
    ray.init(address=cluster.address)
    try:
        @ray.remote(resources={"second": 1})
        def make():
            return np.ones(GIB // 8)

        times = []
        for _ in range(3):
            ref = make.remote()
            ray.wait([ref], fetch_local=False)
            started = time.perf_counter()
            array = ray.get(ref)
            times.append(time.perf_counter() - started)
            assert array.shape == (GIB // 8,)
            del array, ref
        return [row("cross-node transfer of 1 GiB, first", "GB/s", GIB / 1e9 / times[0], False),
                row("cross-node transfer of 1 GiB, best of 3", "GB/s", GIB / 1e9 / min(times),
                    False)]
    finally:
        ray.shutdown()
        cluster.shutdown()


def failover_rows(backend: str) -> list[dict]:
    ray = importlib.import_module(backend)
    cluster_utils = importlib.import_module(f"{backend}.cluster_utils")
    strategies = importlib.import_module(f"{backend}.util.scheduling_strategies")
    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    second = cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address)
    try:
        @ray.remote(max_restarts=1, max_task_retries=-1)
        class Where:
            def node(self):
                return ray.get_runtime_context().get_node_id()

        node_id = second.node_id
        actor = Where.options(scheduling_strategy=strategies.NodeAffinitySchedulingStrategy(
            node_id, soft=True)).remote()
        assert ray.get(actor.node.remote()) == node_id
        started = time.perf_counter()
        cluster.remove_node(second, allow_graceful=False)
        while True:
            try:
                if ray.get(actor.node.remote(), timeout=120) != node_id:
                    break
            except Exception:
                time.sleep(0.05)
        return [row("node killed -> its actor answers elsewhere", "s",
                    time.perf_counter() - started, True)]
    finally:
        ray.shutdown()
        cluster.shutdown()


def head_restart_rows(backend: str) -> list[dict]:
    if backend != "raggio":
        raise RuntimeError("not measured: Ray recovers its head only with an external Redis")
    temp_dir = tempfile.mkdtemp(prefix="raggio-bench-restart-")
    port = free_port()
    head = [cli(backend), "start", "--head", f"--port={port}", "--dashboard-port=0",
            "--node-ip-address=127.0.0.1", "--num-cpus=1", f"--temp-dir={temp_dir}"]
    subprocess.run(head, check=True, capture_output=True)
    subprocess.run([cli(backend), "start", f"--address=127.0.0.1:{port}",
                    "--node-ip-address=127.0.0.2", "--num-cpus=1", f"--temp-dir={temp_dir}"],
                   check=True, capture_output=True)
    driver = subprocess.Popen([sys.executable, "-c", HEAD_RESTART_DRIVER], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              env=dict(os.environ, RAGGIO_TEMP_DIR=temp_dir))
    try:
        assert driver.stdout.readline().strip() == "ready"
        with open(os.path.join(temp_dir, "raggio_current_cluster")) as f:
            head_pid = json.load(f)["pid"]
        started = time.perf_counter()
        psutil.Process(head_pid).kill()
        subprocess.run(head, check=True, capture_output=True)
        driver.stdin.write("go\n")
        driver.stdin.flush()
        assert driver.stdout.readline().strip() == "done"
        return [row("head killed -> new work done", "s", time.perf_counter() - started, True)]
    finally:
        driver.kill()
        subprocess.run([cli(backend), "stop", "--force", f"--temp-dir={temp_dir}"],
                       capture_output=True)
        shutil.rmtree(temp_dir, ignore_errors=True)


HEAD_RESTART_DRIVER = """
import sys
import raggio as ray
ray.init(address="auto", _node_ip_address="127.0.0.2")

@ray.remote
def one():
    return 1

ray.get(one.remote())
print("ready", flush=True)
sys.stdin.readline()
ray.get([one.remote() for _ in range(10)], timeout=120)
print("done", flush=True)
"""


def row(name, unit, value, lower_is_better):
    return {"name": name, "unit": unit, "value": value, "error": None,
            "lower_is_better": lower_is_better}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["ray", "raggio"], required=True)
    parser.add_argument("--json")
    args = parser.parse_args()
    rows = []
    for measure in (start_stop_rows, transfer_rows, failover_rows, head_restart_rows):
        try:
            rows += measure(args.backend)
        except Exception as exc:  # report and go on, as microbenchmark.py does
            rows.append({"name": measure.__name__, "unit": "", "value": 0.0,
                         "error": f"{type(exc).__name__}: {exc}", "lower_is_better": True})
    version = importlib.import_module(args.backend).__version__
    for r in rows:
        value = "ERROR " + r["error"] if r["error"] else f"{r['value']:.3f} {r['unit']}"
        print(f"{r['name']:<48} {value}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"backend": args.backend, "version": version, "quick": False,
                       "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
