"""Resource accounting for one node: what exists, what is free, which GPUs.

A plain class with no I/O, used by the node manager to decide whether a
lease fits. Quantities are floats (fractional CPUs are allowed); GPU ids are
handed out whole. Availability may go below zero while a worker that was
blocked in ``get`` takes its CPU back, as Ray allows.
"""

from __future__ import annotations

import math

from raggio.labels import matches, unmatched_reason


def fits(available: dict[str, float], request: dict[str, float]) -> bool:
    """Does `request` fit in `available`? (Zero and negative asks always fit.)"""
    return all(available.get(k, 0.0) >= v - 1e-9 for k, v in request.items() if v > 0)


def take(available: dict[str, float], request: dict[str, float]) -> None:
    """Subtract `request` from `available` in place (which may go below zero)."""
    for key, value in request.items():
        available[key] = available.get(key, 0.0) - value


def why_waiting(request: dict, nodes: list[dict], constraints: dict | None = None) -> str:
    """Why a resource request waits, in a sentence, given the cluster's nodes (the control
    store's node records) and the request's label ``constraints`` if it has any."""
    alive = [n for n in nodes if n["state"] == "ALIVE"]
    if constraints:
        selectors = [constraints["hard"], *constraints.get("fallback", [])]
        alive = [n for n in alive
                 if any(matches(n.get("labels") or {}, conditions) for conditions in selectors)]
        if not alive or not any(fits(n["resources"], request) for n in alive):
            return unmatched_reason(constraints)
    if any(all(n["resources"].get(k, 0) >= v for k, v in request.items()) for n in alive):
        return "waiting for resources: every node that fits it is busy"
    missing = []
    for key, value in request.items():
        most = max((n["resources"].get(key, 0) for n in alive), default=0)
        if most < value:
            missing.append(f"no node has {key}" if most == 0 else
                           f"no node has {value:g} {key} (the most is {most:g})")
    return "infeasible: " + "; ".join(missing) + ". Add a node that has it."


def uses_gpus(request: dict[str, float]) -> bool:
    """Whether a request takes GPUs: its own, or a placement-group bundle's."""
    return any(value > 0 and (key == "GPU" or key.startswith("GPU_group_"))
               for key, value in request.items())


