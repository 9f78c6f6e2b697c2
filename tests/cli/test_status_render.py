"""``raggio status``'s text, rendered from plain node records (no cluster).

A record has the shape the control store's ``get_nodes`` returns: what the
node manager registered (``register_node``), plus ``state``, ``available``,
``demand`` and ``object_store_used`` from its reports, and ``end_time`` once
it died.
"""

import datetime
import json

import pytest

from raggio.cluster_status import format_bytes, render
from raggio.common import autoscaler_status
from raggio.common.resources import why_waiting

GiB, MiB = 1024**3, 1024**2
NOW = datetime.datetime(2024, 5, 6, 7, 8, 9)


def record(node_id: bytes, resources: dict, *, available: dict | None = None,
           is_head: bool = False, state: str = "ALIVE", demand: list | None = None,
           object_store_used: int = 0, end_time: float | None = None) -> dict:
    resources = {"node:127.0.0.1": 1.0, **resources}
    rec = {
        "node_id": node_id, "address": "127.0.0.1:40000", "local_address": "/tmp/x.sock",
        "node_ip": "127.0.0.1", "hostname": "host", "resources": resources,
        "object_store_memory": resources.get("object_store_memory", 0),
        "arena_path": "/dev/shm/raggio-x", "is_head": is_head, "session_dir": "/tmp/s",
        "labels": {}, "state": state, "start_time": 1.0,
        "available": dict(resources) if available is None else available,
        "demand": demand or [], "object_store_used": object_store_used,
    }
    if end_time is not None:
        rec["end_time"] = end_time
    return rec


def demand(resources: dict) -> dict:
    return {"resources": resources, "for_actor": None, "infeasible": False}


HEAD, WORKER, DEAD = b"\x01" * 28, b"\x02" * 28, b"\x03" * 28


