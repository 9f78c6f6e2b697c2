"""Autoscaler benchmarks: how fast pending work brings a node up, and an idle one down.

Usage: python bench/autoscaler_bench.py --backend ray|raggio [--json OUT] [--repeat N]

Both backends run the same cluster file on this machine: a head with no CPUs and one worker
type, `cpu2` (`{"CPU": 2}`, min_workers 0, max_workers 3; global max_workers 3), idle
timeout 0.1 min (6 s), upscaling_speed 1, an autoscaler round every second. Worker nodes are
node processes that the autoscaler starts on this machine (provider `fake_multinode`).

- raggio: `raggio.cluster_utils.AutoscalingCluster` (its monitor runs a round a second).
- Ray 2.60: `ray start --head --num-cpus=0 --autoscaling-config=FILE` with
  `RAY_FAKE_CLUSTER=1` and `AUTOSCALER_UPDATE_INTERVAL_S=1`, as Ray's own
  `cluster_utils.AutoscalingCluster` does. That helper cannot run from the 2.60 wheel: it
  starts from `fake_multi_node/example.yaml`, which the wheel does not ship, so this script
  writes the whole file itself (the keys of that example). Ray's autoscaler v2 reads the
  same missing file to fill in defaults, so Ray runs its v1 autoscaler
  (`RAY_enable_autoscaler_v2=0`); the notes say which monitor ran. Its provider starts one
  node per launch call whatever the count (`launch_multiple`, which Ray's helper sets for v2
  only, is left off: with v1 it gained nothing here, as the provider starts nodes one at a
  time anyway, and made v1 launch past max_workers and then remove the extra node). Ray's
  side runs in a PID namespace of its own (`unshare --pid --fork --mount-proc`), whose
  first process only reaps orphans, so its `ray stop --force` sees and stops only the
  processes of this run.

Rows (seconds unless a count; a thread polls `nodes()` every 0.1 s for the worker nodes
alive, so the node times are to about 0.1 s; median of `--repeat` runs, every run in the
notes; each run starts a random part of an autoscaler round after the last):
- pending task to new node alive: from `f.remote()` (a task needing `{"CPU": 1}`, which only
  a new node has) until `nodes()` lists the node alive;
- pending task to its result: until `get` of that task returns (the node started, joined
  and ran it);
- idle node to removed: from that result (the node has nothing left to do) until `nodes()`
  no longer lists it alive; and the same minus the idle timeout;
- a burst of 12 one-CPU tasks of 1 s each (6 nodes' worth, max_workers 3): until all are
  done, the most worker nodes alive meanwhile, and from the last result until every worker
  has left;
- an idle node that holds the only copy of a 64 MiB task result (made with max_retries=0,
  so it cannot be rebuilt; the driver waits for it without reading it): from the result
  until the node has left (an error row if it is still there after four idle timeouts and
  10 s), and whether the driver then reads the value (1) or not (0: lost).
"""

import argparse
import importlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import report  # bench/report.py: this script's directory is on sys.path

WORKER_TYPE = "cpu2"
MAX_WORKERS = 3
IDLE_TIMEOUT_MINUTES = 0.1
UPDATE_INTERVAL_S = 1
WORKER_NODE_TYPES = {WORKER_TYPE: {"resources": {"CPU": 2}, "node_config": {},
                                   "min_workers": 0, "max_workers": MAX_WORKERS}}
CLUSTER_SETTINGS = {"max_workers": MAX_WORKERS, "idle_timeout_minutes": IDLE_TIMEOUT_MINUTES,
                    "upscaling_speed": 1.0}
OBJECT_BYTES = 64 << 20
BURST_TASKS = 12
BURST_TASK_S = 1.0
POLL_S = 0.1
#: Safety net for each wait: a step that takes longer is reported as an error.
WAIT_S = 180
#: After every worker has left, before the next run: the autoscaler forgets the node. Each
#: run then waits a random part of a round more, so that its demand does not always arrive
#: at the same point of the autoscaler's round (the removal it follows came at a round).
SETTLE_S = 2


