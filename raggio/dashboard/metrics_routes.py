"""The Metrics page's routes: what the metric history (``metrics_history.py``) holds, and
one metric over time, split and aggregated as a chart draws it.

- ``GET /api/ui/metrics``: the metrics there are (``name``, ``type``, ``help``, the
  ``label_keys`` a split may use, how many ``series``, and whether it is an
  ``application`` metric: one that is not among raggio's own families), the nodes (with
  why the last scrape of one failed), and the history's bounds and cost: ``series`` of
  ``max_series``, ``dropped_series`` (refused or pushed out by that cap), ``memory_bytes``,
  ``period_s`` and ``points``; ``now_ms``, the dashboard's clock (the charts end there).
- ``GET /api/ui/metrics/query?name=...``: ``times`` (ms) and one line per group,
  ``{"key", "label", "values"}`` (null where there is no value). Parameters: ``range``
  (seconds back from now, default 900, at most the history's hour), ``split`` (``node``,
  a label key, or nothing for the cluster), ``agg`` (``sum`` or ``avg`` of the series in a
  group; ``avg`` by default for utilization and percentage gauges, ``sum`` otherwise),
  ``rate`` (per-second rates; the default for counters, and what a cumulative gauge such
  as ``ray_node_network_sent`` asks for), ``stat`` for histograms and summaries (``mean``
  of the values observed in each interval, the default, or ``rate``: observations per
  second), ``match`` (repeated ``key=value``: only the series with that label value),
  ``node`` (a node id: only its series). A split with more than ``MAX_LINES`` groups keeps
  those with the largest values and says how many it left out (``omitted``).
"""

from __future__ import annotations

import collections
import math
import time

from aiohttp import web

from raggio.common.metric_records import RAY_FAMILIES
from raggio.dashboard.live import POLLER
from raggio.dashboard.metrics_history import History, Scraper
from raggio.dashboard.query import not_found, query_bool, query_int
from raggio.dashboard.routing import STORE, TOKEN, BadRequest, ok

#: The most lines one chart gets.
MAX_LINES = 20
DEFAULT_RANGE_S = 900
#: Gauges averaged over a group by default (a share of something, not an amount).
AVERAGED = ("utilization", "percentage", "percent")
#: Significant digits of the values sent (the charts need no more; the answers stay small).
DIGITS = 4

SCRAPER = web.AppKey("metrics_scraper", Scraper)
#: The families with Ray's names that raggio's nodes export (``node/metric_families.py``);
#: the others with Ray's prefix are applications' (``raggio.util.metrics``: ``ray_<name>``).
async def metrics_context(app: web.Application):
    """The app's cleanup context: the history and its scraper, which tells the live stream's
    pages (topic ``metrics``) after each round. After ``live.poller_context``."""
    scraper = Scraper(app[STORE], app[TOKEN], History(),
                      on_round=lambda: app[POLLER].announce(("metrics",)))
    app[SCRAPER] = scraper
    scraper.start()
    yield
    await scraper.close()


def is_application(name: str) -> bool:
    """Whether a family is an application's (``raggio.util.metrics``) rather than raggio's
    (those above, and raggio's own under ``raggio_``)."""
    return name.startswith("ray_") and name not in RAY_FAMILIES


# -- shaping --

def _finite(value: float) -> float | None:
    return float(f"{value:.{DIGITS}g}") if math.isfinite(value) else None


def _rates(values: list[float], times: list[float]) -> list[float]:
    """Per-second increase between rounds; a value below the previous one is a counter that
    started again (its process restarted), so the increase is the value itself."""
    out = [math.nan]
    for i in range(1, len(values)):
        before, now, elapsed = values[i - 1], values[i], times[i] - times[i - 1]
        out.append(((now - before if now >= before else now) / elapsed)
                   if elapsed > 0 else math.nan)  # NaN in, NaN out
    return out


def _combine(vectors: list[list[float]], average: bool) -> list[float]:
    """The sum (or mean) of the finite values at each point; NaN where there are none."""
    out = []
    for column in zip(*vectors):
        values = [v for v in column if math.isfinite(v)]
        out.append((sum(values) / len(values) if average else sum(values))
                   if values else math.nan)
    return out


def _ratio(top: list[float], bottom: list[float]) -> list[float]:
    return [a / b if b > 0 else math.nan for a, b in zip(top, bottom)]


def node_labels(nodes: dict, node_ids) -> dict[str, str]:
    """A label per node: its IP, with the start of its id where IPs repeat (every node of
    a local cluster is 127.0.0.1), and "(head)" for the head."""
    ips = collections.Counter(nodes[n].ip for n in node_ids if n in nodes)
    labels = {}
    for node_id in node_ids:
        info = nodes.get(node_id)
        if info is None:  # the control store no longer lists it
            labels[node_id] = f"node {node_id[:6]}"
            continue
        label = info.ip if ips[info.ip] == 1 else f"{info.ip} {node_id[:6]}"
        labels[node_id] = label + (" (head)" if info.is_head else "")
    return labels


