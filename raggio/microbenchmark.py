"""`raggio microbenchmark`: the rows of `ray microbenchmark`, for raggio or for Ray.

Usage:
    raggio microbenchmark [--quick] [--filter TEXT] [--json OUT]
    python bench/microbenchmark.py --backend ray|raggio [--json OUT] [--quick]
                                   [--filter TEXT] [--row-timeout SECONDS]

Every row runs the workload of the row of the same name in Ray 2.60's
`ray._private.ray_perf` (the same batch sizes, client and server counts), on
a cluster started with `init(num_cpus=2, resources={"custom": 100})` (for Ray
also `_node_ip_address="127.0.0.1"`, to stay on loopback).  Each row is
warmed up, then called repeatedly for a fixed duration (2 s, or 0.5 s with
--quick; at least once) and reported in ops/s (GB/s for the gigabytes rows).
A row that fails, or runs past --row-timeout, is reported as an error and
the run goes on.

Two more measurements run in fresh subprocesses (`probe`): the time from
before `init()` to the first task result, and the idle memory of the driver
plus every process the cluster started below it: their PSS and the pages of
the /dev/shm files they hold (`held_memory`).

The backend is imported by name, never at the top of this module, so that
bench/microbenchmark.py can load this file into Ray's environment too.  The
Ray client rows of `ray microbenchmark` are not measured.
"""

import argparse
import contextlib
import importlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import traceback
from types import SimpleNamespace

import numpy as np
import psutil

