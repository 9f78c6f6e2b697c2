"""CPU a scrape of the head node's metrics endpoint costs the head process.

    python bench/metrics_scrape_cost.py [--tasks 20000] [--scrapes 40]

Starts a private cluster (``init(num_cpus=2)``: the control store and the head
node in one process), runs ``--tasks`` tasks so that the task history is not
empty, measures the head process's idle CPU for 5 s, then scrapes its endpoint
``--scrapes`` times and prints the head's CPU per scrape (less its idle use),
the size of the text, and what two scrapers at 5 s (a dashboard and a
Prometheus) cost as a share of one core.
"""

import argparse
import time
import urllib.request

import psutil

import raggio as ray
from raggio.core import context


def cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--scrapes", type=int, default=40)
    args = parser.parse_args()
    ray.init(num_cpus=2)
    try:
        @ray.remote
        def nothing():
            return 1
        ray.get([nothing.remote() for _ in range(args.tasks)])
        node = ray.nodes()[0]
        request = urllib.request.Request(
            f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics",
            headers={"Authorization": f"Bearer {context.get_core().token}"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        opener.open(request).read()  # starts the endpoint's thread
        head = next(p for p in psutil.Process().children()
                    if "raggio.head" in " ".join(p.cmdline()))
        time.sleep(2)
        before = cpu_s(head)
        time.sleep(5)
        idle_per_s = (cpu_s(head) - before) / 5
        before, started = cpu_s(head), time.monotonic()
        for _ in range(args.scrapes):
            body = opener.open(request).read()
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        per_scrape = (cpu_s(head) - before - idle_per_s * elapsed) / args.scrapes
        print(f"head CPU per scrape: {per_scrape * 1000:.1f} ms ({len(body)} bytes of text); "
              f"idle head: {idle_per_s * 1000:.1f} ms/s; two scrapers at 5 s: "
              f"{per_scrape * 2 / 5 * 100:.2f}% of a core")
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
