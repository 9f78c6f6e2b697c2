"""What metrics cost the microbenchmark's task and actor rows: metrics off vs on.

    python bench/metrics_overhead.py [--rounds 3] [--scrape-period 2.5]

"Off" runs the rows with ``RAGGIO_ENABLE_METRICS_COLLECTION=0`` (no endpoint,
no application-metric reports). "On" runs them with metrics on, a scraper
reading every node's endpoint every ``--scrape-period`` seconds (twice what a
dashboard and a Prometheus at 5 s do together), and the timed functions
recording a Counter per call, as an instrumented application would. Each run is
a fresh process (``--child``); the modes alternate, which one goes first
alternating by round, and the table gives each row's median over the rounds
and on/off. The issue's bar: the task and actor rows lose under 3%.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

ROWS = ("single client tasks sync", "single client tasks async",
        "1:1 actor calls sync", "1:1 actor calls async", "n:n actor calls async")
RESULT = "METRICS_OVERHEAD "


def _scrape_forever(period_s: float) -> None:
    """Scrape every node's endpoint while the benchmark's cluster is up (child, mode on)."""
    import raggio
    from raggio.core import context
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while True:
        time.sleep(period_s)
        if not raggio.is_initialized():
            continue
        try:
            token = context.get_core().token
            for node in raggio.nodes():
                request = urllib.request.Request(
                    f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics",
                    headers={"Authorization": f"Bearer {token}"})
                opener.open(request, timeout=10).read()
        except Exception as exc:  # noqa: BLE001 (the cluster went between two rows)
            print(f"scrape failed: {exc!r}", file=sys.stderr)


def child(mode: str, scrape_period_s: float) -> None:
    os.environ["RAGGIO_ENABLE_METRICS_COLLECTION"] = "1" if mode == "on" else "0"
    from raggio import microbenchmark
    if mode == "on":
        from raggio.util.metrics import Counter
        calls = Counter("bench_calls", "Calls the benchmark made.", tag_keys=("row",))
        timed = microbenchmark.throughput

        def counted(fn, ops_per_call, duration):
            def fn_and_count():
                fn()
                calls.inc(ops_per_call, tags={"row": "any"})
            return timed(fn_and_count, ops_per_call, duration)
        microbenchmark.throughput = counted
        threading.Thread(target=_scrape_forever, args=(scrape_period_s,), daemon=True).start()
    results = {}
    for row in ROWS:
        args = argparse.Namespace(filter=row, group=None, quick=False, row_timeout=300)
        microbenchmark.run_rows("raggio", args,
                                lambda name, unit, value, error: results.__setitem__(name, value))
    print(RESULT + json.dumps(results), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scrape-period", type=float, default=2.5)
    parser.add_argument("--child", choices=("on", "off"))
    args = parser.parse_args()
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
    print(f"{'row':<32} {'off ops/s':>10} {'on ops/s':>10} {'on/off':>7}")
    for row in ROWS:
        off, on = (statistics.median(runs[m][row]) for m in ("off", "on"))
        print(f"{row:<32} {off:>10.0f} {on:>10.0f} {on / off:>7.3f}")


if __name__ == "__main__":
    main()
