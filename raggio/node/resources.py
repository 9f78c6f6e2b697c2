"""Resource accounting for one node: what exists, what is free, which GPUs.

A plain class with no I/O, used by the node manager to decide whether a
lease fits. Quantities are floats (fractional CPUs are allowed); GPU ids are
handed out whole. Availability may go below zero while a worker that was
blocked in ``get`` takes its CPU back, as Ray allows.
"""

from __future__ import annotations

import math

from raggio.common.placement_group_resources import (group_resource, is_group_resource,
                                                     resource_name, split_group_resource)
from raggio.common.resources import fits


def uses_gpus(request: dict[str, float]) -> bool:
    """Whether a request takes GPUs: its own, or a placement-group bundle's."""
    return any(value > 0 and resource_name(key) == "GPU" for key, value in request.items())


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
                  if value > 0 and is_group_resource(key) and resource_name(key) == "GPU"]
        if not wanted:
            return []
        for key, count in wanted:  # the bundle's own resource first
            if key in self.bundle_gpu_ids:
                ids = self.bundle_gpu_ids[key]
                self.bundle_gpu_ids[key] = ids[count:]
                return ids[:count]
        key, count = wanted[0]
        group = split_group_resource(key).pg_hex
        for bundle, ids in self.bundle_gpu_ids.items():
            if split_group_resource(bundle).pg_hex == group and len(ids) >= count:
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
                key = group_resource("GPU", group_hex, int(index))
                self.bundle_gpu_ids[key], gpu_ids = gpu_ids[:count], gpu_ids[count:]
                for gpu_id in self.bundle_gpu_ids[key]:
                    self._bundle_of_gpu[gpu_id] = key

    def drop_bundle_gpus(self, group_hex: str) -> list[int]:
        """The group is released: its bundles' free GPU ids (the ids tasks still hold come
        back to the node when their leases end)."""
        freed = []
        for key in [k for k in self.bundle_gpu_ids if split_group_resource(k).pg_hex == group_hex]:
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
            if value > 0 and resource_name(key) == "CPU"}
