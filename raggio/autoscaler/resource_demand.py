"""Which nodes the autoscaler should add and which it may remove: demand bin-packed onto types.

Pure policy: no I/O, no clock, no processes. The autoscaler's update loop
(``autoscaler.py``) reads the cluster's nodes, pending demand, placement groups and
``request_resources`` bundles from the control store, calls ``plan`` and
``idle_to_terminate``, and acts on what they return through the node provider. Ray's
counterpart is ``ray/autoscaler/_private/resource_demand_scheduler.py``; ``plan``
follows its steps, in its order:

1. min_workers: each type gets nodes up to its min_workers.
2. ``request_resources`` bundles are packed onto every node's *total* resources, as if
   the cluster were idle (the request is a size the cluster must be able to hold, not work
   on top of its load); the bundles that do not fit get new nodes.
3. Pending placement groups, each whole or not at all: STRICT_PACK on one node; PACK on
   one node if one holds it, else bundle by bundle; SPREAD on distinct nodes where it can;
   STRICT_SPREAD on distinct nodes or not at all.
4. Pending task and actor shapes, largest first (Ray's order), onto the *available*
   resources of the nodes in the order given (a launching node counts with its type's
   whole resources), then onto the nodes this plan launches.
5. With ``target_utilization_fraction`` (the seed's policy): a resource busier than the
   fraction gets nodes of the type that holds most of it; below it, idle nodes whose
   removal keeps every resource under the fraction may be drained (``Plan.drain``).

A new node is of the cheapest type that fits the shape and may launch now (a type whose
last launch failed waits out its back-off, and the next cheapest stands in): first the
fewest resources the shape does not ask for beyond CPU and memory (so a GPU type is dear
for a task that asks for no GPU: Ray's conserve-GPU rule, for custom resources too), then
the fewest total resources, each counted as a share of the most any type has (so bytes of
memory weigh no more than CPUs), ties by name. No type grows past its max_workers, nor the
cluster past its max_workers. Launches for demand and utilisation are also capped per type
by ``upscaling_speed`` (Ray's rule); those for min_workers, request_resources and placement
groups are not (Ray's exemptions: the user asked for that size).

A shape that asks for a placement group's resources (``CPU_group_<id>``) waits for its
group, which step 3 plans for: it never launches a node and is never infeasible.

The inputs are plain data. ``node_types`` maps a name to a ``NodeType``
(``raggio/launcher/cluster_config.py``; its ``resources``, ``min_workers`` and
``max_workers`` are read). A node is a dict: ``node_type``, ``state`` (``"running"``,
``"launching"``, or ``"releasing"``: a worker the provider still holds while the autoscaler
removes it, which counts against max_workers but is neither capacity nor one of its type's
min_workers), ``total`` and ``available`` (a running node's resources), ``idle_s``
(how long it has been idle; 0 or absent while busy) and ``is_head`` (true for the head
only, which no limit counts and nothing removes). Shapes and bundles are resource dicts.

Not owned here: when a node counts as idle (no leases, actors or primary objects: the
caller measures ``idle_s``), whether a busy share *stays* past the target, launching,
draining and terminating (``autoscaler.py``, through the provider).
"""

from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Iterable

from raggio.common.placement_group_resources import is_group_resource
from raggio.common.resources import fits, take

#: The least number of launches of one type that may be pending at once, whatever
#: upscaling_speed says (Ray's UPSCALING_INITIAL_NUM_NODES).
MIN_PENDING_LAUNCHES = 5
#: Why a node is launched, in the order the reasons list them.
_MIN_WORKERS, _REQUEST, _GROUP, _DEMAND, _UTILISATION = (
    "min_workers", "request_resources", "placement group", "demand", "utilisation")
_CAUSES = (_MIN_WORKERS, _REQUEST, _GROUP, _DEMAND, _UTILISATION)
#: The launches upscaling_speed never holds back.
_UNCAPPED = (_MIN_WORKERS, _REQUEST, _GROUP)
#: Resources every node has: a type is not dear for having them when the shape asks none.
_COMMON = ("CPU", "memory", "object_store_memory")
_STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")
_EPSILON = 1e-9
#: The state of a worker that is being removed (see the module docstring).
RELEASING = "releasing"


