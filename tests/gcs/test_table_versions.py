"""The control store's change counters (``table_versions``), read from a real cluster.

The dashboard's live updates compare two answers to learn which tables changed, so each
counter must grow with every change its pages show (a job starting, an actor created and
killed, a task run, a placement group placed and removed, a node joining and leaving) and
stay put while nothing happens, so that an idle cluster's pages do not refetch.
"""

from __future__ import annotations

import time

import raggio as ray
from raggio.core.one_shot import query_control_store
from raggio.test_utils import wait_until
from raggio.util import placement_group, remove_placement_group


@ray.remote(num_cpus=0)
class Pinger:
    def ping(self):
        return "pong"


@ray.remote(num_cpus=0)
def one():
    return 1


def _versions(address: str) -> dict:
    (reply,) = query_control_store(address, [("table_versions", None)])
    return reply


def _grows(address: str, table: str, before: dict, what: str) -> dict:
    """The counters once ``table``'s is past ``before``'s (changes may be counted a little
    after the call that caused them returns: a node's report, a worker's task events)."""
    def grown():
        now = _versions(address)
        return now if now[table] > before[table] else None
    return wait_until(grown, timeout_s=20, what=f"the {table} counter to grow after {what}")


def test_each_table_s_counter_grows_with_its_changes_and_rests_when_idle(ray_start_cluster):
    cluster = ray_start_cluster
    cluster.add_node(num_cpus=1)
    address = cluster.address
    start = _versions(address)

    ray.init(address=address)
    after_job = _grows(address, "jobs", start, "a driver connected")

    pinger = Pinger.remote()
    assert ray.get(pinger.ping.remote()) == "pong"
    after_actor = _grows(address, "actors", after_job, "an actor was created")
    ray.kill(pinger)
    _grows(address, "actors", after_actor, "the actor was killed")

    before_task = _versions(address)
    assert ray.get(one.remote()) == 1
    _grows(address, "tasks", before_task, "a task ran")

    before_group = _versions(address)
    group = placement_group([{"CPU": 1}])
    ray.get(group.ready(), timeout=20)
    after_group = _grows(address, "placement_groups", before_group, "a group was placed")
    remove_placement_group(group)
    _grows(address, "placement_groups", after_group, "the group was removed")

    before_node = _versions(address)
    node = cluster.add_node(num_cpus=1)
    after_node = _grows(address, "nodes", before_node, "a node joined")
    cluster.remove_node(node)
    _grows(address, "nodes", after_node, "the node left")

    def at_rest():  # nothing happens now: two readings apart are the same
        first = _versions(address)
        time.sleep(1.0)
        return first == _versions(address)

    wait_until(at_rest, timeout_s=20, what="the counters to rest while the cluster is idle")
    assert _versions(address)["epoch"] == start["epoch"]
