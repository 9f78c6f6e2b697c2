"""The dashboard's metric history: every live node's Prometheus endpoint, scraped every 5 s
and kept for an hour, for the Metrics page (``metrics_routes.py``).

Every ``PERIOD_S`` the ``Scraper`` asks the control store for the nodes (``get_nodes``) and
GETs ``http://<node_ip>:<metrics_export_port>/metrics`` of each live one at once, with the
cluster token, and hands what it parsed (``prometheus_client.parser``) to the ``History`` as
one round. A node that does not answer within ``SCRAPE_TIMEOUT_S`` has no point in that round
(its error is kept for the page). A round goes on whether or not a page looks: the history is
there when one opens.

The ``History`` keeps one value per series per round, in rounds of a shared clock: the rounds'
times are one ring of ``points`` doubles, and each series a ring of ``points`` doubles
(``array('d')``, NaN where the series had no value), so a series costs ~6 KiB for the hour
whatever its values. A series is a metric's values on one node with one set of labels: the
node is part of its key, so a metric whose labels do not say where it was recorded is still
split by node. Kept per family: counters' ``_total``, gauges and untyped values, and a
histogram's or summary's ``_sum`` and ``_count`` (their mean and rate; the buckets would cost
a series each). Bounds: at most ``max_series`` series; a round's new series beyond it take
the places of those updated least recently, or are refused where every series has a value in
that round (both counted in ``dropped_series``; new series are admitted once the round's
values are in, so a series read later in the round never counts as stale); a series with no
value for ``FORGET_AFTER_S`` (a dead node's, an exited worker's) is dropped.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import sys
import time
from array import array
from dataclasses import dataclass, field
from typing import Callable, Iterable

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from raggio.dashboard.control_store import ControlStore, Unavailable

logger = logging.getLogger(__name__)

PERIOD_S = 5.0
#: One hour at ``PERIOD_S``.
POINTS = 720
#: The most series kept: ~6 MiB of values at most.
MAX_SERIES = 1000
#: A series without a value this long is dropped (a dead node's, an exited worker's).
FORGET_AFTER_S = 600.0
SCRAPE_TIMEOUT_S = 3.0
#: The samples kept of each family type: (the part's name in the history, the sample's
#: suffix after the family's name).
PARTS = {"counter": (("", "_total"),), "gauge": (("", ""),), "unknown": (("", ""),),
         "histogram": (("sum", "_sum"), ("count", "_count")),
         "summary": (("sum", "_sum"), ("count", "_count"))}
_NAN = float("nan")


@dataclass
class Family:
    """A metric family as the endpoints describe it."""

    name: str
    type: str
    help: str
    label_keys: set[str] = field(default_factory=set)


class Series:
    """One series' ring of values. ``first`` and ``last``: the rounds of its first and last
    value (``values[round % points]`` holds that round's value for rounds in between)."""

    __slots__ = ("family", "part", "node", "labels", "values", "first", "last")

    def __init__(self, family: str, part: str, node: str, labels: tuple, points: int,
                 round_: int):
        self.family = family
        self.part = part
        self.node = node
        self.labels = labels  #: sorted (key, value) pairs
        self.values = array("d", [_NAN]) * points
        self.first = self.last = round_

    def put(self, round_: int, value: float) -> None:
        points = len(self.values)
        for skipped in range(max(self.last + 1, round_ - points + 1), round_):
            self.values[skipped % points] = _NAN  # rounds it missed
        self.values[round_ % points] = value
        self.last = round_

    @property
    def key(self) -> tuple:
        return (self.family, self.part, self.node, self.labels)

    def value_at(self, round_: int) -> float:
        if self.first <= round_ <= self.last:
            return self.values[round_ % len(self.values)]
        return _NAN


class History:
    """The bounded history (see the module docstring). ``record`` one round at a time;
    ``rounds`` and ``series_of`` read it."""

    def __init__(self, *, points: int = POINTS, max_series: int = MAX_SERIES,
                 forget_after_s: float = FORGET_AFTER_S):
        self.points = points
        self.max_series = max_series
        self.forget_after_s = forget_after_s
        self.families: dict[str, Family] = {}
        self._series: dict[tuple, Series] = {}
        self._times = array("d", [_NAN]) * points
        self.round = -1  #: the newest round's number
        #: Series refused or pushed out by ``max_series`` since the start.
        self.dropped_series = 0

    def __len__(self) -> int:
        return len(self._series)

    def record(self, now: float, scraped: dict[str, Iterable]) -> None:
        """One round at ``now`` (seconds): ``{node id (hex): families}``, the families as
        ``prometheus_client.parser`` yields them."""
        self.round += 1
        self._times[self.round % self.points] = now
        new: list[tuple[tuple, float]] = []  # values of series not held yet
        for node, families in scraped.items():
            families = list(families)
            # prometheus_client adds a <name>_created gauge to each counter, histogram and
            # summary: when it was made, nothing to chart.
            created = {f"{family.name}_created" for family in families
                       if family.type in ("counter", "histogram", "summary")}
            for family in families:
                if family.name not in created:
                    self._record_family(node, family, new)
        self._forget(now)
        self._admit(new)
        for name in self.families.keys() - {series.family for series in self._series.values()}:
            del self.families[name]  # its series all went (or none was admitted)

    def _record_family(self, node: str, family, new: list) -> None:
        parts = PARTS.get(family.type)
        if parts is None:  # info, stateset, gaugehistogram: nothing to chart
            return
        known = self.families.get(family.name)
        if known is None:
            known = self.families[family.name] = Family(family.name, family.type,
                                                        family.documentation)
        for part, suffix in parts:
            sample_name = family.name + suffix
            for sample in family.samples:
                if sample.name == sample_name:
                    known.label_keys.update(sample.labels)
                    key = (family.name, part, node, tuple(sorted(sample.labels.items())))
                    series = self._series.get(key)
                    if series is None:
                        new.append((key, sample.value))
                    else:
                        series.put(self.round, sample.value)

    def _admit(self, new: list[tuple[tuple, float]]) -> None:
        """Hold the round's new series, within ``max_series``: those updated least recently
        (not in this round) make room; what still does not fit is refused."""
        shortfall = len(new) - (self.max_series - len(self._series))
        if shortfall > 0:
            stale = sorted((s for s in self._series.values() if s.last < self.round),
                           key=lambda s: s.last)[:shortfall]
            for series in stale:
                del self._series[series.key]
            self.dropped_series += len(stale)
        room = self.max_series - len(self._series)
        for key, value in new[:room]:
            series = self._series[key] = Series(*key, self.points, self.round)
            series.put(self.round, value)
        self.dropped_series += max(0, len(new) - room)

    def _forget(self, now: float) -> None:
        """Drop the series without a value for ``forget_after_s``."""
        for key, series in list(self._series.items()):
            if now - self._times[series.last % self.points] > self.forget_after_s:
                del self._series[key]

    def rounds(self, since: float) -> list[int]:
        """The rounds kept whose time is at or after ``since`` (seconds), oldest first."""
        start = max(0, self.round - self.points + 1)
        return [r for r in range(start, self.round + 1)
                if self._times[r % self.points] >= since]

    def time_of(self, round_: int) -> float:
        return self._times[round_ % self.points]

    def series_of(self, family: str) -> list[Series]:
        return [s for s in self._series.values() if s.family == family]

    def series_counts(self) -> collections.Counter:
        """How many series each family has."""
        return collections.Counter(series.family for series in self._series.values())

    def memory_bytes(self) -> int:
        """What the history holds, roughly: its rings, series and their keys."""
        total = sys.getsizeof(self._times) + sys.getsizeof(self._series)
        for key, series in self._series.items():
            total += (sys.getsizeof(key) + sys.getsizeof(series) + sys.getsizeof(series.values)
                      + sys.getsizeof(series.labels)
                      + sum(sys.getsizeof(pair) for pair in series.labels))
        return total


@dataclass
class NodeInfo:
    """What the page shows of a node the history has heard of."""

    ip: str
    is_head: bool
    alive: bool
    error: str = ""  #: why the last scrape failed ("" when it did not)


class Scraper:
    """Scrapes every live node into ``history`` every ``period_s``; ``on_round()`` is called
    after each round (the live stream tells the pages)."""

    def __init__(self, store: ControlStore, token: str, history: History, *,
                 period_s: float = PERIOD_S, on_round: Callable[[], None] = lambda: None):
        self.history = history
        self.nodes: dict[str, NodeInfo] = {}
        self.last_round_s = 0.0  #: when the last round ended (0: none yet)
        self._store = store
        self._headers = {"Authorization": f"Bearer {token}"}
        self.period_s = period_s
        self._on_round = on_round
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT_S), trust_env=False)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _run(self) -> None:
        failing = False
        while True:
            started = time.monotonic()
            try:
                await self.scrape_once()
                failing = False
            except Unavailable:
                pass  # the control store is away: no round; the banner says so
            except Exception:
                if not failing:
                    logger.exception("a round of metric scrapes failed; the next ones go on "
                                     "(logged again once one succeeds)")
                failing = True
            await asyncio.sleep(max(0.0, self.period_s - (time.monotonic() - started)))

    async def scrape_once(self) -> None:
        """One round: every live node with a metrics port, at once."""
        records = await self._store.call("get_nodes", None, SCRAPE_TIMEOUT_S)
        live = {}
        nodes = {}
        for node in records:
            node_hex = node["node_id"].hex()
            alive = node["state"] == "ALIVE"
            before = self.nodes.get(node_hex)
            nodes[node_hex] = NodeInfo(node["node_ip"], bool(node.get("is_head")), alive,
                                       before.error if before and alive else "")
            if alive and node.get("metrics_export_port"):
                live[node_hex] = f"http://{node['node_ip']}:{node['metrics_export_port']}/metrics"
        self.nodes = nodes
        now = time.time()
        texts = await asyncio.gather(*(self._fetch(node_hex, url)
                                       for node_hex, url in live.items()))
        scraped = {}
        for node_hex, text in zip(live, texts):
            if text is not None:
                try:
                    scraped[node_hex] = list(text_string_to_metric_families(text))
                except ValueError as exc:
                    self.nodes[node_hex].error = f"its metrics do not parse: {exc}"
        self.history.record(now, scraped)
        self.last_round_s = time.time()
        self._on_round()

    async def _fetch(self, node_hex: str, url: str) -> str | None:
        info = self.nodes[node_hex]
        try:
            async with self._session.get(url, headers=self._headers) as response:
                if response.status != 200:
                    info.error = f"{url} answered {response.status}"
                    return None
                text = await response.text()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            info.error = f"{url} does not answer ({exc.__class__.__name__}: {exc})"
            return None
        info.error = ""
        return text