@dataclasses.dataclass
class Plan:
    """What the autoscaler should do this round, and why."""

    launch: dict[str, int]  #: node type -> how many new nodes
    infeasible: list[dict[str, float]]  #: the distinct shapes that fit no node type
    reasons: list[str]  #: why it launches, or does not, in plain words
    #: Idle nodes (the caller's dicts) that target_utilization_fraction lets go, most idle
    #: first; empty without it or when the plan launches anything.
    drain: list[dict]


def plan(node_types: dict, nodes: list[dict], *, demands: Iterable[dict] = (),
         placement_groups: Iterable[dict] = (), resource_requests: Iterable[dict] = (),
         max_workers: int, upscaling_speed: float = 1.0,
         target_utilization_fraction: float | None = None,
         backing_off: dict[str, float] | None = None) -> Plan:
    """The nodes to launch for the cluster's demand, within its limits.

    Args:
        node_types: node type name -> ``NodeType`` (``ClusterConfig.node_types``).
        nodes: every node of the cluster, the head included (see the module docstring).
        demands: the shape of each pending task or actor lease, one per lease.
        placement_groups: the pending groups: ``{"bundles": [...], "strategy": ...}``.
        resource_requests: the ``request_resources`` bundles: the cluster must be able to
            hold them all at once.
        max_workers: the cluster's limit on worker nodes (the head not counted).
        upscaling_speed: pending launches of a type stay within
            ``max(5, upscaling_speed * its running nodes)``.
        target_utilization_fraction: the busy share to keep each resource at or under;
            None turns the utilisation policy off.
        backing_off: node type -> seconds until it may launch again (its last launch
            failed): no new node of it, so a shape goes to the next cheapest type that fits.

    Returns:
        The ``Plan``: launches per type, infeasible shapes, reasons, and drainable nodes.
    """
    if target_utilization_fraction is not None and not 0 < target_utilization_fraction <= 1:
        raise ValueError(f"target_utilization_fraction is {target_utilization_fraction}: "
                         "it must be above 0 and at most 1 (the busy share to keep under).")
    planner = _Planner(node_types, nodes, max_workers, backing_off or {})
    planner.add_min_workers()
    planner.hold_requests(resource_requests)
    for group in placement_groups:
        planner.place_group(group)
    planner.place_demands(demands)
    if target_utilization_fraction is not None:
        planner.scale_for_utilisation(target_utilization_fraction)
    launch = planner.cap_launches(upscaling_speed)
    drain = []
    if target_utilization_fraction is not None and not launch:
        drain = planner.drainable(target_utilization_fraction)
    return Plan(launch=launch, infeasible=list(planner.infeasible.values()),
                reasons=planner.reasons(launch, drain, target_utilization_fraction),
                drain=drain)


def idle_to_terminate(nodes: list[dict], node_types: dict, idle_timeout_s: float,
                      resource_requests: Iterable[dict] = ()) -> list[dict]:
    """The worker nodes idle past ``idle_timeout_s`` to remove, the most idle first.

    Never the head, never a launching node, never a type below its min_workers, and never
    the nodes that hold the standing ``request_resources`` bundles (packed onto the least
    idle nodes first, so the most idle go). Returns the caller's node dicts.
    """
    workers = collections.Counter(n["node_type"] for n in nodes
                                  if not n.get("is_head") and n["state"] != RELEASING)
    held = _holding_requests(nodes, node_types, resource_requests)
    idle = [n for n in nodes if not n.get("is_head") and n["state"] == "running"
            and id(n) not in held and _idle_s(n) > 0 and _idle_s(n) >= idle_timeout_s]
    chosen = []
    for node in sorted(idle, key=_idle_s, reverse=True):
        if workers[node["node_type"]] > _min_workers(node_types, node["node_type"]):
            workers[node["node_type"]] -= 1
            chosen.append(node)
    return chosen


@dataclasses.dataclass(eq=False)
class _Node:
    """A node as the packing sees it: one of the caller's, or one this plan launches."""

    node_type: str
    total: dict[str, float]
    available: dict[str, float]
    node: dict | None = None  #: the caller's dict; None for a node this plan launches
    cause: str = ""  #: why this plan launches it (one of _CAUSES); "" for the caller's
    held: bool = False  #: this plan packed something onto it (so it is not drained)


