"""What metrics cost the microbenchmark's task and actor rows: metrics off vs on.

    python bench/metrics_overhead.py [--rounds 3] [--scrape-period 2.5]

"Off" runs the rows with ``RAGGIO_ENABLE_METRICS_COLLECTION=0`` (no endpoint,
no application-metric reports). "On" runs them with metrics on, a scraper
process reading every node's endpoint every ``--scrape-period`` seconds (twice
what a dashboard and a Prometheus at 5 s do together), and the timed functions
recording a Counter per call, as an instrumented application would. Each run is
a fresh process (``--child``); the modes alternate, which one goes first
alternating by round, and the table gives each row's median over the rounds
and on/off, in ops/s and in CPU time per op of every process of the cluster
(driver, head, workers; the scraper's own process is not counted, as a
Prometheus's would not be). On a shared VM the wall-clock rate of one run can
be half or twice the next one's; CPU per op is the steadier measure. The
issue's bar: the task and actor rows lose under 3%.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request

import psutil

ROWS = ("single client tasks sync", "single client tasks async",
        "1:1 actor calls sync", "1:1 actor calls async", "n:n actor calls async")
RESULT = "METRICS_OVERHEAD "


def scrape_forever(targets: list[str], token: str, period_s: float) -> None:
    """Scrape ``targets`` (host:port) every ``period_s`` until killed (its own process, as
    a Prometheus would be: the benchmark's driver does not pay for the scrapes)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while True:
        time.sleep(period_s)
        for target in targets:
            request = urllib.request.Request(f"http://{target}/metrics",
                                             headers={"Authorization": f"Bearer {token}"})
            opener.open(request, timeout=10).read()


def _tree_cpu_s() -> float:
    """CPU seconds (user + system) of this process and every process under it: the driver,
    the head and its workers."""
    total = 0.0
    me = psutil.Process()
    for process in [me, *me.children(recursive=True)]:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def child(mode: str, scrape_period_s: float) -> None:
    os.environ["RAGGIO_ENABLE_METRICS_COLLECTION"] = "1" if mode == "on" else "0"
    from raggio import microbenchmark
    microbenchmark.ROWS = [row for row in microbenchmark.ROWS if row[0] in ROWS]
    scraper, cpu_per_op = [], []
    timed, define = microbenchmark.throughput, microbenchmark.define_remotes
    record = lambda *args, **kwargs: None  # noqa: E731 (metrics off: nothing to record)
    if mode == "on":
        from raggio.util.metrics import Counter
        calls = Counter("bench_calls", "Calls the benchmark made.", tag_keys=("row",))
        record = lambda ops: calls.inc(ops, tags={"row": "any"})  # noqa: E731

    def measured(fn, ops_per_call, duration):
        made = [0]

        def fn_and_count():
            fn()
            made[0] += ops_per_call
            record(ops_per_call)
        before = _tree_cpu_s()
        value = timed(fn_and_count, ops_per_call, duration)
        cpu_per_op.append((_tree_cpu_s() - before) / made[0])
        return value

    def define_and_scrape(backend):  # right after init(): the cluster's endpoints
        if mode == "on":
            import raggio
            from raggio.core import context
            targets = [f"{n['NodeManagerAddress']}:{n['MetricsExportPort']}"
                       for n in raggio.nodes()]
            scraper.append(subprocess.Popen([sys.executable, __file__, "--scrape",
                                             json.dumps([targets, context.get_core().token]),
                                             "--scrape-period", str(scrape_period_s)]))
        return define(backend)
    microbenchmark.throughput = measured
    microbenchmark.define_remotes = define_and_scrape
    results = {}

    def report(name, unit, value, error):
        results[name] = [value, cpu_per_op[-1] if value is not None else None]
    args = argparse.Namespace(filter="", group=None, quick=False, row_timeout=300)
    try:
        microbenchmark.run_rows("raggio", args, report)
    finally:
        for process in scraper:
            process.kill()
    print(RESULT + json.dumps(results), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scrape-period", type=float, default=2.5)
    parser.add_argument("--child", choices=("on", "off"))
    parser.add_argument("--scrape", help="(internal) JSON [targets, token]: scrape them")
    args = parser.parse_args()
    if args.scrape:
        scrape_forever(*json.loads(args.scrape), args.scrape_period)
        return
    if args.child:
        child(args.child, args.scrape_period)
        return
    runs: dict[str, dict[str, list]] = {"off": {}, "on": {}}
    for index in range(args.rounds):
        for mode in (("off", "on") if index % 2 == 0 else ("on", "off")):
            out = subprocess.run([sys.executable, __file__, "--child", mode,
                                  "--scrape-period", str(args.scrape_period)],
                                 capture_output=True, text=True, check=True).stdout
            line = next(l for l in out.splitlines() if l.startswith(RESULT))
            for row, value in json.loads(line[len(RESULT):]).items():
                runs[mode].setdefault(row, []).append(value)
            print(f"round {index + 1} {mode}: done", file=sys.stderr)
    print(f"{'row':<32} {'off ops/s':>10} {'on ops/s':>10} {'on/off':>7}"
          f" {'off CPU us/op':>14} {'on CPU us/op':>13} {'on/off':>7}")
    for row in ROWS:
        (off, off_cpu), (on, on_cpu) = (
            [statistics.median(run[i] for run in runs[m][row]) for i in (0, 1)]
            for m in ("off", "on"))
        print(f"{row:<32} {off:>10.0f} {on:>10.0f} {on / off:>7.3f}"
              f" {off_cpu * 1e6:>14.1f} {on_cpu * 1e6:>13.1f} {on_cpu / off_cpu:>7.3f}")


if __name__ == "__main__":
    main()
