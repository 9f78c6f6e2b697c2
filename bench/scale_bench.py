"""Scale benchmarks: many tasks, many arguments, many returns, many gets, a 4 GiB object.

Usage: python bench/scale_bench.py --backend ray|raggio [--json OUT] [--row-timeout S]

The workloads follow Ray's single-node scalability release test
(release/benchmarks/single_node/test_single_node.py: MAX_QUEUED_TASKS, MAX_ARGS,
MAX_RETURNS, MAX_RAY_GET_ARGS, large object), scaled to a 2-core, 24 GiB machine.
Every row is one timed run, in seconds (lower is better) unless it says GB/s
(1e9 bytes per second, higher is better). The JSON rows are those of
microbenchmark.py, so compare.py prints both backends side by side.

Rows 1-4 run on one local cluster, `init(num_cpus=2)` (Ray also gets
`_node_ip_address="127.0.0.1"`); before they run, 100 trivial tasks are run so
the workers are up, and everything a row made is dropped before the next one.

1. 100,000 queued tasks:
   - "submit": the loop calling `f.remote()` 100,000 times (f takes nothing and
     returns None); with 2 CPUs nearly all of them are still queued at its end.
   - "submit + get all": from the first submission until one `get` of the
     100,000 refs has returned (every result checked to be None).
2. many args: one task called as `f.remote(*refs)` with 10,000 refs made by `put`
   (each a 1,000-element int64 array, 8 KB); from the call until `get` of its
   result (the sum of all the arrays, checked) returns. The puts are not timed.
3. many returns: one task with `num_returns=3000`, each value a list of 1,000
   ints; from the call until one `get` of the 3,000 refs has returned (checked).
4. get of 10,000 refs: as in Ray's test, 10,000 objects are `put`, then one `get`
   of all 10,000 refs is timed, first with lists of 10,000 ints (deserialized),
   then with 10,000-element int64 numpy arrays (zero-copy where the backend can).
   The 10,000 puts of each kind are reported as rows too.
5. a 4 GiB object (a 2**29-element int64 numpy array of ones, made before timing):
   - "put" (GB/s): `put` of the array on a fresh `init(num_cpus=2,
     object_store_memory=6 GiB)`; the array is then deleted in the driver;
   - "get, same driver" (GB/s): `get` of that ref (first and last element checked);
   - "cross-node transfer" (GB/s): a two-node `cluster_utils.Cluster` (head: 1 CPU,
     second node: 1 CPU and resource {"second": 1}; each with a 6 GiB object store).
     A task on the second node makes the array and returns it; the driver (on the
     head) waits until the result exists without fetching it (`wait(fetch_local=False)`),
     then the `get` that moves it from the second node into the head's store is
     timed. At most about 3 copies of 4 GiB are alive at once (the task's array
     and its copy in the second node's store, then that copy and the head's).

A row that raises, or whose measurement runs past --row-timeout (600 s), is reported
as `ERROR ...` and the run goes on (each cluster is shut down at the end of its
rows); the exit status is 1 if any row failed.
"""

import argparse
import functools
import gc
import importlib
import json
import os
import sys
import time
import traceback

import numpy as np

from microbenchmark import load_microbenchmark

# Lets `python bench/scale_bench.py --backend raggio` find the package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

GIB = 1024**3
NUM_CPUS = 2
QUEUED_TASKS = 100_000
MANY_ARGS = 10_000
ARG_LEN = 1_000
MANY_RETURNS = 3_000
RETURN_LEN = 1_000
MANY_GETS = 10_000
GET_LEN = 10_000
LARGE_BYTES = 4 * GIB
STORE_BYTES = 6 * GIB

ray = None  # the backend module, bound in main()
#: Raises TimeLimitExceeded in its block past a deadline (shared with the microbenchmark).
time_limit = load_microbenchmark().time_limit