class _Planner:
    """The packing state of one ``plan`` call: the nodes with what is left on them."""

    node_types: dict
    max_workers: int
    backing_off: dict[str, float]  #: node type -> seconds before it may launch again
    nodes: list[_Node]
    workers: collections.Counter  #: worker nodes per type, existing and launched here
    releasing: collections.Counter  #: those of ``workers`` that are being removed
    busy: dict[str, float]  #: resources in use on the running nodes, before this plan
    #: resource -> the most of it any type has (new nodes' cost is in shares of it)
    most: dict[str, float]
    feasible: dict[tuple, bool]  #: shape key -> whether some node or type fits it
    infeasible: dict[tuple, dict]  #: shape key -> shape
    first_room: dict[tuple, int]  #: shape key -> no node before this index has room for it
    blocked: dict[str, None]  #: why a launch was refused (an ordered set)
    waiting: list[str]  #: placement groups that cannot be placed yet
    #: (node type, cause) -> what the new nodes of that cause serve -> how many
    served: dict[tuple[str, str], collections.Counter]
    #: (node type, cause) -> how many to launch, once upscaling_speed has capped them
    launches: collections.Counter

    def __init__(self, node_types: dict, nodes: list[dict], max_workers: int,
                 backing_off: dict[str, float]):
        self.node_types = node_types
        self.max_workers = max_workers
        self.backing_off = backing_off
        self.nodes = []
        self.workers = collections.Counter()
        self.releasing = collections.Counter(n["node_type"] for n in nodes
                                             if n["state"] == RELEASING)
        self.busy = collections.defaultdict(float)
        for node in nodes:
            if not node.get("is_head"):
                self.workers[node["node_type"]] += 1
            total = node_total(node, node_types)
            if total is None:
                continue
            running = node["state"] == "running"
            available = dict(node["available"]) if running else dict(total)
            self.nodes.append(_Node(node["node_type"], dict(total), available, node))
            if running:
                for key, value in _plain(total).items():
                    self.busy[key] += value - available.get(key, 0.0)
        self.most = collections.defaultdict(float)
        for node_type in node_types.values():
            for key, value in node_type.resources.items():
                self.most[key] = max(self.most[key], value)
        self.feasible = {}
        self.infeasible = {}
        self.first_room = {}
        self.blocked = {}
        self.waiting = []
        self.served = collections.defaultdict(collections.Counter)
        self.launches = collections.Counter()

    # -- the steps, in plan's order

    def add_min_workers(self) -> None:
        for name in sorted(self.node_types):
            node_type = self.node_types[name]
            staying = self.workers[name] - self.releasing[name]
            for _ in range(min(node_type.min_workers, node_type.max_workers) - staying):
                if not self._may_launch(name):
                    break
                self._launch(name, _MIN_WORKERS)

    def hold_requests(self, bundles: Iterable[dict]) -> None:
        """Pack the request onto each node's total resources; launch for what is left."""
        rooms = [(node, dict(node.total)) for node in self.nodes]
        for shape in _largest_first(bundles):
            if not self._feasible(shape):
                continue
            found = next((pair for pair in rooms if fits(pair[1], shape)), None)
            if found is None:
                new = self._new_node_for(shape, _REQUEST)
                if new is None:
                    continue
                found = (new, dict(new.total))
                rooms.append(found)
            take(found[1], shape)
            found[0].held = True
            if found[0].cause == _REQUEST:
                self.served[(found[0].node_type, _REQUEST)][_shape_text(shape)] += 1

    def place_group(self, group: dict) -> None:
        """Place one pending placement group whole, launching what it needs, or not at all."""
        strategy = group["strategy"]
        if strategy not in _STRATEGIES:
            raise ValueError(f"Unknown placement group strategy {strategy!r}: "
                             f"expected one of {', '.join(_STRATEGIES)}.")
        bundles = [shape for shape in map(_normalised, group["bundles"]) if shape]
        if strategy == "STRICT_PACK" and bundles:
            bundles = [summed(bundles)]
        text = f"{strategy} [{_shapes_text(bundles)}]"
        if not all([self._feasible(shape) for shape in bundles]):
            return
        saved = self._save()
        if not self._place_bundles(_largest_first(bundles), strategy, text):
            self._restore(saved)
            self.waiting.append(f"placement group {text} waits: the limits above leave no "
                                "room for the nodes it needs")

    def place_demands(self, demands: Iterable[dict]) -> None:
        for shape in _largest_first(demands):
            if any(is_group_resource(key) for key in shape):
                node = self._first_fit(shape)  # waits for its group otherwise
                if node is not None:
                    self._take(node, shape, _DEMAND, _shape_text(shape))
            elif self._feasible(shape):
                node = self._first_fit(shape) or self._new_node_for(shape, _DEMAND)
                if node is not None:
                    self._take(node, shape, _DEMAND, _shape_text(shape))

    def scale_for_utilisation(self, target: float) -> None:
        """Add nodes of the type that holds most of each resource busier than ``target``."""
        for key in sorted(self.busy):
            capacity = sum(node.total.get(key, 0.0) for node in self.nodes)
            if self.busy[key] <= target * capacity + _EPSILON:
                continue
            holders = sorted((t for t in self.node_types.values()
                              if t.resources.get(key, 0) > 0 and t.max_workers > 0),
                             key=lambda t: (-t.resources[key], t.name))
            if not holders:
                continue
            largest = holders[0]
            needed = math.ceil((self.busy[key] / target - capacity) / largest.resources[key]
                               - _EPSILON)
            text = f"{key} {self.busy[key] / capacity:.0%} busy"
            for _ in range(needed):
                if not self._may_launch(largest.name):
                    break
                self._launch(largest.name, _UTILISATION)
                self.served[(largest.name, _UTILISATION)][text] = 1

    def cap_launches(self, upscaling_speed: float) -> dict[str, int]:
        """Hold back launches for demand and utilisation past upscaling_speed (Ray's rule)."""
        wanted = self.launches = collections.Counter(
            (n.node_type, n.cause) for n in self.nodes if n.cause)
        running = collections.Counter(n.node_type for n in self.nodes
                                      if n.node is not None and n.node["state"] == "running")
        launching = collections.Counter(n.node_type for n in self.nodes
                                        if n.node is not None and n.node["state"] == "launching")
        launch = {}
        for name in sorted({name for name, _ in wanted}):
            allowed = max(MIN_PENDING_LAUNCHES, int(upscaling_speed * max(running[name], 1)))
            uncapped = sum(wanted[(name, cause)] for cause in _UNCAPPED)
            room = max(allowed - launching[name] - uncapped, 0)
            for cause in (_DEMAND, _UTILISATION):
                count = min(wanted[(name, cause)], room)
                if count < wanted[(name, cause)]:
                    pending = f" ({launching[name]} launching)" if launching[name] else ""
                    self.blocked[f"not launching {wanted[(name, cause)] - count} more {name} "
                                 f"yet: upscaling_speed {upscaling_speed:g} allows {allowed} "
                                 f"pending launches of it at once{pending}"] = None
                wanted[(name, cause)] = count
                room -= count
            count = uncapped + wanted[(name, _DEMAND)] + wanted[(name, _UTILISATION)]
            if count:
                launch[name] = count
        return launch

    def drainable(self, target: float) -> list[dict]:
        """Idle nodes whose removal keeps every resource at or under ``target`` busy."""
        capacity = collections.defaultdict(float)
        for node in self.nodes:
            for key, value in _plain(node.total).items():
                capacity[key] += value
        candidates = [n for n in self.nodes if n.node is not None and not n.held
                      and n.node["state"] == "running" and not n.node.get("is_head")
                      and _idle_s(n.node) > 0]
        drained = []
        for node in sorted(candidates, key=lambda n: _idle_s(n.node), reverse=True):
            if self.workers[node.node_type] <= _min_workers(self.node_types, node.node_type):
                continue
            left = {key: value - node.total.get(key, 0.0) for key, value in capacity.items()}
            if any(used > target * left[key] + _EPSILON for key, used in self.busy.items()):
                continue
            capacity = left
            self.workers[node.node_type] -= 1
            drained.append(node.node)
        return drained

    def reasons(self, launch: dict[str, int], drain: list[dict],
                target: float | None) -> list[str]:
        out = []
        for name in sorted(launch):
            for cause in _CAUSES:
                if self.launches[(name, cause)]:
                    out.append(f"launching {self.launches[(name, cause)]} x {name}: "
                               f"{self._why(name, cause, target)}")
        out += list(self.blocked) + self.waiting
        out += [f"{_shape_text(shape)} fits no node type" for shape in self.infeasible.values()]
        for name, count in collections.Counter(n["node_type"] for n in drain).items():
            out.append(f"may drain {count} x {name}: idle, and the rest keep every resource at "
                       f"or under target_utilization_fraction {target:g}")
        return out

    def _why(self, name: str, cause: str, target: float | None) -> str:
        served = self.served[(name, cause)]
        if cause == _MIN_WORKERS:
            return f"min_workers {self.node_types[name].min_workers}"
        if cause == _REQUEST:
            return "request_resources " + ", ".join(
                f"{count} x {text}" if count > 1 else text for text, count in served.items())
        if cause == _GROUP:
            return "placement group " + "; ".join(served)
        if cause == _DEMAND:
            shapes = _and(f"{count} pending {text}" for text, count in served.items())
            return f"{shapes} tasks/actors"
        return f"{_and(served)}, above target_utilization_fraction {target:g}"

    # -- packing

    def _place_bundles(self, bundles: list[dict], strategy: str, text: str) -> bool:
        if strategy == "PACK":
            whole = summed(bundles)
            node = self._first_fit(whole)
            if node is not None:
                self._take(node, whole, _GROUP, text)
                return True
        used: list[_Node] = []
        for shape in bundles:
            spread = strategy in ("SPREAD", "STRICT_SPREAD")
            node = self._first_fit(shape, skip=used if spread else ())
            if node is None and strategy == "SPREAD":
                node = self._first_fit(shape)
            node = node or self._new_node_for(shape, _GROUP)
            if node is None:
                return False
            self._take(node, shape, _GROUP, text)
            used.append(node)
        return True

    def _first_fit(self, shape: dict, skip=()) -> _Node | None:
        """The first node with room for ``shape``, past the ones in ``skip``."""
        # Room only shrinks while packing, so the search for a shape resumes where the
        # last one for it stopped: 10,000 pending tasks take one pass, not 10,000.
        key = _key(shape)
        for index in range(self.first_room.get(key, 0), len(self.nodes)):
            node = self.nodes[index]
            if fits(node.available, shape) and node not in skip:
                if not skip:
                    self.first_room[key] = index
                return node
        if not skip:
            self.first_room[key] = len(self.nodes)
        return None

    def _take(self, node: _Node, shape: dict, cause: str, text: str) -> None:
        take(node.available, shape)
        node.held = True
        if node.cause == cause:
            served = self.served[(node.node_type, cause)]
            served[text] = 1 if cause == _GROUP else served[text] + 1

    def _new_node_for(self, shape: dict, cause: str) -> _Node | None:
        """A new node of the cheapest type that fits ``shape`` and may still grow."""
        def cost(node_type) -> tuple:
            unasked = sum(1 for key, value in node_type.resources.items()
                          if value > 0 and key not in shape and key not in _COMMON)
            share = sum(value / self.most[key] for key, value in node_type.resources.items()
                        if value > 0)
            return unasked, share, node_type.name

        fitting = sorted((t for t in self.node_types.values()
                          if t.max_workers > 0 and fits(t.resources, shape)), key=cost)
        if not fitting:
            self.blocked[f"{_shape_text(shape)} waits for room on a running node: "
                         "no node type that may launch fits it"] = None
        for node_type in fitting:
            if self._may_launch(node_type.name):
                return self._launch(node_type.name, cause)
        return None

    def _may_launch(self, name: str) -> bool:
        """May one more node of type ``name`` start? If not, note why."""
        if self.workers[name] >= self.node_types[name].max_workers:
            self.blocked[f"not launching {name}: max_workers "
                         f"{self.node_types[name].max_workers} reached"
                         f"{_being_removed(self.releasing[name])}"] = None
            return False
        if sum(self.workers.values()) >= self.max_workers:
            self.blocked["not launching more nodes: the cluster's max_workers "
                         f"{self.max_workers} reached"
                         f"{_being_removed(sum(self.releasing.values()))}"] = None
            return False
        if name in self.backing_off:
            self.blocked[f"not launching {name} for {self.backing_off[name]:.0f} s more: its "
                         "last launch failed"] = None
            return False
        return True

    def _launch(self, name: str, cause: str) -> _Node:
        resources = self.node_types[name].resources
        node = _Node(name, dict(resources), dict(resources), cause=cause)
        self.nodes.append(node)
        self.workers[name] += 1
        return node

    def _feasible(self, shape: dict) -> bool:
        """Does some node, or some type that may have workers, fit ``shape``? If none, note it."""
        key = _key(shape)
        if key not in self.feasible:
            self.feasible[key] = (any(fits(node.total, shape) for node in self.nodes)
                                  or any(t.max_workers > 0 and fits(t.resources, shape)
                                         for t in self.node_types.values()))
            if not self.feasible[key]:
                self.infeasible[key] = shape
        return self.feasible[key]

    def _save(self) -> tuple:
        return (len(self.nodes), [(dict(n.available), n.held) for n in self.nodes],
                collections.Counter(self.workers),
                {key: collections.Counter(value) for key, value in self.served.items()})

    def _restore(self, saved: tuple) -> None:
        count, states, workers, served = saved
        del self.nodes[count:]
        for node, (available, held) in zip(self.nodes, states):
            node.available, node.held = available, held
        self.first_room.clear()
        self.workers = workers
        self.served = collections.defaultdict(collections.Counter, served)


