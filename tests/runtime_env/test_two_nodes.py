"""Runtime-env packages on a second node, and uploaded through the dashboard's package
routes as Ray's JobSubmissionClient uploads a working_dir (GET, then PUT)."""

from __future__ import annotations

import io
import os
import urllib.error
import urllib.request
import zipfile

import raggio as ray
from raggio import cluster_file
from raggio.util.scheduling_strategies import NodeAffinitySchedulingStrategy



@ray.remote
def value_of(module_name: str):
    """The node the task ran on, and VALUE of the module it imported from its env."""
    import importlib
    return (ray.get_runtime_context().get_node_id(),
            importlib.import_module(module_name).VALUE)


def _dashboard(cluster, method: str, path: str, data: bytes | None = None) -> int:
    request = urllib.request.Request(
        f"http://{cluster.webui_url}{path}", data=data, method=method,
        headers={"Authorization": f"Bearer {cluster_file.known_token(cluster.address)}"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_packages_on_a_second_node_and_through_the_dashboard(ray_start_cluster, tmp_path):
    cluster = ray_start_cluster
    cluster.add_node(num_cpus=1, dashboard_port=0, object_store_memory=100 * 1024**2)
    second = cluster.add_node(num_cpus=1, object_store_memory=100 * 1024**2)
    ray.init(address=cluster.address)
    on_second = NodeAffinitySchedulingStrategy(second.node_id, soft=False)

    (tmp_path / "mymod.py").write_text("VALUE = 'second node'\n")
    assert ray.get(value_of.options(runtime_env={"working_dir": str(tmp_path)},
                                    scheduling_strategy=on_second).remote("mymod")) == (
        second.node_id, "second node")

    # As Ray's JobSubmissionClient uploads a working_dir: GET (404), PUT, GET (200).
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("uploaded.py", "VALUE = 'through the dashboard'\n")
        archive.writestr("noise.bin", os.urandom(2 * 1024 * 1024))  # past aiohttp's 1 MiB
    path = "/api/packages/gcs/_ray_pkg_0123456789abcdef0123456789abcdef.zip"
    assert _dashboard(cluster, "GET", path) == 404
    assert _dashboard(cluster, "PUT", path, buffer.getvalue()) == 200
    assert _dashboard(cluster, "GET", path) == 200
    env = {"working_dir": "gcs://_ray_pkg_0123456789abcdef0123456789abcdef.zip"}
    assert ray.get(value_of.options(runtime_env=env, scheduling_strategy=on_second)
                   .remote("uploaded")) == (second.node_id, "through the dashboard")