class RaggioCluster:
    """raggio's AutoscalingCluster with the bench's cluster file."""

    backend = "raggio"

    def __init__(self):
        from raggio.cluster_utils import AutoscalingCluster
        self.cluster = AutoscalingCluster(head_resources={"CPU": 0},
                                          worker_node_types=WORKER_NODE_TYPES,
                                          **CLUSTER_SETTINGS)

    def start(self) -> str:
        self.cluster.start(override_env={
            "RAGGIO_AUTOSCALER_UPDATE_INTERVAL_S": str(UPDATE_INTERVAL_S)})
        return self.cluster.address

    def notes(self) -> list[str]:
        return [f"raggio's autoscaler (raggio/autoscaler/monitor.py), a round every "
                f"{UPDATE_INTERVAL_S} s"]

    def shutdown(self):
        self.cluster.shutdown()


class RayCluster:
    """A Ray head with a fake_multinode cluster file, in this run's own PID namespace."""

    backend = "ray"

    def __init__(self):
        os.environ.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
        self.temp_dir = tempfile.mkdtemp(prefix="ray-asbench-")
        self.port = free_port()
        self.config = {
            "cluster_name": "fake_multinode",
            "provider": {"type": "fake_multinode", "use_node_id_as_ip": True,
                         "disable_node_updaters": True, "disable_launch_config_check": True,
                         "gcs_address": f"127.0.0.1:{self.port}"},
            "available_node_types": {**WORKER_NODE_TYPES, "ray.head.default": {
                "resources": {"CPU": 0}, "node_config": {}, "max_workers": 0}},
            "head_node_type": "ray.head.default",
            **CLUSTER_SETTINGS,
            # What Ray's example file sets besides the node types: nothing to run or sync.
            "auth": {}, "docker": {}, "initialization_commands": [], "setup_commands": [],
            "head_setup_commands": [], "worker_setup_commands": [],
            "head_start_ray_commands": [], "worker_start_ray_commands": [],
            "file_mounts": {}, "cluster_synced_files": [],
            "file_mounts_sync_continuously": False, "rsync_exclude": [], "rsync_filter": [],
        }

    def start(self) -> str:
        config_path = os.path.join(self.temp_dir, "autoscaling.json")
        with open(config_path, "w") as f:
            json.dump(self.config, f)
        env = dict(os.environ, RAY_FAKE_CLUSTER="1",
                   AUTOSCALER_UPDATE_INTERVAL_S=str(UPDATE_INTERVAL_S),
                   RAY_enable_autoscaler_v2="0")
        subprocess.run([ray_cli(), "start", "--head", "--num-cpus=0", f"--port={self.port}",
                        "--node-ip-address=127.0.0.1", f"--temp-dir={self.temp_dir}",
                        "--include-dashboard=false", f"--autoscaling-config={config_path}"],
                       check=True, capture_output=True, env=env)
        return f"127.0.0.1:{self.port}"

    def notes(self) -> list[str]:
        import psutil
        monitors = {" ".join(p.info["cmdline"] or []) for p in
                    psutil.process_iter(["cmdline"])
                    if "monitor.py" in " ".join(p.info["cmdline"] or [])}
        versions = sorted({"v2" if "autoscaler/v2/" in m else "v1" for m in monitors})
        return [f"Ray's autoscaler {', '.join(versions) or '(no monitor found)'} "
                f"(`ray start --head --autoscaling-config`, provider fake_multinode, "
                f"AUTOSCALER_UPDATE_INTERVAL_S={UPDATE_INTERVAL_S}; no dashboard)"]

    def shutdown(self):
        # Only this PID namespace's processes: see run_in_own_pid_namespace.
        subprocess.run([ray_cli(), "stop", "--force"], capture_output=True, timeout=120)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def ray_cli() -> str:
    return os.path.join(os.path.dirname(sys.executable), "ray")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WorkerWatch:
    """Polls `nodes()` in a thread and keeps when the number of alive worker nodes changed."""

    def __init__(self, ray):
        self.ray = ray
        self.changes = [(time.perf_counter(), self.count())]
        self.changed = threading.Condition()
        self.error: Exception | None = None  #: what ended the polling, if it failed
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.poll, daemon=True)
        self.thread.start()

    def count(self) -> int:
        return sum(1 for node in self.ray.nodes() if node["Alive"]) - 1  # less the head

    def poll(self):
        while not self.stopped.wait(POLL_S):
            try:
                count = self.count()
            except Exception as exc:  # the waits raise it
                with self.changed:
                    self.error = exc
                    self.changed.notify_all()
                return
            with self.changed:
                if count != self.changes[-1][1]:
                    self.changes.append((time.perf_counter(), count))
                    self.changed.notify_all()

    def when(self, holds, since: float, what: str, wait_s: float = WAIT_S) -> float:
        """When the count first satisfied `holds` at or after `since` (`since` itself if
        it did then), waiting for it up to `wait_s`."""
        deadline = time.perf_counter() + wait_s
        with self.changed:
            while True:
                latest = self.last_change_before(since)
                times = [t for t, count in self.changes if t >= latest and holds(count)]
                if times:
                    return max(times[0], since)
                if self.error:
                    raise RuntimeError(f"nodes() failed: {self.error}") from self.error
                if not self.changed.wait(deadline - time.perf_counter()):
                    raise TimeoutError(f"no {what} within {wait_s:.0f} s")

    def last_change_before(self, moment: float) -> float:
        return max(t for t, _ in self.changes if t <= moment)

    def most(self, since: float, until: float) -> int:
        with self.changed:
            return max(count for t, count in self.changes
                       if self.last_change_before(since) <= t <= until)

    def stop(self):
        self.stopped.set()
        self.thread.join()


