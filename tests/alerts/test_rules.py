"""The rules and the gate, with plain records shaped as the control store answers them:
what holds, what is sent once, and what the rate limit holds back and reports."""

from __future__ import annotations

from raggio.alerts import rules
from raggio.alerts.gate import AlertGate

NODE = b"\x01" * 28
OTHER = b"\x02" * 28


def node(node_id=NODE, state="ALIVE", end_time=0.0, **extra) -> dict:
    return {"node_id": node_id, "node_ip": "10.0.0.5", "state": state, "end_time": end_time,
            "is_head": False, "resources": {"CPU": 4.0}, "address": "10.0.0.5:1", **extra}


def actor(state="DEAD", end_time=100.0, killed=False, creation_error=None, **extra) -> dict:
    return {"actor_id": b"\xaa" * 16, "state": state, "end_time": end_time, "killed": killed,
            "creation_error": creation_error, "class_name": "Worker", "name": "w",
            "namespace": "ns", "num_restarts": 2, "death_cause": "its node died.",
            "node_id": NODE, "pid": 42, **extra}


def task(state: str, end_time: float, number: int = 0) -> dict:
    return {"task_id": number.to_bytes(24, "big"), "state": state, "end_time": end_time,
            "info": {"name": f"f{number}"}, "error_type": "TASK_EXECUTION_EXCEPTION"
            if state == "FAILED" else None}


def test_a_node_that_died_after_the_watermark_alerts_once_with_its_reason():
    nodes = [node(), node(OTHER, "DEAD", 50.0, death_reason="old"),
             node(NODE[::-1], "DEAD", 150.0, death_reason="health checks failed")]
    (alert,) = rules.node_died(nodes, since=100.0)
    assert alert.key == f"node_died:{(NODE[::-1]).hex()}"
    assert alert.message == f"Node 10.0.0.5 ({NODE[::-1].hex()[:8]}) died: health checks failed."
    assert (alert.severity, alert.time, alert.node) == ("critical", 150.0, NODE[::-1].hex())


def test_a_node_drained_and_removed_on_purpose_does_not_alert():
    # The autoscaler's scale-down: drained (its objects moved), then stopped.
    drained = node(state="DEAD", end_time=150.0, drained=True,
                   death_reason="drained: removed by the autoscaler: idle for 60 s")
    assert rules.node_died([drained], since=100.0) == []


def test_an_actor_alerts_only_when_it_died_for_good_and_not_on_purpose():
    assert len(rules.actor_died([actor()], since=0)) == 1
    assert rules.actor_died([actor(killed=True)], since=0) == []  # raggio.kill, owner's end
    assert rules.actor_died([actor(state="RESTARTING")], since=0) == []
    assert rules.actor_died([actor(end_time=5.0)], since=10.0) == []
    # __init__ raised: the actor is marked ended on purpose, but it is a failure.
    (alert,) = rules.actor_died([actor(killed=True, creation_error=b"...")], since=0)
    assert alert.message.startswith("Actor Worker 'w' (aaaaaaaa) died for good")


def test_a_job_alerts_when_it_ended_failed():
    jobs = [{"job_id": 3, "status": "FAILED", "message": "exit code 1", "end_time": 9.0,
             "entrypoint": "python x.py", "is_dead": True},
            {"job_id": 4, "status": "SUCCEEDED", "end_time": 9.0, "is_dead": True},
            {"job_id": 5, "is_dead": True, "end_time": 9.0}]  # a driver's own job
    (alert,) = rules.job_failed(jobs, since=1.0)
    assert alert.message == "Job 00000003 failed: exit code 1"