def section(text: str, title: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(title + ":") + 1
    out = []
    for line in lines[start:]:
        if not line.startswith(" "):
            break
        out.append(line.strip())
    return out


def test_one_idle_head():
    nodes = [record(HEAD, {"CPU": 2.0, "memory": 4 * GiB, "object_store_memory": 1 * GiB},
                    is_head=True)]
    text = render(nodes, {}, now=NOW)
    assert text.splitlines()[0] == f"======== Cluster status: {NOW} ========"
    assert section(text, "Active") == [f"1 node_{HEAD.hex()} (head)"]
    assert section(text, "Recent failures") == ["(no failures)"]
    assert section(text, "Total Usage") == [
        "0.0/2.0 CPU", "0B/4.00GiB memory", "0B/1.00GiB object_store_memory"]
    assert section(text, "Pending Demands") == ["(no resource demands)"]


def test_the_dashboard_is_the_last_line_when_the_cluster_runs_one():
    nodes = [record(HEAD, {"CPU": 2.0}, is_head=True)]
    without = render(nodes, {}, now=NOW)
    text = render(nodes, {}, now=NOW, dashboard_url="http://127.0.0.1:8265")
    assert text.startswith(without + "\n\n")  # Ray's layout above it is unchanged
    assert text.splitlines()[-1].startswith("Dashboard: http://127.0.0.1:8265 ")
    assert "Dashboard" not in without


def test_usage_is_summed_over_live_nodes_only():
    nodes = [
        record(HEAD, {"CPU": 2.0, "object_store_memory": 1 * GiB}, is_head=True,
               available={"CPU": 0.5, "object_store_memory": 1 * GiB},
               object_store_used=3 * MiB),
        record(WORKER, {"CPU": 4.0, "GPU": 1.0, "special": 2.0},
               available={"CPU": 4.0, "GPU": 0.0, "special": 1.0}),
        record(DEAD, {"CPU": 64.0}, state="DEAD", end_time=0.0),
    ]
    text = render(nodes, {}, now=NOW)
    assert section(text, "Active") == [f"1 node_{HEAD.hex()} (head)", f"1 node_{WORKER.hex()}"]
    # CPU and GPU first, then custom resources, then byte amounts; no node:<ip> keys.
    assert section(text, "Total Usage") == [
        "1.5/6.0 CPU", "1.0/1.0 GPU", "1.0/2.0 special", "3.00MiB/1.00GiB object_store_memory"]
    failures = section(text, "Recent failures")
    assert len(failures) == 1
    assert failures[0].startswith(f"node_{DEAD.hex()} (127.0.0.1): lost at ")


def test_a_draining_node_says_why_and_a_drained_one_too():
    draining = dict(record(WORKER, {"CPU": 2.0}), draining="removed by the autoscaler: idle")
    drained = dict(record(DEAD, {"CPU": 2.0}, state="DEAD", end_time=0.0),
                   death_reason="drained: spot instance reclaimed")
    text = render([record(HEAD, {"CPU": 2.0}, is_head=True), draining, drained], now=NOW)
    assert section(text, "Active")[1] == (
        f"1 node_{WORKER.hex()} (draining: removed by the autoscaler: idle)")
    assert section(text, "Recent failures")[0].endswith("(drained: spot instance reclaimed)")


def test_no_nodes():
    text = render([record(DEAD, {"CPU": 1.0}, state="DEAD", end_time=0.0)], now=NOW)
    assert section(text, "Active") == ["(no active nodes)"]
    assert section(text, "Total Usage") == ["(no resources)"]
    assert section(text, "Pending Demands") == ["(no resource demands)"]


def test_demands_are_counted_by_shape_with_why_they_wait():
    busy = {"CPU": 0.0}
    nodes = [
        record(HEAD, {"CPU": 2.0}, available=busy, is_head=True,
               demand=[demand({"CPU": 1.0}), demand({"CPU": 1.0, "GPU": 1.0})]),
        record(WORKER, {"CPU": 2.0}, available=busy, demand=[demand({"CPU": 1.0})]),
        # A dead node's last demands and resources count for nothing.
        record(DEAD, {"CPU": 2.0, "GPU": 4.0}, state="DEAD", end_time=0.0,
               demand=[demand({"CPU": 1.0})] * 5),
    ]
    lines = section(render(nodes, {}, now=NOW), "Pending Demands")
    assert lines == [
        "{'CPU': 1.0}: 2+ pending tasks/actors "
        "(waiting for resources: every node that fits it is busy)",
        "{'CPU': 1.0, 'GPU': 1.0}: 1+ pending tasks/actors "
        "(infeasible: no node has GPU. Add a node that has it.)",
    ]


def test_pending_placement_groups_are_listed_with_their_reason():
    nodes = [record(HEAD, {"CPU": 2.0}, is_head=True)]
    groups = {
        "aa": {"state": "PENDING", "strategy": "STRICT_SPREAD",
               "bundles": {1: {"CPU": 1.0}, 0: {"CPU": 2.0}},
               "pending_reason": "only 1 node fits a bundle"},
        "bb": {"state": "CREATED", "strategy": "PACK", "bundles": {0: {"CPU": 1.0}},
               "pending_reason": ""},
    }
    lines = section(render(nodes, groups, now=NOW), "Pending Demands")
    assert lines == ["[{'CPU': 2.0}, {'CPU': 1.0}] (STRICT_SPREAD): 1+ pending placement "
                     "groups (only 1 node fits a bundle)"]


@pytest.mark.parametrize("request_, reason", [
    ({"CPU": 1.0}, "waiting for resources: every node that fits it is busy"),
    ({"GPU": 1.0}, "infeasible: no node has GPU. Add a node that has it."),
    ({"CPU": 8.0}, "infeasible: no node has 8 CPU (the most is 4). Add a node that has it."),
    ({"CPU": 8.0, "special": 1.0},
     "infeasible: no node has 8 CPU (the most is 4); no node has special. "
     "Add a node that has it."),
])
def test_pending_reason(request_, reason):
    nodes = [record(HEAD, {"CPU": 2.0}, available={"CPU": 0.0}),
             record(WORKER, {"CPU": 4.0}, available={"CPU": 0.0}),
             record(DEAD, {"CPU": 16.0, "GPU": 8.0, "special": 1.0}, state="DEAD", end_time=0.0)]
    assert why_waiting(request_, nodes) == reason


@pytest.mark.parametrize("n, text", [
    (0, "0B"), (1023, "1023B"), (1024, "1.00KiB"), (3 * MiB // 2, "1.50MiB"),
    (5 * GiB, "5.00GiB"), (3 * 1024**4, "3.00TiB"), (2048 * 1024**4, "2048.00TiB"),
])
def test_format_bytes(n, text):
    assert format_bytes(n) == text


def test_a_demand_no_node_labels_allow_says_so():
    labels = {"hard": [["region", "in", ["asia"]]], "soft": [], "fallback": []}
    nodes = [record(HEAD, {"CPU": 2.0}, is_head=True,
                    demand=[dict(demand({"CPU": 1.0}), labels=labels)])]
    nodes[0]["labels"] = {"region": "us"}
    assert section(render(nodes, {}, now=NOW), "Pending Demands") == [
        "{'CPU': 1.0} with labels region in (asia): 1+ pending tasks/actors (infeasible: no "
        "node that could fit it has labels matching region in (asia). Add a node with those "
        "labels.)"]
    nodes[0]["labels"]["region"] = "asia"  # a node that matches, but busy
    nodes[0]["available"] = {"CPU": 0.0}
    assert "every node that fits it is busy" in section(render(nodes, {}, now=NOW),
                                                         "Pending Demands")[0]


def autoscaler_view(age_s: float = 3.0) -> dict:
    """What ``raggio status`` reads: the KV values, as the autoscaler writes them."""
    status = {"time": NOW.timestamp() - age_s, "cluster_name": "demo",
              "running": {"head": 1, "cpu4": 2}, "launching": {"cpu4": 1},
              "idle": {"ab" * 8: 42.0},
              "reasons": ["launching 1 x cpu4: 3 pending {CPU: 2} tasks"]}
    failures = [{"id": "1", "time": NOW.timestamp() - 3600, "node_type": "gpu", "count": 1,
                 "error": "an hour ago"}]
    failures += [{"id": str(i), "time": NOW.timestamp() - 40 + i, "node_type": "gpu",
                  "count": 1, "error": "InsufficientCapacity: no GPU left"} for i in (2, 3)]
    return autoscaler_status.read(json.dumps(status).encode(),
                                  json.dumps([{"CPU": 4}, {"CPU": 4}]).encode(),
                                  json.dumps(failures).encode(), now=NOW.timestamp())


def test_the_autoscalers_view_is_shown_where_ray_shows_it():
    text = render([record(b"\x01" * 28, {"CPU": 2.0}, is_head=True)], now=NOW,
                  autoscaler=autoscaler_view())
    pending = text.split("Pending:\n", 1)[1].split("Recent failures:")[0]
    assert " cpu4, 1 launching" in pending
    failures = text.split("Recent failures:\n", 1)[1].split("\n\n")[0]
    # The same failure twice is one line; an old one is no longer recent.
    [line] = failures.splitlines()
    assert line.startswith(" gpu: launching 1 failed (2 times), last at ") and "no GPU left" in line
    assert "From request_resources:\n {'CPU': 4}: 2 from request_resources" in text
    autoscaler = text.split("Autoscaler\n", 1)[1]
    assert "Cluster 'demo': 2 cpu4, 1 head; last round 3 s ago." in autoscaler
    assert "launching 1 x cpu4: 3 pending {CPU: 2} tasks" in autoscaler
    assert f"node_{'ab' * 8}: idle for 42 s" in autoscaler
    assert "has not reported" not in autoscaler


def test_a_silent_autoscaler_is_called_out():
    text = render([record(b"\x01" * 28, {"CPU": 2.0}, is_head=True)], now=NOW,
                  autoscaler=autoscaler_view(age_s=300))
    assert "has not reported for a minute" in text.split("Autoscaler\n", 1)[1]


def test_without_an_autoscaler_the_sections_say_none():
    text = render([record(b"\x01" * 28, {"CPU": 2.0}, is_head=True)], now=NOW)
    assert "From request_resources:\n (none)" in text
    assert "Autoscaler\n" not in text