class Report:
    """Collects rows; prints each as it comes."""

    def __init__(self):
        self.rows = []

    def add(self, name, unit, value, lower_is_better=True, error=None):
        self.rows.append({"name": name, "unit": unit, "value": value, "error": error,
                          "lower_is_better": lower_is_better})
        shown = f"ERROR {error}" if error else f"{value:.3f} {unit}"
        print(f"{name:<52} {shown}", flush=True)

    def measure(self, planned, fn, timeout):
        """Run fn(add); rows of `planned` (name, unit, lower) it did not add get its error."""
        done = set()

        def add(name, unit, value, lower_is_better=True):
            done.add(name)
            self.add(name, unit, value, lower_is_better)

        try:
            with time_limit(timeout):
                fn(add)
        except Exception as exc:  # noqa: BLE001 - a failing row must not end the run
            traceback.print_exc()
            error = f"{type(exc).__name__}: {exc}"[:300]
            for name, unit, lower in planned:
                if name not in done:
                    self.add(name, unit, 0.0, lower, error)
        finally:
            gc.collect()


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


# --------------------------------------------------------------------------
# Rows 1-4: one local 2-CPU cluster
# --------------------------------------------------------------------------

QUEUED_ROWS = [(f"{QUEUED_TASKS:,} queued tasks: submit", "s", True),
               (f"{QUEUED_TASKS:,} queued tasks: submit + get all", "s", True)]
ARGS_ROWS = [(f"1 task with {MANY_ARGS:,} ref args", "s", True)]
RETURNS_ROWS = [(f"1 task with {MANY_RETURNS:,} returns, all fetched", "s", True)]
GET_ROWS = [(f"put {MANY_GETS:,} lists of {GET_LEN:,} ints", "s", True),
            (f"get {MANY_GETS:,} refs at once (lists)", "s", True),
            (f"put {MANY_GETS:,} arrays of {GET_LEN:,} int64", "s", True),
            (f"get {MANY_GETS:,} refs at once (numpy arrays)", "s", True)]


def queued_tasks(add):
    @ray.remote
    def nothing():
        return None

    refs = []
    started = time.perf_counter()
    for _ in range(QUEUED_TASKS):
        refs.append(nothing.remote())
    submitted = time.perf_counter() - started
    results = ray.get(refs)
    total = time.perf_counter() - started
    assert len(results) == QUEUED_TASKS and all(r is None for r in results)
    add(QUEUED_ROWS[0][0], "s", submitted)
    add(QUEUED_ROWS[1][0], "s", total)


def many_args(add):
    @ray.remote
    def total(*arrays):
        return int(sum(int(a.sum()) for a in arrays))

    refs = [ray.put(np.ones(ARG_LEN, dtype=np.int64)) for _ in range(MANY_ARGS)]
    result, elapsed = timed(lambda: ray.get(total.remote(*refs)))
    assert result == MANY_ARGS * ARG_LEN, result
    add(ARGS_ROWS[0][0], "s", elapsed)


def many_returns(add):
    @ray.remote(num_returns=MANY_RETURNS)
    def values():
        return tuple(list(range(RETURN_LEN)) for _ in range(MANY_RETURNS))

    def run():
        refs = values.remote()
        assert len(refs) == MANY_RETURNS
        return ray.get(refs)

    results, elapsed = timed(run)
    expected = list(range(RETURN_LEN))
    assert len(results) == MANY_RETURNS and all(r == expected for r in results)
    add(RETURNS_ROWS[0][0], "s", elapsed)


def many_gets(add):
    expected = list(range(GET_LEN))
    refs, elapsed = timed(lambda: [ray.put(list(range(GET_LEN))) for _ in range(MANY_GETS)])
    add(GET_ROWS[0][0], "s", elapsed)
    results, elapsed = timed(lambda: ray.get(refs))
    assert len(results) == MANY_GETS and all(r == expected for r in results)
    add(GET_ROWS[1][0], "s", elapsed)
    del refs, results
    gc.collect()

    expected = np.arange(GET_LEN)
    refs, elapsed = timed(lambda: [ray.put(np.arange(GET_LEN)) for _ in range(MANY_GETS)])
    add(GET_ROWS[2][0], "s", elapsed)
    results, elapsed = timed(lambda: ray.get(refs))
    assert len(results) == MANY_GETS and all((r == expected).all() for r in results)
    add(GET_ROWS[3][0], "s", elapsed)