def query(history: History, nodes: dict, name: str, *, since: float, split: str = "",
          agg: str = "", rate: bool | None = None, stat: str = "mean",
          match: dict | None = None, node: str = "") -> dict:
    """One metric's lines (see the module docstring); ``nodes``: ``Scraper.nodes``.

    Raises:
        KeyError: no such metric.
        BadRequest: ``agg`` or ``stat`` is none of theirs.
    """
    family = history.families[name]
    if agg not in ("", "sum", "avg"):
        raise BadRequest(f"agg must be sum or avg, got {agg!r}.")
    if stat not in ("mean", "rate"):
        raise BadRequest(f"stat must be mean or rate, got {stat!r}.")
    distribution = family.type in ("histogram", "summary")
    average = agg == "avg" or (not agg and any(word in name for word in AVERAGED)
                               and not distribution)
    rate = (family.type == "counter") if rate is None else rate
    rounds = history.rounds(since)
    times = [history.time_of(r) for r in rounds]
    groups: dict[str, dict[str, list]] = collections.defaultdict(
        lambda: collections.defaultdict(list))
    for series in history.series_of(name):
        labels = dict(series.labels)
        if (node and series.node != node) or any(labels.get(k) != v
                                                 for k, v in (match or {}).items()):
            continue
        key = (series.node if split == "node" else labels.get(split, "") if split
               else "cluster")
        values = [series.value_at(r) for r in rounds]
        if rate or distribution:
            values = _rates(values, times)
        groups[key][series.part].append(values)

    lines = {}
    for key, parts in groups.items():
        if distribution and stat == "mean":
            lines[key] = _ratio(_combine(parts["sum"], False), _combine(parts["count"], False))
        else:
            lines[key] = _combine(parts["count" if distribution else ""], average)
    omitted = max(0, len(lines) - MAX_LINES)
    if omitted:
        def size(key):
            return max((v for v in lines[key] if math.isfinite(v)), default=-math.inf)
        lines = {key: lines[key] for key in sorted(lines, key=size, reverse=True)[:MAX_LINES]}
    labels = (node_labels(nodes, lines) if split == "node"
              else {key: key or f"(no {split})" for key in lines} if split
              else {"cluster": "cluster"})
    order = sorted(lines, key=lambda key: (split == "node" and not (
        key in nodes and nodes[key].is_head), labels[key]))
    return {"name": name, "type": family.type, "help": family.help,
            "transform": ("mean" if distribution and stat == "mean" else
                          "rate" if rate or distribution else "value"),
            "agg": "avg" if average else "sum", "split": split,
            "times": [round(t * 1000) for t in times],
            "series": [{"key": key, "label": labels[key],
                        "values": [_finite(v) for v in lines[key]]} for key in order],
            "omitted": omitted}


# -- routes --

async def metric_list(request: web.Request) -> web.Response:
    """``/api/ui/metrics``: see the module docstring."""
    scraper = request.app[SCRAPER]
    history = scraper.history
    counts = history.series_counts()
    metrics = [{"name": f.name, "type": f.type, "help": f.help,
                "label_keys": sorted(f.label_keys), "series": counts.get(f.name, 0),
                "application": is_application(f.name)}
               for f in sorted(history.families.values(), key=lambda f: f.name)
               if counts.get(f.name)]
    return ok({"metrics": metrics,
               "nodes": [{"node_id": node_id, "node_ip": info.ip, "is_head": info.is_head,
                          "alive": info.alive, "error": info.error}
                         for node_id, info in scraper.nodes.items()],
               "series": len(history), "max_series": history.max_series,
               "dropped_series": history.dropped_series,
               "memory_bytes": history.memory_bytes(),
               "period_s": scraper.period_s, "points": history.points,
               "last_round_ms": round(scraper.last_round_s * 1000),
               "now_ms": round(time.time() * 1000)})


async def metric_query(request: web.Request) -> web.Response:
    """``/api/ui/metrics/query``: see the module docstring."""
    scraper = request.app[SCRAPER]
    history = scraper.history
    name = request.query.get("name", "")
    if not name:
        raise BadRequest("name is required: a metric's name, as /api/ui/metrics lists them.")
    kept_s = round(history.points * scraper.period_s)
    range_s = query_int(request, "range", DEFAULT_RANGE_S, least=1, most=kept_s)
    match = {}
    for pair in request.query.getall("match", []):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadRequest(f"match must be key=value (a label and its value), got {pair!r}.")
        match[key] = value
    rate = query_bool(request, "rate", False) if request.query.get("rate") else None
    try:
        answer = query(history, scraper.nodes, name, since=time.time() - range_s,
                       split=request.query.get("split", ""), agg=request.query.get("agg", ""),
                       rate=rate, stat=request.query.get("stat", "mean"), match=match,
                       node=request.query.get("node", ""))
    except KeyError:
        return not_found(f"No metric {name!r} in the history (yet: it shows once a node "
                         "exports it); /api/ui/metrics lists them.")
    answer["range_s"] = range_s
    return ok(answer)


def routes() -> list[web.RouteDef]:
    return [web.get("/api/ui/metrics", metric_list),
            web.get("/api/ui/metrics/query", metric_query)]
