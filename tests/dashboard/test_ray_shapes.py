"""The dashboard's answers have the shape of Ray 2.60's own, key for key, as captured from a
real Ray head in /work/shared/ray-reference (kept here as tests/data/ray_dashboard/*.json):
a script written against Ray's dashboard finds every key it reads.

Keys that name things of one cluster (node ids, resource names) are compared by kind only.
"""

import json
import pathlib
import re

import pytest

DATA = pathlib.Path(__file__).resolve().parents[1] / "data" / "ray_dashboard"
#: Keys that name a node, a resource or a function: compared as one placeholder.
_NAMED = re.compile(r"^(node[0-9A-Fa-f]{40,}|[0-9a-f]{40,}|node:.*|CPU|GPU|memory|"
                    r"objectStoreMemory|object_store_memory)$")


def key_paths(value, path="") -> set[str]:
    """Every key path in a JSON value; list items share the path ``[]``."""
    paths = set()
    if isinstance(value, dict):
        for key, item in value.items():
            key = "<named>" if _NAMED.match(key) else key
            paths.add(f"{path}/{key}")
            paths |= key_paths(item, f"{path}/{key}")
    elif isinstance(value, list):
        for item in value:
            paths |= key_paths(item, f"{path}[]")
    return paths


def ray_answer(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


@pytest.mark.parametrize("route, name, under", [
    ("/api/cluster_status", "cluster_status", "/data"),
    ("/api/version", "version", ""),
])
def test_every_key_rays_answer_has(dashboard_cluster, route, name, under):
    ours = key_paths(dashboard_cluster.get(route).json())
    missing = {path for path in key_paths(ray_answer(name))
               if path.startswith(under)} - ours
    assert not missing, sorted(missing)


def test_resource_shapes_keep_rays_snake_case(dashboard_cluster):
    """Ray camel-cases the keys of dicts in dicts and in lists, not of dicts in lists of
    lists: a node type's resources stay {"CPU": .., "object_store_memory": ..}."""
    report = dashboard_cluster.data("/api/cluster_status")["clusterStatus"]
    (resources, count), *_ = report["loadMetricsReport"]["nodeTypes"]
    assert "object_store_memory" in resources and count == 1
    assert "objectStoreMemory" in report["loadMetricsReport"]["usage"]
