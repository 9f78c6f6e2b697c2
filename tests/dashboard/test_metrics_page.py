"""The Metrics page: the dashboard's history of every node's metrics, its routes, and the page
in a browser.

A two-node cluster with its dashboard (``dashboard_cluster``, conftest.py): the dashboard
scrapes both nodes' endpoints every 5 s, so the tests wait for a few rounds. The history's
bounds are checked on a ``History`` fed rounds of real exposition text directly, as fast
as the test likes.
"""

from __future__ import annotations

import math
import time

import pytest
from browsing import By, browser, chromium, logged_in, needs_browser  # noqa: F401 (fixtures)
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import raggio as ray
from raggio.dashboard.metrics_history import History
from raggio.dashboard.metrics_routes import query
from raggio.test_utils import wait_until
from raggio.util.metrics import Counter as AppCounter
from raggio.util.metrics import Histogram as AppHistogram
from raggio.util.scheduling_strategies import NodeAffinitySchedulingStrategy

#: Three rounds of scrapes at 5 s, and the time a node's endpoint takes to start.
ROUNDS_S = 40


def _lines(cluster, **params) -> dict:
    """The query's answer for ``params``; one with no lines while the history has no such
    metric (a 404: not scraped yet)."""
    text = "&".join(f"{key}={value}" for key, value in params.items())
    answer = cluster.get(f"/api/ui/metrics/query?{text}")
    if answer.status == 404:
        return {"series": []}
    assert answer.status == 200, (text, answer.status, answer.body[:500])
    return answer.json()["data"]


def _points(line: dict) -> list:
    return [v for v in line["values"] if v is not None]


@ray.remote(num_cpus=0)
def noop() -> None:
    pass


def test_history_has_each_node_s_metrics_per_node_and_for_the_cluster(driver, dashboard_cluster):
    cluster = dashboard_cluster
    ray.get(noop.remote())

    def scraped_twice():
        answer = _lines(cluster, name="ray_node_cpu_count", split="node", range=300)
        return (len(answer["series"]) == 2 and all(len(_points(line)) >= 2
                                                   for line in answer["series"])) and answer

    answer = wait_until(scraped_twice, timeout_s=ROUNDS_S, what="two scrapes of both nodes",
                        interval_s=1)
    assert {line["key"] for line in answer["series"]} == set(cluster.node_ids)
    assert sum("(head)" in line["label"] for line in answer["series"]) == 1
    assert answer["type"] == "gauge" and answer["transform"] == "value"
    assert len(answer["times"]) == len(answer["series"][0]["values"])
    assert all(v > 0 for line in answer["series"] for v in _points(line))

    # The cluster's memory is the sum of its nodes'; its CPU utilization their mean.
    per_node = _lines(cluster, name="ray_node_mem_total", split="node", range=300)
    summed = _lines(cluster, name="ray_node_mem_total", range=300)
    assert [line["key"] for line in summed["series"]] == ["cluster"]
    total = sum(_points(line)[-1] for line in per_node["series"])
    assert _points(summed["series"][0])[-1] == pytest.approx(total, rel=1e-3)
    assert _lines(cluster, name="ray_node_cpu_utilization", range=300)["agg"] == "avg"
    # Tasks by state, from the head's control store; counters are rates.
    def finished_task():
        answer = _lines(cluster, name="ray_tasks", split="State", match="Name%3Dnoop")
        return [_points(line) for line in answer["series"] if line["key"] == "FINISHED"]

    assert wait_until(finished_task, timeout_s=ROUNDS_S, what="the task", interval_s=1)[0][-1] == 1
    assert _lines(cluster, name="ray_finished_jobs")["transform"] == "rate"

    listing = cluster.data("/api/ui/metrics")
    metrics = {m["name"]: m for m in listing["metrics"]}
    assert metrics["ray_node_cpu_count"]["application"] is False
    assert metrics["ray_node_cpu_count"]["series"] == 2
    assert "NodeId" in metrics["ray_node_cpu_count"]["label_keys"]
    assert not any(m["application"] for m in listing["metrics"])  # none recorded yet
    assert {n["node_id"] for n in listing["nodes"] if n["alive"] and not n["error"]} == set(
        cluster.node_ids)
    assert 0 < listing["series"] <= listing["max_series"] and listing["dropped_series"] == 0
    assert listing["points"] * listing["period_s"] >= 3600
    assert 0 < listing["memory_bytes"] < 20 * 2**20