def warm_up():
    @ray.remote
    def nothing():
        return None

    ray.get([nothing.remote() for _ in range(100)])


def init_kwargs(backend, **kwargs):
    if backend == "ray":
        kwargs["_node_ip_address"] = "127.0.0.1"
    return kwargs


def single_node_rows(backend, report, timeout):
    measures = [(QUEUED_ROWS, queued_tasks), (ARGS_ROWS, many_args),
                (RETURNS_ROWS, many_returns), (GET_ROWS, many_gets)]
    try:
        with time_limit(timeout):
            ray.init(**init_kwargs(backend, num_cpus=NUM_CPUS))
            warm_up()
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc()
        for planned, _ in measures:
            for name, unit, lower in planned:
                report.add(name, unit, 0.0, lower, f"backend did not start: {exc}")
        ray.shutdown()
        return
    try:
        for planned, fn in measures:
            report.measure(planned, fn, timeout)
    finally:
        ray.shutdown()


# --------------------------------------------------------------------------
# Row 5: a 4 GiB object
# --------------------------------------------------------------------------

LARGE = f"{LARGE_BYTES // GIB} GiB object"
LARGE_LOCAL_ROWS = [(f"{LARGE}: put", "GB/s", False),
                    (f"{LARGE}: get, same driver", "GB/s", False)]
LARGE_TRANSFER_ROWS = [(f"{LARGE}: cross-node transfer", "GB/s", False)]


def large_local(backend, report, timeout):
    def run(add):
        ray.init(**init_kwargs(backend, num_cpus=NUM_CPUS, object_store_memory=STORE_BYTES))
        try:
            array = np.ones(LARGE_BYTES // 8, dtype=np.int64)
            ref, elapsed = timed(functools.partial(ray.put, array))
            add(LARGE_LOCAL_ROWS[0][0], "GB/s", LARGE_BYTES / 1e9 / elapsed, False)
            del array
            gc.collect()
            got, elapsed = timed(functools.partial(ray.get, ref))
            assert got.shape == (LARGE_BYTES // 8,) and got[0] == 1 and got[-1] == 1
            add(LARGE_LOCAL_ROWS[1][0], "GB/s", LARGE_BYTES / 1e9 / elapsed, False)
            del got, ref
        finally:
            gc.collect()
            ray.shutdown()

    report.measure(LARGE_LOCAL_ROWS, run, timeout)


def large_transfer(backend, report, timeout):
    cluster_utils = importlib.import_module(f"{backend}.cluster_utils")
    cluster = None

    def run(add):
        nonlocal cluster
        cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={
            "num_cpus": 1, "object_store_memory": STORE_BYTES})
        cluster.add_node(num_cpus=1, resources={"second": 1},
                         object_store_memory=STORE_BYTES)
        ray.init(address=cluster.address)

        @ray.remote(resources={"second": 1})
        def make():
            return np.ones(LARGE_BYTES // 8, dtype=np.int64)

        ref = make.remote()
        ray.wait([ref], fetch_local=False)
        got, elapsed = timed(functools.partial(ray.get, ref))
        assert got.shape == (LARGE_BYTES // 8,) and got[0] == 1 and got[-1] == 1
        add(LARGE_TRANSFER_ROWS[0][0], "GB/s", LARGE_BYTES / 1e9 / elapsed, False)
        del got, ref

    try:
        report.measure(LARGE_TRANSFER_ROWS, run, timeout)
    finally:
        gc.collect()
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()


def main():
    global ray
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["ray", "raggio"], required=True)
    parser.add_argument("--json")
    parser.add_argument("--row-timeout", type=int, default=600)
    args = parser.parse_args()
    ray = importlib.import_module(args.backend)
    report = Report()
    started = time.perf_counter()
    single_node_rows(args.backend, report, args.row_timeout)
    large_local(args.backend, report, args.row_timeout)
    large_transfer(args.backend, report, args.row_timeout)
    print(f"whole run: {time.perf_counter() - started:.1f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"backend": args.backend, "version": ray.__version__, "quick": False,
                       "rows": report.rows}, f, indent=1)
    return 1 if any(r["error"] for r in report.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
