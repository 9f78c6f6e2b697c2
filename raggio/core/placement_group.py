"""``PlacementGroup``: the handle to a placement group, as tasks, actors and drivers pass it.

The core worker needs the class itself (the ``placement_group=`` option,
``pg.ready()``); creating, finding and removing groups is the public API in
``util/placement_group.py``, which is also the class's public path.
"""

from __future__ import annotations

from raggio.common.ids import PlacementGroupID
from raggio.common.placement_group_resources import split_group_resource
from raggio.core import context
from raggio.core.object_ref import ObjectRef


class PlacementGroup:
    """A handle to a placement group; picklable."""

    def __init__(self, pg_id: bytes, bundles: list[dict] | None = None):
        self.id = PlacementGroupID(pg_id)
        self._bundles = bundles

    @property
    def bundle_specs(self) -> list[dict]:
        if self._bundles is None:
            table = context.get_core().request("gcs", "placement_group_table", self.id.binary())
            self._bundles = [table["bundles"][i] for i in sorted(table["bundles"])]
        return self._bundles

    @property
    def bundle_count(self) -> int:
        return len(self.bundle_specs)

    def ready(self) -> ObjectRef:
        """An ObjectRef that resolves to this group once all its bundles are reserved."""
        core = context.get_core()
        return core.placement_group_ready_ref(self)

    def wait(self, timeout_seconds: float = 30) -> bool:
        """Whether the group is reserved within ``timeout_seconds``."""
        core = context.get_core()
        info = core.request("gcs", "wait_placement_group",
                            {"pg_id": self.id.binary(), "timeout_s": timeout_seconds},
                            timeout_s=timeout_seconds + core.cfg.rpc_timeout_s)
        return info is not None and info["state"] == "CREATED"

    def __eq__(self, other):
        return isinstance(other, PlacementGroup) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"PlacementGroup({self.id.hex()})"

    def __reduce__(self):
        return PlacementGroup, (self.id.binary(), self._bundles)


def current_group_hex(core) -> str | None:
    """The placement group (hex id) the calling task or actor runs in, or None."""
    for key in getattr(core.current, "resources", None) or ():
        group = split_group_resource(key)
        if group is not None:
            return group.pg_hex
    return None