def test_wrong_queries_are_answered_400_or_404(dashboard_cluster):
    for path, status, words in (
            ("/api/ui/metrics/query", 400, "name is required"),
            ("/api/ui/metrics/query?name=ray_no_such_thing", 404, "No metric"),
            ("/api/ui/metrics/query?name=ray_node_cpu_count&range=99999", 400, "range"),
            ("/api/ui/metrics/query?name=ray_node_cpu_count&agg=max", 400, "agg"),
            ("/api/ui/metrics/query?name=ray_node_cpu_count&match=NodeId", 400, "match")):
        answer = dashboard_cluster.get(path)
        assert answer.status == status, (path, answer.body)
        assert words in answer.json()["msg"]


@ray.remote(num_cpus=0)
def serve(route: str, times: int) -> None:
    requests = AppCounter("mpage_requests", description="Requests served by the test.",
                          tag_keys=("route",))
    latency = AppHistogram("mpage_latency_s", description="Latency of the test's requests.",
                           boundaries=[0.1, 1.0], tag_keys=("route",))
    for _ in range(times):
        requests.inc(tags={"route": route})
        latency.observe(0.5, tags={"route": route})


def test_application_metric_shows_up_split_by_tag_and_by_node(driver, dashboard_cluster):
    cluster = dashboard_cluster
    on = [NodeAffinitySchedulingStrategy(node_id, soft=False) for node_id in cluster.node_ids]
    ray.get([serve.options(scheduling_strategy=on[0]).remote("/a", 5),
             serve.options(scheduling_strategy=on[1]).remote("/b", 3)])

    def listed():
        metrics = {m["name"]: m for m in cluster.data("/api/ui/metrics")["metrics"]}
        return metrics.get("ray_mpage_requests")

    metric = wait_until(listed, timeout_s=ROUNDS_S, what="the application metric's first scrape",
                        interval_s=1)
    assert metric["application"] is True and metric["type"] == "counter"
    assert metric["help"] == "Requests served by the test."
    assert "route" in metric["label_keys"]

    def split_by_route():
        answer = _lines(cluster, name="ray_mpage_requests", split="route", range=300)
        return {line["key"] for line in answer["series"]} == {"/a", "/b"} and answer

    answer = wait_until(split_by_route, timeout_s=ROUNDS_S, what="both routes", interval_s=1)
    assert answer["transform"] == "rate"  # a counter: its increase per second
    by_node = _lines(cluster, name="ray_mpage_requests", split="node", range=300)
    assert {line["key"] for line in by_node["series"]} == set(cluster.node_ids)

    def mean_latency():
        answer = _lines(cluster, name="ray_mpage_latency_s", range=300)
        return _points(answer["series"][0]) if answer["series"] else []

    # A histogram's mean over each interval with observations: here every one is 0.5. The
    # first interval with one needs two rounds after it was recorded: record more.
    for _ in range(3):
        ray.get(serve.options(scheduling_strategy=on[1]).remote("/b", 2))
        time.sleep(5)
        if mean_latency():
            break
    assert mean_latency() and all(v == pytest.approx(0.5) for v in mean_latency())


# -- the history's bounds, fed directly --

def _round(value: float, pids: range) -> list:
    """One node's families as an endpoint exposes them: a gauge per pid and a counter."""
    registry = CollectorRegistry()
    rss = Gauge("ray_component_rss_mb", "RSS", ["pid"], registry=registry)
    for pid in pids:
        rss.labels(str(pid)).set(value)
    Counter("ray_requests", "Requests", registry=registry).inc(value)
    return list(text_string_to_metric_families(generate_latest(registry).decode()))