def one_node_runs(ray, watch: WorkerWatch) -> dict:
    """A task only a new node can run, then that node idle until it leaves."""

    @ray.remote(num_cpus=1)
    def one():
        return 1

    time.sleep(random.uniform(0, UPDATE_INTERVAL_S))
    started = time.perf_counter()
    assert ray.get(one.remote(), timeout=WAIT_S) == 1
    result = time.perf_counter()
    alive = watch.when(lambda n: n >= 1, started, "worker node alive")
    # From the result on, or from when the watch saw the node, should that be later.
    removed = watch.when(lambda n: n == 0, max(result, alive), "worker node removed")
    time.sleep(SETTLE_S)
    return {"alive": alive - started, "result": result - started, "removed": removed - result}


def burst(ray, watch: WorkerWatch) -> dict:
    @ray.remote(num_cpus=1)
    def work(i):
        time.sleep(BURST_TASK_S)
        return i

    time.sleep(random.uniform(0, UPDATE_INTERVAL_S))
    started = time.perf_counter()
    assert ray.get([work.remote(i) for i in range(BURST_TASKS)],
                   timeout=WAIT_S) == list(range(BURST_TASKS))
    done = time.perf_counter()
    gone = watch.when(lambda n: n == 0, done, "every worker node removed")
    return {"done": done - started, "most": watch.most(started, gone), "gone": gone - done}


def node_holding_an_object(ray, watch: WorkerWatch) -> list[dict]:
    """A new node makes the only copy of a 64 MiB value, then idles: is it removed, and is
    the value still there?"""
    import numpy as np

    @ray.remote(num_cpus=1, max_retries=0)
    def make():
        return np.ones(OBJECT_BYTES, dtype=np.uint8)

    ref = make.remote()
    assert ray.wait([ref], timeout=WAIT_S, fetch_local=False)[0] == [ref]
    made = time.perf_counter()
    idle_s = IDLE_TIMEOUT_MINUTES * 60
    name = f"idle node holding a {OBJECT_BYTES >> 20} MiB result to removed"
    try:
        removed = row(name, "s", watch.when(lambda n: n == 0, made, "removal of the node",
                                            wait_s=4 * idle_s + 10) - made)
    except TimeoutError as exc:
        removed = dict(row(name, "s", 0.0), error=str(exc))
    try:
        read = int(int(ray.get(ref, timeout=60)[-1]) == 1)
    except Exception:  # lost with the node: the row says so
        read = 0
    del ref
    watch.when(lambda n: n == 0, time.perf_counter(), "every worker node removed")
    return [removed, dict(row("its result read after the removal (1: yes, 0: lost)", "count",
                              read), lower_is_better=False)]