def _holding_requests(nodes: list[dict], node_types: dict, bundles: Iterable[dict]) -> set[int]:
    """The ids of the nodes that hold the request_resources bundles, packed onto totals,
    the least idle nodes first."""
    rooms = [(node, dict(total)) for node in sorted(nodes, key=_idle_s)
             if (total := node_total(node, node_types)) is not None]
    held = set()
    for shape in _largest_first(bundles):
        found = next((pair for pair in rooms if fits(pair[1], shape)), None)
        if found is not None:
            take(found[1], shape)
            held.add(id(found[0]))
    return held


def node_total(node: dict, node_types: dict) -> dict | None:
    """A node's total resources: a launching one has its type's; None when unknown or
    releasing (nothing more runs there)."""
    if node["state"] == "running":
        return node["total"]
    if node["state"] == RELEASING:
        return None
    node_type = node_types.get(node["node_type"])
    return None if node_type is None else node_type.resources


def _being_removed(count: int) -> str:
    return f" ({count} of them being removed)" if count else ""


def _idle_s(node: dict) -> float:
    return node.get("idle_s") or 0.0


def _min_workers(node_types: dict, name: str) -> int:
    node_type = node_types.get(name)
    return 0 if node_type is None else node_type.min_workers


def _plain(resources: dict) -> dict:
    """The resources that are not a placement group's."""
    return {key: value for key, value in resources.items() if not is_group_resource(key)}