def test_the_task_failure_rate_needs_enough_endings_within_the_window():
    now = 1000.0
    recent = [task("FAILED", now - 10, n) for n in range(3)] + [
        task("FINISHED", now - 10, n) for n in range(3, 10)]
    old = [task("FAILED", now - 400, n) for n in range(10, 30)]
    running = [task("RUNNING", None, 31)]
    args = dict(threshold=0.2, window_s=300, min_tasks=10)
    (alert,) = rules.task_failure_rate(recent + old + running, now, **args)
    assert alert.details["failed"] == 3 and alert.details["ended"] == 10
    assert alert.message == ("3 of the last 10 task attempts that ended within 300 s failed "
                             "(30%, above 20%).")
    assert rules.task_failure_rate(recent[:9], now, **args) == []  # 9 < min_tasks
    assert rules.task_failure_rate(recent, now, **dict(args, threshold=0.3)) == []


def test_a_store_alerts_when_nearly_full_and_when_it_spilled_since_the_last_look():
    stats = {"capacity_bytes": 100 * 2**20, "used_bytes": 95 * 2**20, "num_spilled": 0,
             "spilled_bytes_total": 0}
    (full,) = rules.object_store(node(), stats, None, 0.9, True, now=1.0)
    assert full.key == f"object_store_full:{NODE.hex()}"
    assert "is 95% full (95 of 100 MiB)" in full.message
    spilled = dict(stats, used_bytes=10, spilled_bytes_total=2**20, num_spilled=1)
    (spilling,) = rules.object_store(node(), spilled, stats, 0.9, True, now=2.0)
    assert spilling.name == "object_store_spilling"
    assert rules.object_store(node(), spilled, spilled, 0.9, True, now=3.0) == []
    assert rules.object_store(node(), spilled, stats, 0.9, False, now=3.0) == []


def test_a_restarted_control_store_is_told_by_its_epoch():
    assert rules.head_restarted("b", None) == []  # alerting's first start
    assert rules.head_restarted("b", {"epoch": "b", "checked_until": 1.0}) == []
    (alert,) = rules.head_restarted("b", {"epoch": "a", "checked_until": 1.0})
    assert alert.key == "head_restarted:b" and alert.details["previous_epoch"] == "a"


def test_the_gate_sends_an_alert_once_while_it_holds_and_again_when_it_comes_back():
    gate = AlertGate(max_per_minute=100)
    full = rules.Alert("object_store_full", "warning", "object_store_full:n", "full")
    assert gate.admit("object_store:n", [full], now=0) == [full]
    assert gate.admit("object_store:n", [full], now=1) == []  # still holds: not again
    assert gate.admit("object_store:other", [], now=1) == []
    assert gate.admit("object_store:n", [], now=2) == []  # cleared
    assert gate.admit("object_store:n", [full], now=3) == [full]  # back: sent again
    gate.forget("object_store:n")
    assert gate.scopes("object_store:") == []


def test_the_rate_limit_holds_back_a_flood_and_reports_it_once_a_token_is_back():
    gate = AlertGate(max_per_minute=3)
    flood = [rules.Alert("node_died", "critical", f"node_died:{n}", f"node {n}")
             for n in range(10)]
    sent = gate.admit("node_died", flood, now=0)
    assert [alert.key for alert in sent] == ["node_died:0", "node_died:1", "node_died:2"]
    assert gate.summary_nowait(now=1) is None  # no token yet
    summary = gate.summary_nowait(now=21)  # 3 a minute: one token back after 20 s
    assert summary.message.startswith("7 alerts were not sent: more than 3 a minute "
                                      "(node_died x7)")
    assert gate.summary_nowait(now=60) is None  # reported once
    # The held back ones are not sent later: they were reported.
    assert gate.admit("node_died", flood, now=100) == []


def test_launch_failures_after_the_watermark_alert_each_once():
    failures = [{"id": "a", "time": 5.0, "node_type": "cpu", "count": 1, "error": "old"},
                {"id": "b", "time": 15.0, "node_type": "gpu", "count": 2, "error": "quota"}]
    (alert,) = rules.launch_failed(failures, since=10.0)
    assert alert.key == "autoscaler_launch_failed:b"
    assert alert.message == "The autoscaler could not launch 2 node(s) of type gpu: quota"
