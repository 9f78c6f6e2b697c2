"""The dashboard's web UI under a long history: server times of its pages' requests.

Usage: python bench/dashboard_ui_bench.py [--tasks 10000] [--actors 1000] [--repeat 10]

Starts a one-node cluster whose head runs the dashboard (2 CPUs, as ``raggio start
--head`` has it), runs ``--tasks`` trivial tasks and creates and kills ``--actors``
actors (the history the issue asks the UI to stay responsive with), then times each
request a page makes, ``--repeat`` times, on loopback with the cluster token: the
Tasks page (first page, a deep page, a state filter, a name filter), an actor's page
with its calls, the Actors page, the Overview, and Ray's ``/api/v0/tasks?limit=100``
beside them (unfiltered, filtered by state, which the control store filters, and by name,
which the dashboard filters over every row) and ``/api/v0/tasks/summarize``; and one round of the live stream's poller (``live.Poller.poll_once``, run
here against the same control store), which runs every second while a page is open.
Prints median and worst milliseconds per row. raggio only: Ray's dashboard has no such
pages to compare with (its UI fetches ``/api/v0/tasks`` whole).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import urllib.request

import raggio as ray
from raggio import cluster_file
from raggio.config import get_config
from raggio.dashboard.control_store import ControlStore
from raggio.dashboard.live import Poller
from raggio.launch import wait_ready
from raggio.node_spec import NodeSpec

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@ray.remote(num_cpus=0)
def noop(i):
    return i


@ray.remote(num_cpus=0)
class Idle:
    def ping(self):
        return 1


def fill(tasks: int, actors: int) -> str:
    """Run the tasks and the actors' lives; the id of the last actor."""
    for start in range(0, tasks, 1000):
        ray.get([noop.remote(i) for i in range(start, min(tasks, start + 1000))])
    last = None
    for start in range(0, actors, 100):
        batch = [Idle.remote() for _ in range(min(100, actors - start))]
        ray.get([actor.ping.remote() for actor in batch])
        for actor in batch:
            ray.kill(actor)
        last = batch[-1]
    return last._actor_id.hex()


def timed_get(url: str, token: str, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        with _OPENER.open(urllib.request.Request(
                url, headers={"Authorization": f"Bearer {token}"}), timeout=60) as response:
            response.read()
            assert response.status == 200, (url, response.status)
        times.append((time.perf_counter() - started) * 1000)
    return times


def poller_round(gcs_address: str, token: str, repeat: int) -> list[float]:
    async def run():
        store = ControlStore(gcs_address, token)
        poller = Poller(store)
        times = []
        try:
            for _ in range(repeat):
                started = time.perf_counter()
                assert await poller.poll_once()
                times.append((time.perf_counter() - started) * 1000)
        finally:
            store.close()
        return times
    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--actors", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()

    head = NodeSpec(head=True, include_dashboard=True, dashboard_port=0, tied=True,
                    num_cpus=2).start_process()
    ready = wait_ready(head, get_config().head_start_timeout_s, "raggio head")
    url, token, gcs_address = ready["dashboard_url"], ready["token"], ready["gcs_address"]
    cluster_file.remember_token(gcs_address, token)
    try:
        ray.init(address=gcs_address)
        started = time.perf_counter()
        actor_id = fill(args.tasks, args.actors)
        print(f"history: {args.tasks:,} tasks and {args.actors:,} actors in "
              f"{time.perf_counter() - started:.0f} s")
        rows = [
            ("Tasks page, newest 50", "/api/ui/tasks?limit=50"),
            ("Tasks page, attempts 9,001-9,050", "/api/ui/tasks?limit=50&offset=9000"),
            ("Tasks page, state=FINISHED", "/api/ui/tasks?limit=50&state=FINISHED"),
            ("Tasks page, name contains 'noop'", "/api/ui/tasks?limit=50&name=noop"),
            ("an actor's page (its calls)", f"/api/ui/actors/{actor_id}"),
            ("Actors page, first 50", "/api/ui/actors?limit=50"),
            ("Overview", "/api/ui/overview"),
            ("Ray's /api/v0/tasks?limit=100", "/api/v0/tasks?limit=100"),
            ("Ray's /api/v0/tasks, state=FINISHED", "/api/v0/tasks?limit=100&filter_keys="
             "state&filter_predicates=%3D&filter_values=FINISHED"),
            ("Ray's /api/v0/tasks, name=noop", "/api/v0/tasks?limit=100&filter_keys=name"
             "&filter_predicates=%3D&filter_values=noop"),
            ("Ray's /api/v0/tasks/summarize", "/api/v0/tasks/summarize"),
        ]
        print(f"{'request':<40} {'median ms':>10} {'worst ms':>10}")
        for name, path in rows:
            times = timed_get(url + path, token, args.repeat)
            print(f"{name:<40} {statistics.median(times):>10.1f} {max(times):>10.1f}")
        times = poller_round(gcs_address, token, args.repeat)
        print(f"{'live poller, one round':<40} {statistics.median(times):>10.1f} "
              f"{max(times):>10.1f}")
    finally:
        ray.shutdown()
        head.stdin.close()
        head.wait(timeout=30)


if __name__ == "__main__":
    main()