def test_a_series_never_holds_more_than_its_points():
    history = History(points=10, max_series=100, forget_after_s=1e9)
    for i in range(35):
        history.record(1000.0 + 5 * i, {"n1": _round(i, range(1))})
    series = history.series_of("ray_component_rss_mb")[0]
    assert len(series.values) == 10
    rounds = history.rounds(0)
    assert len(rounds) == 10  # the oldest went as the newest came
    values = [series.value_at(r) for r in rounds]
    assert values == list(map(float, range(25, 35)))
    # The counter as a rate: +1 per 5 s; the first point has none before it.
    answer = query(history, {}, "ray_requests", since=0)
    assert answer["series"][0]["values"] == [None] + [0.2] * 9
    assert history.memory_bytes() < 10_000


def test_series_beyond_the_cap_are_dropped_and_counted_and_stale_ones_forgotten():
    history = History(points=10, max_series=6, forget_after_s=30)
    history.record(1000.0, {"n1": _round(1, range(4))})  # 4 gauges + 1 counter
    assert len(history) == 5
    history.record(1005.0, {"n1": _round(1, range(8))})  # 9 wanted: all fresh, 3 refused
    assert len(history) == 6 and history.dropped_series == 3
    # Pids 0-3 exit: pids 10-13 take the places of the least recently updated series.
    history.record(1010.0, {"n1": _round(1, range(10, 14))})
    assert len(history) == 6
    kept = {dict(s.labels).get("pid") for s in history.series_of("ray_component_rss_mb")}
    assert {"10", "11", "12", "13"} <= kept
    assert history.dropped_series == 3 + 4
    # A node that stops answering: its series go once they had nothing for 30 s.
    for i in range(3, 12):
        history.record(1000.0 + 5 * i, {"n2": _round(2, range(1))})
    assert {s.node for s in history.series_of("ray_component_rss_mb")} == {"n2"}
    nan_free = [v for v in history.series_of("ray_requests")[0].values if not math.isnan(v)]
    assert nan_free and set(nan_free) == {2.0}


# -- in the browser --

@needs_browser
def test_metrics_page_draws_charts_and_picks_an_application_metric(browser, driver,
                                                                     dashboard_cluster):
    ray.get(serve.remote("/page", 2))
    browser.open("metrics")
    browser.wait_text("CPU utilization")

    def drawn(chart: str) -> bool:
        paths = browser.web.find_elements(By.CSS_SELECTOR, f'[data-chart="{chart}"] path.line')
        # A path through several points: a move and at least one line to another.
        return any(path.get_attribute("d").count("L") >= 1 for path in paths)

    browser.wait_for(lambda: drawn("cpu"), "a CPU line with points", timeout_s=ROUNDS_S)
    for chart in ("memory", "object-store", "network", "tasks"):
        browser.wait_for(lambda: drawn(chart), f"a {chart} line with points", timeout_s=ROUNDS_S)
    legend = browser.text('[data-chart="memory"] .legend')
    assert "used" in legend and "total" in legend and "GiB" in legend

    # By node: one CPU line per node, and the head's marked.
    browser.click('.chip[data-value="node"]', "the By node chip")
    browser.wait_for(lambda: len(browser.web.find_elements(
        By.CSS_SELECTOR, '[data-chart="cpu"] path.line')) == 2, "a CPU line per node")
    assert "(head)" in browser.text('[data-chart="cpu"] .legend')

    # The application metric: picked by name, split by its tag.
    browser.click('#app-metric option[value="ray_mpage_requests"]',
                  "the application metric in the picker", timeout_s=ROUNDS_S)
    browser.click('#app-split option[value="route"]', "the metric's tags")
    browser.wait_for(lambda: "/page" in browser.text('[data-chart="application"] .legend'),
                     "the /page line", timeout_s=ROUNDS_S)
    assert not browser.reloaded()
