"""The alert manager: looks at the cluster, runs the rules, sends what the gate lets out.

``run_alerting`` is the dashboard process's entry (``dashboard/main.py``): it
reads the head's alerting section from the control store's KV
(``config.CONFIG_KEY``; none, or ``enabled: false``: it returns and costs
nothing more) and runs an ``AlertManager`` until cancelled.

Every ``check_period_s`` (1 s) the manager asks the control store for its
change counters (``table_versions``, a few numbers whatever the cluster's
size, as the dashboard's live pages do) and reads again only the tables that
changed: ``get_nodes``, ``list_actors``, ``get_jobs``; and the autoscaler's
launch-failure record (one KV key). Every ``stats_period_s`` (10 s) it asks
each live node manager for its object store's statistics (``get_node_stats``)
and, when tasks changed, the newest ``TASK_SAMPLE`` task attempts
(``list_tasks``) for the failure rate.

What it records in the KV (``STATE_KEY``): the control store's epoch (new with
every control store, from ``table_versions``), so that a dashboard started by a
restarted head sees the epoch change and sends "head restarted"; its
watermark, the start of the last look whose events it handled, so that a
restarted dashboard sends the events after it and none before (with nothing
recorded, the first look starts from when the live head node started, so an
event while the dashboard's process was still starting counts); and what the
gate holds, so that it does not send again a condition that still holds (a
full store). It is written after a look that sent or cleared an alert, and
once a minute.

A look that fails (the control store away) is logged once, and the next one
runs as usual; alerts already sent are not sent again (the gate remembers).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Protocol

import aiohttp

from raggio.alerts import rules
from raggio.alerts.config import CONFIG_KEY, AlertingConfig
from raggio.alerts.gate import AlertGate
from raggio.alerts.payloads import FORMATS
from raggio.alerts.webhooks import Webhook
from raggio.common import launch_failures
from raggio.common.states import ALIVE
from raggio.job_submission.common import JOB_INFO_KEY_PREFIX, JobInfo

logger = logging.getLogger(__name__)

#: The alert manager's record in the control store's KV: ``{"epoch", "checked_until",
#: "holding"}`` (see the module docstring).
STATE_KEY = "alerts:state"
#: How many of the newest task attempts the failure rate looks at: a sample that costs
#: the control store about the same whatever its history holds.
TASK_SAMPLE = 500
#: How long one request of a look may take.
REQUEST_TIMEOUT_S = 5.0
#: The watermark is written after a look that sent alerts, and at least this often.
STATE_WRITE_PERIOD_S = 60.0
#: How long ``run_alerting`` waits between tries to read the config from the control store.
CONFIG_RETRY_S = 1.0


class ControlStorePeer(Protocol):
    """The dashboard's kept connection to the control store (``dashboard/control_store.py``)."""

    async def call(self, op: str, payload=None, timeout_s: float = ...): ...


class NodeManagerPeers(Protocol):
    """The dashboard's kept connections to node managers (``dashboard/node_managers.py``)."""

    async def call(self, address: str, op: str, payload=None, timeout_s: float = ...): ...

    def forget_dead(self, nodes: list[dict]) -> None: ...


