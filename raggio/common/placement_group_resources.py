"""Ray's names for the resources a placement group reserves, made and read here only.

Reserving a group on a node adds, for each resource of each bundle,
``<name>_group_<index>_<group id>`` (that bundle) and ``<name>_group_<group id>``
(any bundle of the group), and the marker ``bundle_group_...`` (1000 per
bundle). A task or actor in the group asks for those names instead of the
plain ones, plus a sliver of the marker, so ordinary leasing places it.

Used by the node manager (reserving, GPU ids of bundles, CPUs lent by a
blocked worker), the core worker (requests made in a group), the control
store (the group a pending task waits for) and the public API (the runtime
context, the state API's rows).
"""

from __future__ import annotations

import re
from typing import NamedTuple

#: The resource name Ray keeps for itself inside groups (``bundle_group_<id>``).
BUNDLE_RESOURCE = "bundle"
#: What a bundle's marker adds to the node: enough for any number of tasks in it.
_BUNDLE_MARKER_PER_BUNDLE = 1000.0
#: What a task or actor in a group asks of the marker, so that even one asking for no
#: resources lands in the group.
_BUNDLE_MARKER_PER_REQUEST = 0.001
_SEPARATOR = "_group_"
_GROUP_RESOURCE = re.compile(r"^(?P<name>.+)_group_(?:(?P<index>\d+)_)?(?P<pg>[0-9a-f]+)$")


class GroupResource(NamedTuple):
    name: str  #: the plain resource: ``CPU``
    bundle_index: int | None  #: None for the group's wildcard (any bundle)
    pg_hex: str


def group_resource(name: str, pg_hex: str, bundle_index: int = -1) -> str:
    """Ray's name for resource ``name`` reserved by group ``pg_hex``: in bundle
    ``bundle_index``, or in any of its bundles with -1."""
    if bundle_index < 0:
        return f"{name}{_SEPARATOR}{pg_hex}"
    return f"{name}{_SEPARATOR}{bundle_index}_{pg_hex}"


def split_group_resource(key: str) -> GroupResource | None:
    """What a group's resource name says, or None for a plain resource."""
    match = _GROUP_RESOURCE.match(key)
    if match is None:
        return None
    index = match["index"]
    return GroupResource(match["name"], None if index is None else int(index), match["pg"])


def resource_name(key: str) -> str:
    """The plain resource a name stands for: ``CPU`` for ``CPU_group_0_<id>`` and ``CPU``."""
    return key.split(_SEPARATOR, 1)[0]


def is_group_resource(key: str) -> bool:
    return _SEPARATOR in key


def bundle_resources(pg_id: bytes, bundles: dict) -> dict[str, float]:
    """What reserving a group adds to a node: per bundle and for the whole group."""
    hex_id = pg_id.hex()
    out: dict[str, float] = {}
    for index, bundle in bundles.items():
        for key, value in dict(bundle, **{BUNDLE_RESOURCE: _BUNDLE_MARKER_PER_BUNDLE}).items():
            for name in (group_resource(key, hex_id, int(index)), group_resource(key, hex_id)):
                out[name] = out.get(name, 0.0) + value
    return out


def in_placement_group(resources: dict, pg_id: bytes, bundle_index: int) -> dict:
    """A resource request rewritten onto a group's reserved resources (Ray's names)."""
    hex_id = pg_id.hex()
    out = {group_resource(key, hex_id, bundle_index): value
           for key, value in resources.items() if value > 0}
    out[group_resource(BUNDLE_RESOURCE, hex_id, bundle_index)] = _BUNDLE_MARKER_PER_REQUEST
    return out


def placement_group_of(resources: dict) -> str | None:
    """The placement group (hex id) a request's resource names point into, if any."""
    marker = BUNDLE_RESOURCE + _SEPARATOR
    for key in resources:
        if key.startswith(marker):
            return key.rpartition("_")[2]
    return None


def requested_resources(resources: dict) -> dict:
    """A request as the user wrote it: plain resource names, without the group's marker."""
    out = {}
    for key, value in resources.items():
        name = resource_name(key)
        if name != BUNDLE_RESOURCE:
            out[name] = value
    return out