def _normalised(shape: dict) -> dict:
    """``shape`` without the amounts that ask for nothing."""
    return {key: float(value) for key, value in shape.items() if value > 0}


def _largest_first(shapes) -> list[dict]:
    """Non-empty shapes, the ones asking for most kinds first, then the heaviest (Ray's order)."""
    shapes = [shape for shape in map(_normalised, shapes) if shape]
    return sorted(shapes, key=lambda s: (len(s), sum(s.values()), _key(s)), reverse=True)


def summed(shapes: list[dict]) -> dict:
    """The shapes' resources added up."""
    total = collections.defaultdict(float)
    for shape in shapes:
        for key, value in shape.items():
            total[key] += value
    return dict(total)


def _key(shape: dict) -> tuple:
    return tuple(sorted(shape.items()))


def _shape_text(shape: dict) -> str:
    """``{CPU: 1, GPU: 0.5}``."""
    return "{" + ", ".join(f"{key}: {_number(value)}" for key, value in sorted(shape.items())) \
        + "}"


def _shapes_text(shapes: list[dict]) -> str:
    """``2 x {GPU: 1}, {CPU: 2}``: equal shapes counted, in their first order."""
    counts = collections.Counter(map(_shape_text, shapes))
    return ", ".join(f"{count} x {text}" if count > 1 else text for text, count in counts.items())


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def _and(parts) -> str:
    parts = list(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else "".join(parts)