class AlertManager:
    """See the module docstring. ``async with AlertManager(...) as manager: ...``"""

    def __init__(self, config: AlertingConfig, control_store: ControlStorePeer,
                 node_managers: NodeManagerPeers, cluster_name: str):
        self.config = config
        self.cluster = config.cluster_name or cluster_name
        self._store = control_store
        self._node_managers = node_managers
        self.gate = AlertGate(config.delivery["max_per_minute"])
        self.webhooks: list[Webhook] = []
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task] = set()
        self._epoch: str | None = None  #: the control store's, as of the last look
        self._versions: dict = {}  #: its change counters at the last look
        #: Events that ended before this were handled (or happened before alerting began).
        self._since: float | None = None
        self._state_written_at = 0.0
        self._holding_written: dict = {}  #: the gate's ``holding()`` as last written
        self._nodes: list[dict] = []  #: the last ``get_nodes`` answer
        self._stats_at = 0.0  #: when the object stores and tasks were last looked at
        self._tasks_version_seen = None  #: the tasks counter at the last failure-rate look
        self._store_stats: dict[bytes, dict] = {}  #: node id -> its last store statistics
        self._failing = False  #: whether the last look failed (it was logged)

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(trust_env=True)
        for kind, url in self.config.destinations.items():
            webhook = Webhook(kind, url, lambda alert, f=FORMATS[kind]: f(alert, self.cluster),
                              self._session, self.config.delivery)
            self.webhooks.append(webhook)
            self._spawn(webhook.run())
        self._spawn(self._run())
        logger.info("alerting to %s for cluster %s",
                    " and ".join(webhook.kind for webhook in self.webhooks), self.cluster)

    async def close(self) -> None:
        try:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:  # also when cancelled again meanwhile (the process exiting cancels all)
            if self._session is not None:
                await self._session.close()

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, *exc_info):
        await self.close()

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self) -> None:
        while True:
            try:
                await self.look(time.time())
                if self._failing:
                    logger.info("alerting: the control store answers again")
                self._failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the control store away, or a bug: the next look runs
                if not self._failing:  # once per spell: a control store away fails each look
                    logger.warning("alerting: a look at the cluster failed: %s", exc,
                                   exc_info=True)
                self._failing = True
            await asyncio.sleep(self.config.section["check_period_s"])

    async def _call(self, op: str, payload=None):
        return await self._store.call(op, payload, REQUEST_TIMEOUT_S)

    async def _submitted_jobs(self) -> list[dict]:
        """The submitted jobs' records as ``job_failed`` reads them (end_time in s)."""
        keys = await self._call("kv_keys", JOB_INFO_KEY_PREFIX)
        values = await self._call("kv_multi_get", keys) if keys else []
        rows = []
        for key, raw in zip(keys, values):
            if raw is not None:
                info = JobInfo.from_json(json.loads(raw))
                rows.append({"submission_id": key[len(JOB_INFO_KEY_PREFIX):],
                             "entrypoint": info.entrypoint, "status": info.status.value,
                             "message": info.message,
                             "end_time": info.end_time / 1000 if info.end_time else None})
        return rows

    async def look(self, now: float) -> None:
        """One look at the cluster (see the module docstring); ``now``: when it began."""
        versions = await self._call("table_versions")
        if versions["epoch"] != self._epoch:
            await self._met_control_store(versions["epoch"], now)
            self._versions = {}
        changed = {table for table in ("nodes", "actors", "jobs")
                   if versions[table] != self._versions.get(table)}
        sent = 0
        if "nodes" in changed:
            self._nodes = await self._call("get_nodes")
            self._node_managers.forget_dead(self._nodes)
            sent += self._rule("node_died", rules.node_died, self._nodes, self._since, now=now)
        if "actors" in changed:
            actors = await self._call("list_actors")
            sent += self._rule("actor_died", rules.actor_died, actors, self._since, now=now)
        if "jobs" in changed:
            jobs = await self._call("get_jobs")
            sent += self._rule("job_failed", rules.job_failed, jobs, self._since, now=now)
        if self.config.rule("job_failed"):  # submitted jobs: their records are in the KV
            sent += self._rule("job_failed", rules.job_failed, await self._submitted_jobs(),
                               self._since, now=now)
        if self.config.rule("autoscaler_launch_failed"):
            failures = launch_failures.read(
                await self._call("kv_get", launch_failures.LAUNCH_FAILURES_KEY))
            sent += self._rule("autoscaler_launch_failed", rules.launch_failed, failures,
                               self._since, now=now)
        if now - self._stats_at >= self.config.section["stats_period_s"]:
            self._stats_at = now
            sent += await self._look_at_tasks(versions["tasks"], now)
            sent += await self._look_at_object_stores(now)
        summary = self.gate.summary_nowait(now)
        if summary is not None:
            self._send(summary)
        self._versions = versions
        self._since = now
        if (sent or self.gate.holding() != self._holding_written
                or now - self._state_written_at >= STATE_WRITE_PERIOD_S):
            await self._write_state(now)

    def _rule(self, name: str, rule, *args, now: float, scope: str | None = None) -> int:
        """Run rule ``name`` (when it is on) and send what the gate lets out; how many."""
        settings = self.config.rule(name)
        if settings is None:
            return 0
        out = self.gate.admit(scope or name, rule(*args), now)
        for alert in out:
            self._send(alert)
        return len(out)

    def _send(self, alert: rules.Alert) -> None:
        logger.info("alert %s (%s): %s", alert.name, alert.severity, alert.message)
        for webhook in self.webhooks:
            webhook.offer_nowait(alert)

    async def _met_control_store(self, epoch: str, now: float) -> None:
        """The first look at this control store: send "head restarted" if the recorded one
        was another, take the recorded watermark (a restarted dashboard), record this one."""
        recorded = await self._call("kv_get", STATE_KEY)
        recorded = json.loads(recorded) if recorded else None
        if self._since is None:
            self._since = (recorded["checked_until"] if recorded
                           else await self._head_started(now))
            self.gate.hold(recorded["holding"] if recorded else {})
        self._rule("head_restarted", rules.head_restarted, epoch, recorded, now=now,
                   scope="head_restarted")
        self._epoch = epoch
        await self._write_state(now if recorded is None else self._since)

    async def _head_started(self, now: float) -> float:
        """When the live head node started (else ``now``): alerting covers the head's whole
        life, so a node that died while this process was still starting is not missed."""
        started = [node["start_time"] for node in await self._call("get_nodes")
                   if node.get("is_head") and node["state"] == ALIVE]
        return min(max(started), now) if started else now

    async def _write_state(self, checked_until: float) -> None:
        holding = self.gate.holding()
        state = {"epoch": self._epoch, "checked_until": checked_until, "holding": holding}
        await self._call("kv_put", [STATE_KEY, json.dumps(state).encode(), True])
        self._state_written_at = checked_until
        self._holding_written = holding

    async def _look_at_tasks(self, tasks_version: int, now: float) -> int:
        settings = self.config.rule("task_failure_rate")
        # Unchanged tasks leave the rate as it was, unless it holds: then it may clear.
        if settings is None or (tasks_version == self._tasks_version_seen
                                and not self.gate.scopes("task_failure_rate")):
            return 0
        self._tasks_version_seen = tasks_version
        reply = await self._call("list_tasks", {"limit": TASK_SAMPLE})
        return self._rule("task_failure_rate", rules.task_failure_rate, reply["tasks"], now,
                          settings["threshold"], settings["window_s"], settings["min_tasks"],
                          now=now)

    async def _look_at_object_stores(self, now: float) -> int:
        settings = self.config.rule("object_store")
        if settings is None:
            return 0
        alive = [node for node in self._nodes if node["state"] == ALIVE]
        replies = await asyncio.gather(
            *(self._node_managers.call(node["address"], "get_node_stats", None,
                                       REQUEST_TIMEOUT_S) for node in alive),
            return_exceptions=True)
        sent = 0
        for node, reply in zip(alive, replies):
            if isinstance(reply, BaseException):  # a node going away: node_died says so
                continue
            stats = reply["object_store"]
            previous = self._store_stats.get(node["node_id"])
            self._store_stats[node["node_id"]] = stats
            sent += self._rule("object_store", rules.object_store, node, stats, previous,
                               settings["usage_threshold"], settings["spilling"], now,
                               now=now, scope=f"object_store:{node['node_id'].hex()}")
        alive_hex = {node["node_id"].hex() for node in alive}
        for scope in self.gate.scopes("object_store:"):
            if scope.partition(":")[2] not in alive_hex:
                self.gate.forget(scope)
        for node_id in self._store_stats.keys() - {node["node_id"] for node in alive}:
            del self._store_stats[node_id]
        return sent


async def read_config(control_store: ControlStorePeer) -> AlertingConfig | None:
    """The head's alerting section from the KV, once the control store answers; None if
    the head has none."""
    while True:
        try:
            value = await control_store.call("kv_get", CONFIG_KEY, REQUEST_TIMEOUT_S)
            return None if value is None else AlertingConfig.from_json(value)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.debug("alerting: cannot read the config yet: %s", exc)
            await asyncio.sleep(CONFIG_RETRY_S)


async def run_alerting(control_store: ControlStorePeer, node_managers: NodeManagerPeers,
                       cluster_name: str) -> None:
    """Run the head's alerting, if it has any, until cancelled (the dashboard's entry)."""
    try:
        config = await read_config(control_store)
        if config is None or not config.enabled:
            return
        async with AlertManager(config, control_store, node_managers, cluster_name):
            await asyncio.Event().wait()
    except asyncio.CancelledError:
        raise
    except Exception:  # a bug here must not take the dashboard's pages with it
        logger.exception("alerting stopped")
