"""One autoscaler round: read the cluster, plan, launch and remove nodes, say why.

``Autoscaler.update`` (called by the monitor every few seconds) reads, through
the control store's RPC surface, the nodes (each with its pending lease shapes
and its free resources), the placement groups, the actors and the
``request_resources`` bundles; matches the provider's nodes to the control
store's (by the provider's node id where it knows raggio's, by address
otherwise); asks ``resource_demand.plan`` what to launch and
``idle_to_terminate`` what to remove; and acts through the NodeProvider:

- launches run in the background (a provider's ``create_node`` and, for a
  provider whose nodes need setting up over SSH, the launcher's
  ``NodeUpdater``); a node type whose launch fails waits before it is tried
  again (5 s, doubling to ``autoscaler_max_launch_backoff_s``; the plan takes
  the next cheapest type that fits meanwhile), and each
  failure is recorded in the KV (``common/launch_failures.py``), where alerts
  and ``raggio status`` read it; a node that never joins within
  ``autoscaler_node_start_wait_s`` is removed and counted failed;
- a worker node is idle while it runs no lease and no actor and has no demand;
  past ``idle_timeout_minutes`` it is drained (the control store's
  ``drain_node``: no more work goes there and its objects move to other nodes,
  ``node/draining.py``), then stopped and released, never below its type's
  ``min_workers``; a node that refuses the drain (work arrived, a worker there
  owns objects others hold) stays, and the status says why;
- a provider node whose raggio node died (a reclaimed spot node, a crash) is
  released, and the plan replaces it like any missing capacity;
- until the provider lets a node go, it counts against max_workers (Ray's
  rule: the provider still holds it, as a pool holds a busy address) but is
  neither capacity nor one of its type's min_workers: a replacement waits for
  its slot, so a pool whose every address is taken never reports a failed
  launch for it.

Each round ends by writing its view to the KV (``STATUS_KEY``): what runs and
launches per type, recent failures, and the plan's reasons in plain words, for
``raggio status`` and the dashboard.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import logging
import os
import time

from raggio.autoscaler import resource_demand
from raggio.common.autoscaler_status import RESOURCE_REQUEST_KEY, STATUS_KEY
from raggio.common import launch_failures
from raggio.common.states import DRAIN_DEADLINE_S, DRAIN_IDLE_TERMINATION
from raggio.config import get_config
from raggio.launcher import ssh
from raggio.launcher.cluster_config import ClusterConfig
from raggio.launcher.node_provider import (
    NODE_KIND_WORKER, TAG_RAY_NODE_KIND, TAG_RAY_USER_NODE_TYPE, NodeProvider, new_node_tags)
from raggio.launcher.updater import NodeFailed, NodeUpdater, UpdatePlan, file_mounts_digest
from raggio.rpc.kept_connection import KeptConnection, Unavailable

logger = logging.getLogger("raggio.autoscaler")

FIRST_BACKOFF_S = 5.0
#: How long a provider node whose raggio node died is left to end by itself before the
#: autoscaler releases it (a second stop signal would cut its own clean-up short).
DEAD_NODE_GRACE_S = 10.0
#: How long the busy share must stay above (or below) target_utilization_fraction before the
#: autoscaler adds (or drains) nodes for it, when the file sets no scale_up_cooldown_s
#: (scale_down_cooldown_s).
DEFAULT_UTILISATION_WAIT_S = 30.0


@dataclasses.dataclass
class _Backoff:
    """A node type whose last launch failed: not launched again before ``until``."""

    until: float
    delay_s: float


class Autoscaler:
    """The state kept between rounds: launches and removals in flight, back-offs."""

    config: ClusterConfig
    provider: NodeProvider
    in_flight: set[asyncio.Task]  #: launches and removals running in the background
    #: node type -> nodes asked of the provider whose create_node has not returned (so the
    #: provider does not list them yet): counted as launching, not launched twice
    creating: collections.Counter
    backoff: dict[str, _Backoff]  #: node type -> its back-off
    #: provider node id -> when it was first seen launching (or with its raggio node dead)
    first_seen: dict[str, float]
    #: provider node id -> the raggio node id (hex) it ran when last seen alive: how a node
    #: matched by address (the local provider's) is known dead once its address is free
    ran: dict[str, str]
    #: ("above" or "below" target_utilization_fraction, or None; since when)
    utilisation: tuple[str | None, float]
    #: provider node id -> (raggio node id, why) of each removal in flight (drain, release);
    #: no raggio node id for a node whose raggio node died or never joined (no drain)
    removing: dict[str, tuple[str | None, str]]
    #: raggio node id (hex) -> (why it refused its last drain, when: ``time.time()``)
    kept: dict[str, tuple[str, float]]
    #: Ray's autoscaler counters (``started_nodes``, ``stopped_nodes``, ``failed_create_nodes``,
    #: ``drain_node_exceptions``, ``update_loop_exceptions``), since this monitor started;
    #: each round writes them into its status, for the head's metrics endpoint.
    counters: collections.Counter
    #: Seconds until the next idle node reaches the idle timeout (None: no node will): the
    #: monitor runs its next round then if that is sooner than its interval, so that a node
    #: leaves at its timeout, not up to a round later.
    next_timeout_in_s: float | None

    def __init__(self, config: ClusterConfig, provider: NodeProvider, store: KeptConnection,
                 *, token: str, head_ip: str, logs_dir: str, clock=time.monotonic) -> None:
        self.config = config
        self.provider = provider
        self.store = store
        self.token = token
        self.head_ip = head_ip
        self.logs_dir = logs_dir
        self.clock = clock
        self.in_flight = set()
        self.creating = collections.Counter()
        self.backoff = {}
        self.first_seen = {}
        self.ran = {}
        self.utilisation = (None, 0.0)
        self.removing = {}
        self.kept = {}
        self.next_timeout_in_s = None
        self.counters = collections.Counter()
        self.mounts_digest = None
        self._creating = asyncio.Lock()

    async def update(self) -> dict:
        """One round; returns (and records) the status it wrote."""
        cfg = get_config()
        nodes, groups, request, actors = await asyncio.gather(
            self.store.call("get_nodes"), self.store.call("placement_group_table"),
            self.store.call("kv_get", RESOURCE_REQUEST_KEY), self.store.call("list_actors"))
        requests = json.loads(request) if request else []
        now = self.clock()
        workers = await asyncio.to_thread(self.provider.describe_nodes,
                                          {TAG_RAY_NODE_KIND: NODE_KIND_WORKER})
        alive = {_hex(n["node_id"]): n for n in nodes if n["state"] == "ALIVE"}
        known = {_hex(n["node_id"]) for n in nodes}  #: alive or dead
        by_ip = {n["node_ip"]: key for key, n in alive.items() if not n.get("is_head")}
        self.kept = {key: kept for key, kept in self.kept.items() if key in alive}
        actor_nodes = {_hex(a["node_id"]) for a in actors
                       if a.get("node_id") and a.get("state") != "DEAD"}
        view: list[dict] = []
        matched: set[str] = set()
        never_joined: collections.Counter = collections.Counter()  #: node type -> nodes
        # What is kept per provider node lasts while the provider lists it: a pool's
        # address that comes back is a new node.
        listed = {worker.node_id for worker in workers}
        self.first_seen = {k: v for k, v in self.first_seen.items() if k in listed}
        self.ran = {k: v for k, v in self.ran.items() if k in listed}
        for worker in workers:
            node_id, node_type = worker.node_id, worker.tags[TAG_RAY_USER_NODE_TYPE]
            key = (worker.cluster_node_id or by_ip.get(worker.internal_ip)
                   or self.ran.get(node_id))
            # Leaving: the provider still holds it (its slot under max_workers, its address
            # in a pool), but it is not capacity.
            releasing = {"node_type": node_type, "state": resource_demand.RELEASING,
                         "provider_id": node_id}
            if node_id in self.removing:
                matched.add(key)  # draining: neither capacity nor unmanaged
                view.append(releasing)
            elif key in alive and alive[key].get("draining"):
                matched.add(key)  # an earlier monitor drained it: finish its removal
                self._start_removal(node_id, key, "drained already (by an earlier monitor, "
                                                  "or `raggio drain-node`)")
                view.append(releasing)
            elif key in alive:
                matched.add(key)
                self.first_seen.pop(node_id, None)
                self.ran[node_id] = key
                view.append(self._running(alive[key], key, worker.tags, node_id, actor_nodes))
            elif key in known:
                # Its raggio node died (a reclaimed spot node, a crash, `raggio down
                # --workers-only`): the machine is released once the node's own exit (or a
                # restart, `raggio up`'s) has had time to finish, and the plan replaces it
                # where the limits leave room for both meanwhile.
                if now - self.first_seen.setdefault(node_id, now) >= DEAD_NODE_GRACE_S:
                    self._start_removal(node_id, None, "its raggio node died")
                view.append(releasing)
            elif (now - self.first_seen.setdefault(node_id, now)
                  > cfg.autoscaler_node_start_wait_s):
                never_joined[node_type] += 1
                self._start_removal(node_id, None, "it never joined")
                view.append(releasing)
            else:
                view.append({"node_type": node_type, "state": "launching",
                             "provider_id": node_id})
        for node_type, count in never_joined.items():  # one failure per type: one back-off
            await self._launch_failed(node_type, count, "the node did not join the cluster "
                                      f"within {cfg.autoscaler_node_start_wait_s:.0f} s")
        for node_type, count in self.creating.items():
            view += [{"node_type": node_type, "state": "launching"}] * count
        head_type = self.config.head_node_type
        for key, node in alive.items():
            if node.get("is_head"):
                view.append(dict(self._running(node, key, {}, None, actor_nodes),
                                 node_type=head_type, is_head=True))
            elif key not in matched:  # joined by hand: capacity, never removed
                view.append(dict(self._running(node, key, {}, None, actor_nodes),
                                 node_type="(unmanaged)", is_head=True))
        plan = resource_demand.plan(
            self.config.node_types, view,
            demands=[d["resources"] for n in alive.values() for d in n.get("demand", [])],
            placement_groups=_pending_groups(groups), resource_requests=requests,
            max_workers=self.config.max_workers,
            upscaling_speed=self.config.upscaling_speed,
            target_utilization_fraction=self._sustained_target(view, now),
            backing_off={node_type: backoff.until - now
                         for node_type, backoff in self.backoff.items() if now < backoff.until})
        reasons = list(plan.reasons)
        for node_type, count in plan.launch.items():
            self._start_launch(node_type, count)
        idle_timeout_s = self.config.idle_timeout_minutes * 60
        self.next_timeout_in_s = min(
            (idle_timeout_s - n["idle_s"] for n in view
             if not n.get("is_head") and 0 < n.get("idle_s", 0) < idle_timeout_s), default=None)
        for node in resource_demand.idle_to_terminate(view, self.config.node_types,
                                                      idle_timeout_s, requests) + plan.drain:
            self._start_removal(node["provider_id"], node["node_id"],
                                f"idle for {node['idle_s']:.0f} s")
        reasons += [f"draining node {key[:8]} ({why}) before removing it"
                    if key is not None else f"removing node {node_id} ({why})"
                    for node_id, (key, why) in self.removing.items()]
        reasons += [f"keeping idle node {key[:8]}: it refused to drain ({why})"
                    for key, (why, _) in self.kept.items()]
        status = await self._record_status(view, plan, reasons)
        return status

    def _sustained_target(self, view: list[dict], now: float) -> float | None:
        """``target_utilization_fraction`` once the busy share has stayed above it for
        ``scale_up_cooldown_s`` (the plan then adds nodes), or below it for
        ``scale_down_cooldown_s`` (the plan may then drain idle nodes); None meanwhile, or
        without the setting. The busy share is the largest, over CPU and GPU, of in use to
        total on the running nodes."""
        policy = self.config.autoscaling_config
        target = policy.get("target_utilization_fraction")
        if target is None:
            return None
        share = _busy_share([n for n in view if n["state"] == "running"])
        side = "above" if share > target else "below" if share < target else None
        if side != self.utilisation[0]:
            self.utilisation = (side, now)
        if side is None:
            return None
        wait_s = policy.get(f"scale_{'up' if side == 'above' else 'down'}_cooldown_s",
                            DEFAULT_UTILISATION_WAIT_S)
        return target if now - self.utilisation[1] >= wait_s else None

    # -- reading the cluster --

    def _running(self, node: dict, key: str, tags: dict, provider_id: str | None,
                 actor_nodes: set[str]) -> dict:
        """The planner's dict of an alive node. Its idle time runs from when the node
        reported its last lease, request or bundle gone (the control store stamps
        ``idle_since``), or from its last refused drain, whichever is later."""
        busy = (node.get("demand") or key in actor_nodes or not node.get("idle_since")
                or any(node["available"].get(k, 0) < v - 1e-9
                       for k, v in node["resources"].items()))
        if busy:
            self.kept.pop(key, None)
            idle_s = 0.0
        else:  # in the control store's clock (``time.time()``), which stamps idle_since
            refused_at = self.kept[key][1] if key in self.kept else 0.0
            idle_s = max(0.0, time.time() - max(node["idle_since"], refused_at))
        return {"node_type": tags.get(TAG_RAY_USER_NODE_TYPE), "state": "running",
                "total": node["resources"], "available": node["available"], "idle_s": idle_s,
                "node_id": key, "provider_id": provider_id}

    # -- acting --

    def _start_launch(self, node_type: str, count: int) -> None:
        self.creating[node_type] += count
        task = asyncio.get_running_loop().create_task(self._launch(node_type, count))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    async def _launch(self, node_type: str, count: int) -> None:
        logger.info("launching %d x %s", count, node_type)
        spec = self.config.node_types[node_type]
        tags = new_node_tags(self.config.cluster_name, NODE_KIND_WORKER, node_type,
                             use_spot=spec.use_spot)
        # Nodes to set up are told apart by listing before and after creating them: one
        # launch at a time, so that two in flight never both take the other's nodes.
        async with self._creating if self.provider.node_updaters else contextlib.nullcontext():
            before = set(await asyncio.to_thread(
                self.provider.non_terminated_nodes, {TAG_RAY_NODE_KIND: NODE_KIND_WORKER}))
            try:
                await asyncio.to_thread(self.provider.create_node_with_resources_and_labels,
                                        spec.node_config, tags, count, spec.resources,
                                        spec.labels)
            except Exception as exc:  # the provider's words are the report
                self.counters["failed_create_nodes"] += count  # Ray's: create_node raised
                await self._launch_failed(node_type, count, f"{type(exc).__name__}: {exc}")
                return
            finally:
                self.creating[node_type] -= count
            self.counters["started_nodes"] += count
            if not self.provider.node_updaters:
                self.backoff.pop(node_type, None)
                return
            new = set(await asyncio.to_thread(
                self.provider.non_terminated_nodes,
                {TAG_RAY_NODE_KIND: NODE_KIND_WORKER})) - before
        results = await asyncio.gather(*(self._set_up(node_id, spec) for node_id in new),
                                       return_exceptions=True)
        failed = sorted({str(r) for r in results if isinstance(r, BaseException)})
        if failed:  # one failure of the launch: its back-off doubles once
            await self._launch_failed(node_type, sum(isinstance(r, BaseException)
                                                     for r in results), "; ".join(failed))
        else:
            self.backoff.pop(node_type, None)

    async def _set_up(self, node_id: str, node_type) -> None:
        """Set a new node up over SSH as ``raggio up`` would; on failure release it."""
        ip = self.provider.external_ip(node_id)
        name = f"worker-{ip}"
        target = ssh.SshTarget.of(self.config.auth, ip)
        session = None

        async def connect() -> ssh.SshSession:
            nonlocal session
            session = await ssh.connect(target, wait_s=get_config().launcher_ssh_wait_s)
            return session

        updater = NodeUpdater(
            self.config, self.provider, node_id, name=name, node_type=node_type, is_head=False,
            head_ip=self.head_ip, token=self.token, plan=UpdatePlan(), alive=False,
            log_path=os.path.join(self.logs_dir, f"monitor-{name}.log"),
            mounts_hash=await self._mounts_digest(),
            connect=connect,
            on_status=lambda status, detail: status and logger.info("%s: %s", name, status))
        try:
            await updater.run()
        except NodeFailed:
            await self._release(node_id, "its setup failed")
            raise
        finally:
            if session is not None:
                await session.close()

    async def _mounts_digest(self) -> str:
        """The cluster file's file mounts' digest, computed once (the file never changes
        under a running monitor)."""
        if self.mounts_digest is None:
            self.mounts_digest = await asyncio.to_thread(file_mounts_digest, self.config)
        return self.mounts_digest

    async def _launch_failed(self, node_type: str, count: int, error: str) -> None:
        now = self.clock()
        previous = self.backoff.get(node_type)
        delay_s = min(previous.delay_s * 2 if previous else FIRST_BACKOFF_S,
                      get_config().autoscaler_max_launch_backoff_s)
        self.backoff[node_type] = _Backoff(until=now + delay_s, delay_s=delay_s)
        logger.warning("failed to launch %d x %s (trying again in %.0f s): %s", count,
                       node_type, delay_s, error)
        value = await self.store.call("kv_get", launch_failures.LAUNCH_FAILURES_KEY)
        await self.store.call("kv_put", [launch_failures.LAUNCH_FAILURES_KEY,
                                         launch_failures.with_failure(value, node_type, count,
                                                                      error), True])

    def _start_removal(self, node_id: str, key: str | None, why: str) -> None:
        """Drain the node (raggio node ``key``; None: nothing runs there to drain) in the
        background, then release it (see the module docstring)."""
        if node_id in self.removing:
            return
        self.removing[node_id] = (key, why)
        task = asyncio.get_running_loop().create_task(self._remove(node_id, key, why))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)
        task.add_done_callback(lambda _t: self.removing.pop(node_id, None))

    async def _remove(self, node_id: str, key: str | None, why: str) -> None:
        if key is not None and not await self._drained(node_id, key, why):
            return
        try:
            await self._release(node_id, why)
        except Exception:  # a provider's surprise: the next round sees the node again
            logger.exception("could not release node %s", node_id)

    async def _drained(self, node_id: str, key: str, why: str) -> bool:
        """Whether the node accepted the drain (else it stays, and ``kept`` says why)."""
        logger.info("draining node %s (%s): %s", node_id, key, why)
        try:
            reply = await self.store.call(
                "drain_node", {"node_id": bytes.fromhex(key),
                               "reason": DRAIN_IDLE_TERMINATION,
                               "reason_message": f"removed by the autoscaler: {why}",
                               "deadline_s": DRAIN_DEADLINE_S},
                timeout_s=DRAIN_DEADLINE_S + 30)
        except Unavailable as exc:
            self.counters["drain_node_exceptions"] += 1
            logger.warning("could not drain node %s (%s); a later round tries again",
                           node_id, exc)
            return False
        except Exception:  # a bug must not end the removals unseen
            self.counters["drain_node_exceptions"] += 1
            logger.exception("draining node %s failed; a later round tries again", node_id)
            return False
        if not reply["is_accepted"]:
            logger.info("node %s stays: it refused to drain (%s)", node_id,
                        reply["rejection_reason_message"])
            # Idle again for a whole timeout before the next try.
            self.kept[key] = (reply["rejection_reason_message"], time.time())
            return False
        self.kept.pop(key, None)
        return True

    async def _release(self, node_id: str, why: str) -> None:
        """Stop raggio on a worker (over SSH where the launcher set it up) and give it back."""
        logger.info("removing node %s: %s", node_id, why)
        if self.provider.node_updaters:
            target = ssh.SshTarget.of(self.config.auth, self.provider.external_ip(node_id))
            try:
                async with await ssh.connect(target, wait_s=10) as session:
                    await session.run("raggio stop", timeout_s=60)
            except Exception as exc:  # gone already: it is released all the same
                logger.warning("could not stop raggio on %s (%s); releasing it", node_id, exc)
        await asyncio.to_thread(self.provider.terminate_node, node_id)
        self.counters["stopped_nodes"] += 1

    async def _record_status(self, view: list[dict], plan, reasons: list[str]) -> dict:
        def in_state(state: str) -> list[dict]:
            return [n for n in view if n["state"] == state]

        def resources(nodes: list[dict]) -> dict[str, float]:
            return resource_demand.summed([resource_demand.node_total(n, self.config.node_types)
                                           or {} for n in nodes])

        running, launching = in_state("running"), in_state("launching")
        status = {"time": time.time(), "cluster_name": self.config.cluster_name,
                  "running": dict(collections.Counter(n["node_type"] for n in running)),
                  "launching": dict(collections.Counter(n["node_type"] for n in launching)),
                  "limits": {name: [spec.min_workers, spec.max_workers]  # worker types
                             for name, spec in self.config.node_types.items()
                             if name != self.config.head_node_type},
                  "workers": sum(1 for n in running if not n.get("is_head")),
                  "resources": resources(running), "pending_resources": resources(launching),
                  "counters": dict(self.counters),
                  "idle": {n["node_id"]: round(n["idle_s"], 1) for n in view
                           if n.get("idle_s") and not n.get("is_head")},
                  "infeasible": plan.infeasible, "reasons": reasons}
        await self.store.call("kv_put", [STATUS_KEY, json.dumps(status).encode(), True])
        return status


def _busy_share(running: list[dict]) -> float:
    """The largest share in use, over CPU and GPU, of the running nodes' totals."""
    shares = []
    for key in ("CPU", "GPU"):
        total = sum(n["total"].get(key, 0.0) for n in running)
        if total > 0:
            free = sum(n["available"].get(key, 0.0) for n in running)
            shares.append((total - free) / total)
    return max(shares, default=0.0)


def _hex(node_id) -> str:
    return node_id.hex() if isinstance(node_id, (bytes, bytearray)) else str(node_id)


def _pending_groups(groups: dict) -> list[dict]:
    return [{"bundles": [group["bundles"][i] for i in sorted(group["bundles"])],
             "strategy": group["strategy"]}
            for group in groups.values() if group["state"] == "PENDING"]