def measure(backend: str, repeat: int) -> tuple[list[dict], list[str]]:
    cluster = RaggioCluster() if backend == "raggio" else RayCluster()
    ray = importlib.import_module(backend)
    rows, notes = [], []
    try:
        ray.init(address=cluster.start())
        notes += cluster.notes()
        watch = WorkerWatch(ray)
        try:
            watch.when(lambda n: n == 0, time.perf_counter(), "a cluster without workers")
            runs = []
            for _ in range(repeat):
                runs.append(one_node_runs(ray, watch))
            idle_s = IDLE_TIMEOUT_MINUTES * 60
            for key, name in (("alive", "pending task to new node alive"),
                              ("result", "pending task to its result (new node)"),
                              ("removed", f"idle node to removed ({idle_s:.0f} s timeout)")):
                rows.append(row(name, "s", statistics.median(r[key] for r in runs)))
            rows.append(row("idle node to removed, past the idle timeout", "s",
                            statistics.median(r["removed"] for r in runs) - idle_s))
            notes.append("runs (pending to alive / to result / idle to removed, s): " + "; ".join(
                f"{r['alive']:.2f} / {r['result']:.2f} / {r['removed']:.2f}" for r in runs))
            many = burst(ray, watch)
            rows += [row(f"burst of {BURST_TASKS} 1-CPU tasks ({BURST_TASK_S:.0f} s): all done",
                         "s", many["done"]),
                     row(f"burst: most worker nodes alive (max {MAX_WORKERS})", "count",
                         many["most"]),
                     row("burst: last result to all workers removed", "s", many["gone"])]
            time.sleep(SETTLE_S)
            rows += node_holding_an_object(ray, watch)
        finally:
            watch.stop()
    except Exception as exc:  # report and go on, as the other bench scripts do
        rows.append({"name": "autoscaler", "unit": "", "value": 0.0,
                     "error": f"{type(exc).__name__}: {exc}", "lower_is_better": True})
    finally:
        ray.shutdown()
        cluster.shutdown()
    return rows, notes


def row(name, unit, value):
    return {"name": name, "unit": unit, "value": value, "error": None, "lower_is_better": True}


def run_in_own_pid_namespace() -> int:
    """Run this script again in a new PID namespace, with /proc of its own; return its
    exit status. The namespace's first process forks the bench and reaps every orphan (Ray's
    daemons) until the bench exits; its exit then ends whatever is left in the namespace."""
    return subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable,
                           os.path.abspath(__file__), *sys.argv[1:], "--pid-namespace"]
                          ).returncode


def reap_until_bench_exits():
    """As the namespace's first process: fork the bench (the child returns and runs it),
    reap orphans until it exits, then exit with its status."""
    bench = os.fork()
    if bench == 0:
        return
    while True:
        pid, status = os.wait()
        if pid == bench:
            code = os.waitstatus_to_exitcode(status)
            os._exit(code if code >= 0 else 128 - code)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["ray", "raggio"], required=True)
    parser.add_argument("--json")
    parser.add_argument("--repeat", type=int, default=5,
                        help="runs of the one-node rows (the median is reported)")
    parser.add_argument("--pid-namespace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.backend == "ray":
        if not args.pid_namespace:
            return run_in_own_pid_namespace()
        reap_until_bench_exits()
    rows, notes = measure(args.backend, args.repeat)
    return report.finish(args.backend, importlib.import_module(args.backend).__version__,
                         rows, args.json, notes)


if __name__ == "__main__":
    sys.exit(main())