class NodeResources:
    """See the module docstring."""

    total: dict[str, float]
    available: dict[str, float]
    free_gpu_ids: list[int]
    #: Free GPU ids of each placement-group bundle that holds GPUs, by its resource name
    #: (``GPU_group_<index>_<group id>``): a task in the bundle gets its ids from there.
    bundle_gpu_ids: dict[str, list[int]]
    #: GPU id -> the bundle resource it was set aside for.
    _bundle_of_gpu: dict[int, str]

    def __init__(self, total: dict[str, float]):
        self.total = {k: float(v) for k, v in total.items()}
        self.available = dict(self.total)
        self.free_gpu_ids = list(range(int(self.total.get("GPU", 0))))
        self.bundle_gpu_ids = {}
        self._bundle_of_gpu = {}

    def is_feasible(self, request: dict[str, float]) -> bool:
        """Could this request ever fit on this node?"""
        return all(self.total.get(k, 0.0) >= v for k, v in request.items() if v > 0)

    def fits(self, request: dict[str, float]) -> bool:
        return fits(self.available, request)

    def acquire(self, request: dict[str, float]) -> list[int]:
        """Take the request's resources; return the GPU ids it was given."""
        for key, value in request.items():
            if value > 0:
                self.available[key] = self.available.get(key, 0.0) - value
        gpus = math.ceil(request.get("GPU", 0))
        if gpus:
            gpu_ids, self.free_gpu_ids = self.free_gpu_ids[:gpus], self.free_gpu_ids[gpus:]
            return gpu_ids
        return self._take_bundle_gpus(request)

    def _take_bundle_gpus(self, request: dict[str, float]) -> list[int]:
        """GPU ids for a request inside a placement group: from its bundle, or for the
        group's wildcard resource (``GPU_group_<id>``) from a bundle of the group that has
        enough free."""
        wanted = [(key, math.ceil(value)) for key, value in request.items()
                  if key.startswith("GPU_group_") and value > 0]
        if not wanted:
            return []
        for key, count in wanted:  # the bundle's own resource first
            if key in self.bundle_gpu_ids:
                ids = self.bundle_gpu_ids[key]
                self.bundle_gpu_ids[key] = ids[count:]
                return ids[:count]
        key, count = wanted[0]
        group = key.removeprefix("GPU_group_")
        for bundle, ids in self.bundle_gpu_ids.items():
            if bundle.endswith("_" + group) and len(ids) >= count:
                self.bundle_gpu_ids[bundle] = ids[count:]
                return ids[:count]
        return []

    def release(self, request: dict[str, float], gpu_ids: list[int]) -> None:
        for key, value in request.items():
            if value > 0:
                self.available[key] = min(self.available.get(key, 0.0) + value,
                                          self.total.get(key, 0.0))
        to_node = []
        for gpu_id in gpu_ids:  # back to their bundle while it is reserved, else the node
            bundle = self._bundle_of_gpu.get(gpu_id)
            if bundle in self.bundle_gpu_ids:
                self.bundle_gpu_ids[bundle] = sorted(self.bundle_gpu_ids[bundle] + [gpu_id])
            else:
                to_node.append(gpu_id)
        self.free_gpu_ids = sorted(set(self.free_gpu_ids) | set(to_node))

    def set_aside_bundle_gpus(self, group_hex: str, bundles: dict, gpu_ids: list[int]) -> None:
        """Give each bundle of a reserved group its share of the GPU ids the group took."""
        for index, bundle in sorted(bundles.items(), key=lambda item: int(item[0])):
            count = math.ceil(bundle.get("GPU", 0))
            if count:
                key = f"GPU_group_{index}_{group_hex}"
                self.bundle_gpu_ids[key], gpu_ids = gpu_ids[:count], gpu_ids[count:]
                for gpu_id in self.bundle_gpu_ids[key]:
                    self._bundle_of_gpu[gpu_id] = key

    def drop_bundle_gpus(self, group_hex: str) -> list[int]:
        """The group is released: its bundles' free GPU ids (the ids tasks still hold come
        back to the node when their leases end)."""
        freed = []
        for key in [k for k in self.bundle_gpu_ids if k.endswith("_" + group_hex)]:
            freed += self.bundle_gpu_ids.pop(key)
        return freed

    def add(self, extra: dict[str, float]) -> None:
        """New resources on this node (a placement group's bundle resources)."""
        for key, value in extra.items():
            self.total[key] = self.total.get(key, 0.0) + value
            self.available[key] = self.available.get(key, 0.0) + value

    def remove(self, extra: dict[str, float]) -> None:
        for key, value in extra.items():
            for table in (self.total, self.available):
                table[key] = table.get(key, 0.0) - value
                if abs(table[key]) < 1e-9:
                    del table[key]

    def give_cpu(self, request: dict[str, float]) -> None:
        """A worker leased with ``request`` blocked in ``get``: lend its CPUs to others.

        Its CPUs are ``CPU``, or inside a placement group the bundle's CPU resources
        (``CPU_group_<i>_<id>``, ``CPU_group_<id>``), so that its children in the same
        bundle can run."""
        for key, value in _cpu_part(request).items():
            self.available[key] = self.available.get(key, 0.0) + value

    def take_cpu_back(self, request: dict[str, float]) -> None:
        """The worker leased with ``request`` runs again (availability may go below zero)."""
        for key, value in _cpu_part(request).items():
            self.available[key] = self.available.get(key, 0.0) - value


def _cpu_part(request: dict[str, float]) -> dict[str, float]:
    return {key: value for key, value in request.items()
            if value > 0 and (key == "CPU" or key.startswith("CPU_group_"))}