NUM_CPUS = 2
BATCH = 1000  # calls submitted per timed call in the "async" rows
SERVERS = max(1, (os.cpu_count() or 2) // 2)  # server actors in 1:n and n:n rows, as in Ray
LARGE_ARRAY_LEN = 100 * 1024 * 1024  # int64 elements: 0.84 GB, as in Ray
PROBE_MARKER = "PROBE_RESULT "
PROBE_SETTLE_S = 3.0  # idle time before memory is sampled
PROBE_TIMEOUT_S = 180

ray = None  # the backend module; run_rows() binds it before any row runs


# --------------------------------------------------------------------------
# Remote functions and actors
# --------------------------------------------------------------------------


def define_remotes(backend):
    """Return the remote functions and actor classes the rows use.

    They are defined in here, closing over `backend`, so that they reach the
    workers by value and call the same backend there.
    """

    @backend.remote
    def small_value():
        return b"ok"

    @backend.remote
    def do_put_small():
        for _ in range(100):
            backend.put(0)

    @backend.remote
    def do_put_large():
        for _ in range(10):
            backend.put(np.zeros(10 * 1024 * 1024, dtype=np.int64))

    @backend.remote
    def create_object_containing_refs():
        return [backend.put(1) for _ in range(10000)]

    @backend.remote
    def call_round_robin(actors, n):
        backend.get([actors[i % len(actors)].small_value.remote() for i in range(n)])

    @backend.remote(num_cpus=0)
    class Actor:
        def small_value(self):
            return b"ok"

        def small_value_arg(self, x):
            return b"ok"

        def small_value_batch(self, n):
            backend.get([small_value.remote() for _ in range(n)])

    @backend.remote
    class AsyncActor:
        async def small_value(self):
            return b"ok"

        async def small_value_with_arg(self, x):
            return b"ok"

    @backend.remote(num_cpus=0)
    class Client:
        def __init__(self, servers):
            self.servers = servers

        def small_value_batch(self, n):
            refs = []
            for server in self.servers:
                refs.extend(server.small_value.remote() for _ in range(n))
            backend.get(refs)

        def small_value_batch_arg(self, n):
            arg = backend.put(0)
            refs = []
            for server in self.servers:
                refs.extend(server.small_value_arg.remote(arg) for _ in range(n))
            backend.get(refs)

    return SimpleNamespace(
        small_value=small_value,
        do_put_small=do_put_small,
        do_put_large=do_put_large,
        create_object_containing_refs=create_object_containing_refs,
        call_round_robin=call_round_robin,
        Actor=Actor,
        AsyncActor=AsyncActor,
        Client=Client,
    )


# --------------------------------------------------------------------------
# Rows: each takes the remotes and returns (callable, operations per call)
# --------------------------------------------------------------------------


def get_calls(r):
    ref = ray.put(0)
    return (lambda: ray.get(ref)), 1


def put_calls(r):
    return (lambda: ray.put(0)), 1


def multi_client_put_calls(r):
    return (lambda: ray.get([r.do_put_small.remote() for _ in range(10)])), 1000


def put_gigabytes(r):
    array = np.zeros(LARGE_ARRAY_LEN, dtype=np.int64)
    return (lambda: ray.put(array)), array.nbytes / 1e9


def multi_client_put_gigabytes(r):
    """10 tasks, each putting ten 80 MiB arrays: Ray counts 8 GB per call."""
    return (lambda: ray.get([r.do_put_large.remote() for _ in range(10)])), 10 * 8 * 0.1


def tasks_and_get_batch(r):
    return (lambda: ray.get([r.small_value.remote() for _ in range(BATCH)])), 1


def get_object_containing_10k_refs(r):
    ref = r.create_object_containing_refs.remote()
    return (lambda: ray.get(ref)), 1


def wait_1k_refs(r):
    def call():
        not_ready = [r.small_value.remote() for _ in range(BATCH)]
        while not_ready:
            _, not_ready = ray.wait(not_ready)

    return call, 1


def tasks_sync(r):
    return (lambda: ray.get(r.small_value.remote())), 1


def tasks_async(r):
    return (lambda: ray.get([r.small_value.remote() for _ in range(BATCH)])), BATCH


def multi_client_tasks_async(r, clients=4, per_client=10000):
    actors = [r.Actor.remote() for _ in range(clients)]
    return (
        lambda: ray.get([a.small_value_batch.remote(per_client) for a in actors])
    ), clients * per_client


def calls_sync(actor):
    return (lambda: ray.get(actor.small_value.remote())), 1


def calls_async(actor):
    return (lambda: ray.get([actor.small_value.remote() for _ in range(BATCH)])), BATCH


def one_to_n_calls(r, server_cls, per_server=5000):
    client = r.Client.remote([server_cls.remote() for _ in range(SERVERS)])
    return (
        lambda: ray.get(client.small_value_batch.remote(per_server))
    ), SERVERS * per_server


def n_to_n_calls(r, server_cls, clients=4, per_client=5000):
    servers = [server_cls.remote() for _ in range(SERVERS)]
    return (
        lambda: ray.get(
            [r.call_round_robin.remote(servers, per_client) for _ in range(clients)])
    ), clients * per_client


def n_to_n_calls_with_arg(r, per_client=1000):
    """One client actor per server actor, each call passing a put ref."""
    clients = [r.Client.remote([r.Actor.remote()]) for _ in range(SERVERS)]
    return (
        lambda: ray.get([c.small_value_batch_arg.remote(per_client) for c in clients])
    ), SERVERS * per_client


def async_actor_calls_with_args(r):
    actor = r.AsyncActor.remote()
    return (
        lambda: ray.get([actor.small_value_with_arg.remote(i) for i in range(BATCH)])
    ), BATCH


def placement_group_create_removal(r, groups_per_call=100):
    """Create 100 one-bundle groups ({"custom": 0.001}), wait for each, remove them."""
    util = importlib.import_module(ray.__name__ + ".util")

    def call():
        groups = [util.placement_group([{"custom": 0.001}]) for _ in range(groups_per_call)]
        for group in groups:
            group.wait(timeout_seconds=30)
        for group in groups:
            util.remove_placement_group(group)
    return call, groups_per_call


ROWS = [
    ("single client get calls (Plasma Store)", "ops/s", get_calls),
    ("single client put calls (Plasma Store)", "ops/s", put_calls),
    ("multi client put calls (Plasma Store)", "ops/s", multi_client_put_calls),
    ("single client put gigabytes", "GB/s", put_gigabytes),
    ("single client tasks and get batch", "ops/s", tasks_and_get_batch),
    ("multi client put gigabytes", "GB/s", multi_client_put_gigabytes),
    (
        "single client get object containing 10k refs",
        "ops/s",
        get_object_containing_10k_refs,
    ),
    ("single client wait 1k refs", "ops/s", wait_1k_refs),
    ("single client tasks sync", "ops/s", tasks_sync),
    ("single client tasks async", "ops/s", tasks_async),
    ("multi client tasks async", "ops/s", multi_client_tasks_async),
    ("1:1 actor calls sync", "ops/s", lambda r: calls_sync(r.Actor.remote())),
    ("1:1 actor calls async", "ops/s", lambda r: calls_async(r.Actor.remote())),
    (
        "1:1 actor calls concurrent",
        "ops/s",
        lambda r: calls_async(r.Actor.options(max_concurrency=16).remote()),
    ),
    ("1:n actor calls async", "ops/s", lambda r: one_to_n_calls(r, r.Actor)),
    ("n:n actor calls async", "ops/s", lambda r: n_to_n_calls(r, r.Actor)),
    ("n:n actor calls with arg async", "ops/s", n_to_n_calls_with_arg),
    (
        "1:1 async-actor calls sync",
        "ops/s",
        lambda r: calls_sync(r.AsyncActor.remote()),
    ),
    (
        "1:1 async-actor calls async",
        "ops/s",
        lambda r: calls_async(r.AsyncActor.remote()),
    ),
    ("1:1 async-actor calls with args async", "ops/s", async_actor_calls_with_args),
    ("1:n async-actor calls async", "ops/s", lambda r: one_to_n_calls(r, r.AsyncActor)),
    ("n:n async-actor calls async", "ops/s", lambda r: n_to_n_calls(r, r.AsyncActor)),
    ("placement group create/removal", "ops/s", placement_group_create_removal),
]

# Rows filled from the probe subprocesses: (name, unit, key in probe output).
PROBE_ROWS = [
    ("import time", "s", "import_s"),
    ("init() to first result", "s", "startup_s"),
    ("idle memory: total (PSS + /dev/shm)", "MiB", "total_mib"),
    ("idle memory: cluster (PSS + /dev/shm, without driver)", "MiB", "cluster_mib"),
    ("idle memory: /dev/shm held", "MiB", "shm_mib"),
    ("idle memory: cluster processes", "count", "cluster_processes"),
]


GROUPS = ("startup", "objects", "tasks", "actors", "async-actors", "placement")


def row_group(name):
    """The group of a row: bench/run_vs_ray.py alternates the backends group by group."""
    if name in (probe_row[0] for probe_row in PROBE_ROWS):
        return "startup"
    for group, marker in (("placement", "placement"), ("async-actors", "async-actor"),
                          ("actors", "actor"), ("tasks", "task")):
        if marker in name:
            return group
    return "objects"


def selected(name, args):
    return args.filter in name and args.group in (None, row_group(name))


# --------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------


class TimeLimitExceeded(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds):
    """Raise TimeLimitExceeded in the block if it runs longer than `seconds`."""

    def expire(signum, frame):
        raise TimeLimitExceeded(f"did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def throughput(fn, ops_per_call, duration):
    """Warm up for a quarter of `duration`, then return ops/s over `duration`."""
    warm_until = time.perf_counter() + duration / 4
    fn()
    while time.perf_counter() < warm_until:
        fn()
    calls = 0
    start = time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= duration:
            return calls * ops_per_call / elapsed


def run_row(remotes, setup, duration, timeout):
    """Return (value, error) for one row; errors and hangs do not propagate."""
    try:
        with time_limit(timeout):
            fn, ops_per_call = setup(remotes)
            return throughput(fn, ops_per_call, duration), None
    except Exception as exc:  # noqa: BLE001 - a failing row must not end the run
        traceback.print_exc()
        return None, f"{type(exc).__name__}: {exc}"


def run_rows(backend, args, report):
    global ray
    wanted = [row for row in ROWS if selected(row[0], args)]
    if not wanted:
        return
    duration = 0.5 if args.quick else 2.0
    try:
        with time_limit(args.row_timeout):
            ray = importlib.import_module(backend)
            ray.init(**init_kwargs(backend))
            remotes = define_remotes(ray)
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc()
        error = f"backend did not start: {type(exc).__name__}: {exc}"
        for name, unit, _ in wanted:
            report(name, unit, None, error)
        return
    try:
        for name, unit, setup in wanted:
            value, error = run_row(remotes, setup, duration, args.row_timeout)
            report(name, unit, value, error)
    finally:
        ray.shutdown()


def init_kwargs(backend):
    kwargs = {"num_cpus": NUM_CPUS, "resources": {"custom": 100}}
    if backend == "ray":
        kwargs["_node_ip_address"] = "127.0.0.1"
    return kwargs


# --------------------------------------------------------------------------
# Probes: startup time and idle memory, each in a fresh process
# --------------------------------------------------------------------------


def probe(backend):
    """Run in a fresh process: start a cluster, print timings and memory."""
    start = time.perf_counter()
    module = importlib.import_module(backend)
    module.init, module.remote, module.get  # raggio loads its API on first use: count it
    imported = time.perf_counter()
    small_value = define_remotes(module).small_value
    init_start = time.perf_counter()
    module.init(**init_kwargs(backend))
    module.get(small_value.remote())
    first_result = time.perf_counter()
    time.sleep(PROBE_SETTLE_S)
    result = {
        "import_s": imported - start,
        "startup_s": first_result - init_start,
        **idle_memory(),
    }
    module.shutdown()
    print(PROBE_MARKER + json.dumps(result), flush=True)


def idle_memory():
    """Memory held by this process and all its descendants, in MiB (see `held_memory`)."""
    driver = psutil.Process()
    cluster = driver.children(recursive=True)
    total_bytes, shm_bytes = held_memory([driver] + cluster)
    cluster_bytes, _ = held_memory(cluster)
    return {
        "total_mib": total_bytes / 2**20,
        "cluster_mib": cluster_bytes / 2**20,
        "shm_mib": shm_bytes / 2**20,
        "cluster_processes": len(cluster),
    }


#: Where shared-memory files live: /dev/shm, and memfd files (tmpfs too).
SHM_PREFIXES = ("/dev/shm/", "/memfd:")


def held_memory(processes):
    """The RAM these processes hold, as (bytes in all, bytes of that in /dev/shm).

    PSS counts a page of a /dev/shm file only while a process maps it, yet the
    file holds every page ever written or allocated (fallocate) until it shrinks
    or goes, mapped or not: RAM nothing else can use. So this is their PSS less
    that of their /dev/shm mappings, plus the allocated size (st_blocks) of each
    /dev/shm file they hold open or mapped, counted once.
    """
    pss = 0
    files = {}  # (st_dev, st_ino) -> allocated bytes
    for proc in processes:
        try:
            pss += proc.memory_full_info().pss
            for mapping in proc.memory_maps(grouped=False):
                if mapping.path.startswith(SHM_PREFIXES):
                    pss -= mapping.pss
                    # map_files names a range without the zero padding of /proc/PID/maps.
                    start, end = (int(a, 16) for a in mapping.addr.split("-"))
                    _note_file(files, f"/proc/{proc.pid}/map_files/{start:x}-{end:x}")
            for fd in os.listdir(f"/proc/{proc.pid}/fd"):
                _note_file(files, f"/proc/{proc.pid}/fd/{fd}")
        except (psutil.Error, OSError):
            continue  # gone meanwhile, or not ours to read
    shm = sum(files.values())
    return pss + shm, shm


def _note_file(files, proc_link):
    """Record the file behind a /proc link if it is a shared-memory one (it may be deleted
    already: the link still reaches it)."""
    try:
        if os.readlink(proc_link).startswith(SHM_PREFIXES):
            stat = os.stat(proc_link)
            files[(stat.st_dev, stat.st_ino)] = stat.st_blocks * 512
    except OSError:
        pass  # closed or unmapped meanwhile


def run_probe_process(backend):
    """Run `probe` in a fresh subprocess and return its parsed result."""
    command = [sys.executable, "-c", PROBE_BOOTSTRAP, os.path.abspath(__file__), backend]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        kill_tree(proc.pid)
        proc.communicate()
        raise RuntimeError(f"probe did not finish within {PROBE_TIMEOUT_S} s")
    for line in reversed(stdout.splitlines()):
        if line.startswith(PROBE_MARKER):
            return json.loads(line[len(PROBE_MARKER):])
    sys.stderr.write(stderr)
    last_line = stderr.strip().splitlines()[-1] if stderr.strip() else "no output"
    raise RuntimeError(f"probe exited with code {proc.returncode}: {last_line}")


# Loads this file by path (as bench/microbenchmark.py does), so the probe runs
# the same code in Ray's environment, where the raggio package is not installed.
PROBE_BOOTSTRAP = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("microbenchmark", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.probe(sys.argv[2])
"""


def kill_tree(pid):
    """Kill a probe process and everything it started."""
    try:
        root = psutil.Process(pid)
        processes = root.children(recursive=True) + [root]
    except psutil.NoSuchProcess:
        return
    for proc in processes:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass


def run_probes(backend, args, report):
    wanted = [row for row in PROBE_ROWS if selected(row[0], args)]
    if not wanted:
        return
    runs, error = [], None
    for _ in range(1 if args.quick else 3):
        try:
            runs.append(run_probe_process(backend))
        except Exception as exc:  # noqa: BLE001
            error = f"{type(exc).__name__}: {exc}"
            break
    for name, unit, key in wanted:
        value = statistics.median(run[key] for run in runs) if runs else None
        report(name, unit, value, None if runs else error)


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------

NAME_WIDTH = 48


def format_row(row):
    if row["error"]:
        return f"{row['name']:<{NAME_WIDTH}} ERROR {row['error']}"
    return f"{row['name']:<{NAME_WIDTH}} {format_value(row['value'])} {row['unit']}"


def format_value(value):
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def lower_is_better(unit):
    return unit in ("s", "MiB", "count")


def run(backend, *, quick=False, name_filter="", group=None, json_path=None, row_timeout=120):
    """Run the probes and rows on `backend`, print them; return 1 if any row failed."""
    args = SimpleNamespace(quick=quick, filter=name_filter, group=group, row_timeout=row_timeout)
    rows = []

    def report(name, unit, value, error):
        row = {
            "name": name,
            "unit": unit,
            "value": value,
            "error": error,
            "lower_is_better": lower_is_better(unit),
        }
        rows.append(row)
        print(format_row(row), file=sys.stderr, flush=True)

    run_probes(backend, args, report)
    run_rows(backend, args, report)

    version = importlib.import_module(backend).__version__
    print(f"\n{backend} {version} (quick: {quick})")
    for row in rows:
        print(format_row(row))

    if json_path:
        os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
        with open(json_path, "w") as out:
            json.dump({"backend": backend, "version": version, "quick": quick, "rows": rows},
                      out, indent=2)
    failed = sum(1 for row in rows if row["error"])
    if failed:
        print(f"{failed} of {len(rows)} rows failed", file=sys.stderr)
    return 1 if failed else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", required=True, choices=["ray", "raggio"])
    parser.add_argument("--json", metavar="OUT", help="also write results here")
    parser.add_argument("--quick", action="store_true", help="0.5 s per row, 1 probe")
    parser.add_argument("--filter", default=os.environ.get("TESTS_TO_RUN", ""),
                        help="only rows whose name contains this (default: $TESTS_TO_RUN)")
    parser.add_argument("--group", choices=GROUPS, help="only the rows of this group")
    parser.add_argument("--row-timeout", type=int, default=120, metavar="SECONDS")
    args = parser.parse_args(argv)
    return run(args.backend, quick=args.quick, name_filter=args.filter, group=args.group,
               json_path=args.json, row_timeout=args.row_timeout)


if __name__ == "__main__":
    sys.exit(main())
