"""What the dashboard's metric history (``raggio/dashboard/metrics_history.py``) holds after
an hour, and what a round of it costs.

Usage: python bench/metrics_history_bench.py [--nodes 3] [--functions 10] [--actors 20]

Starts a ``--nodes`` node cluster (one CPU each), runs ``--functions`` distinct task
functions and ``--actors`` actors and records an application counter and histogram (so
that ``ray_tasks``, ``ray_actors``, the workers' ``ray_component_*`` and the
application's series are there, as in a cluster at work), then scrapes each node's
endpoint once, as the dashboard does. Then feeds a ``History`` one hour of rounds (720 at
5 s) of those texts, parsed afresh each round, under tracemalloc, and prints the series
count and the memory traced against the history's own estimate (``memory_bytes``, which
``/api/ui/metrics`` reports); and, apart and without tracemalloc, the median time to parse
one node's text and to record a round.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

import raggio as ray
from raggio import cluster_file
from raggio.cluster_utils import Cluster
from raggio.dashboard.metrics_history import POINTS, History
from raggio.util.metrics import Counter, Histogram

TIMED_ROUNDS = 50
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _task(i: int):
    def work():
        Counter("bench_requests", "Requests.", ("route",)).inc(tags={"route": f"/r{i % 3}"})
        Histogram("bench_latency_s", "Latency.", [0.01, 0.1, 1], ("route",)).observe(
            0.05, tags={"route": f"/r{i % 3}"})
    work.__name__ = work.__qualname__ = f"work_{i}"
    return ray.remote(num_cpus=0)(work)


@ray.remote(num_cpus=0)
class Holder:
    def ping(self):
        return 1


def scrape_texts(args) -> list[str]:
    cluster = Cluster()
    for _ in range(args.nodes):
        cluster.add_node(num_cpus=1, object_store_memory=80 * 2**20)
    try:
        ray.init(address=cluster.address)
        ray.get([_task(i).remote() for i in range(args.functions)])
        actors = [Holder.remote() for _ in range(args.actors)]
        ray.get([a.ping.remote() for a in actors])
        time.sleep(3)  # the processes report their metrics every 2 s
        token = cluster_file.known_token(cluster.address)
        texts = []
        for node in ray.nodes():
            request = urllib.request.Request(
                f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics",
                headers={"Authorization": f"Bearer {token}"})
            with _OPENER.open(request, timeout=30) as answer:
                texts.append(answer.read().decode())
        ray.shutdown()
        return texts
    finally:
        cluster.shutdown()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--functions", type=int, default=10)
    parser.add_argument("--actors", type=int, default=20)
    args = parser.parse_args()
    texts = scrape_texts(args)
    nodes = [f"{i:02x}" * 28 for i in range(len(texts))]
    parse_ms, record_ms = [], []
    timed = History()
    for r in range(TIMED_ROUNDS):  # timed apart: tracemalloc slows Python several times
        began = time.perf_counter()
        families = {node: list(text_string_to_metric_families(text))
                    for node, text in zip(nodes, texts)}
        parsed = time.perf_counter()
        timed.record(5.0 * r, families)
        parse_ms.append((parsed - began) * 1000 / len(texts))
        record_ms.append((time.perf_counter() - parsed) * 1000)
    tracemalloc.start()
    history = History()
    start = time.time() - POINTS * 5
    for r in range(POINTS):
        history.record(start + 5 * r, {node: text_string_to_metric_families(text)
                                       for node, text in zip(nodes, texts)})
    traced, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{len(texts)} nodes, {sum(t.count(chr(10)) for t in texts)} exposition lines, "
          f"{len(history)} series, {history.round + 1} rounds")
    print(f"memory traced after the hour: {traced / 2**20:.2f} MiB; the history's estimate "
          f"(memory_bytes): {history.memory_bytes() / 2**20:.2f} MiB")
    print(f"median of {TIMED_ROUNDS} rounds: parse {statistics.median(parse_ms):.1f} ms a node, "
          f"record {statistics.median(record_ms):.1f} ms a round")


if __name__ == "__main__":
    main()
