"""Ray's test fixture names, built on the public API only (``ray.init``, ``Cluster``).

The same fixtures serve both backends: ``ray`` here is raggio through the shim, or Ray 2.60
itself, so a difference in results comes from the backend, not from the fixtures. They
follow the behaviour of Ray's ``python/ray/tests/conftest.py`` (read, not copied):

- ``ray_start_regular`` (per test) and ``ray_start_regular_shared`` (per module) start a
  one-CPU node with a 150 MB object store, updated by ``request.param`` (``init`` keyword
  arguments given with ``indirect=True``), yield what ``init()`` returned and shut down.
- ``ray_start_2_cpus``, ``ray_start_10_cpus``, ``ray_start_object_store_memory`` (param: the
  store size) are the same with those sizes; ``ray_start_shared_local_modes`` is the shared
  one (Ray 1.x also ran it in local mode, which Ray 2 removed).
- ``ray_start_cluster`` yields a ``Cluster``; its param's ``num_nodes`` nodes (the first is
  the head, the only one given ``_system_config``) are started with the other keys, and the
  driver connects when there are nodes (or ``do_init`` says so).
  ``ray_start_cluster_head`` / ``ray_start_cluster_2_nodes`` are that with one / two nodes.
- ``shutdown_only`` only shuts down at the end; ``error_pubsub`` subscribes to the error
  pubsub through ``ray._private.test_utils`` (internal: on raggio it raises).

One harness addition, on both sides: ``shutdown_leftover_ray`` (autouse) shuts down what a
test initialized and left so (an implicit init, a test that failed before its own
``shutdown()``), so that the next test's ``init()`` does not fail for it.
"""

from __future__ import annotations

import contextlib

import pytest

import ray
from ray.cluster_utils import Cluster

#: Ray's fixture defaults: one CPU and a 150 MB object store.
DEFAULT_INIT_KWARGS = {"num_cpus": 1, "object_store_memory": 150 * 1024 * 1024}


#: Fixtures whose cluster outlives the test (module scope).
_SHARED_CLUSTER_FIXTURES = frozenset({"ray_start_regular_shared", "ray_start_shared_local_modes"})


def _param(request) -> dict:
    return dict(getattr(request, "param", None) or {})


@contextlib.contextmanager
def _ray_start(**kwargs):
    address_info = ray.init(**{**DEFAULT_INIT_KWARGS, **kwargs})
    try:
        yield address_info
    finally:
        ray.shutdown()


@contextlib.contextmanager
def _ray_start_cluster(**kwargs):
    num_nodes = kwargs.pop("num_nodes", 0)
    do_init = kwargs.pop("do_init", num_nodes > 0)
    namespace = kwargs.pop("namespace", None)
    node_args = {**DEFAULT_INIT_KWARGS, **kwargs}
    cluster = Cluster()
    try:
        for _ in range(num_nodes):
            cluster.add_node(**node_args)
            node_args.pop("_system_config", None)
        if do_init:
            ray.init(address=cluster.address, namespace=namespace)
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.fixture(autouse=True)
def shutdown_leftover_ray(request):
    initialized_before = ray.is_initialized()  # a shared cluster from an earlier test
    yield
    if (not initialized_before and ray.is_initialized()
            and _SHARED_CLUSTER_FIXTURES.isdisjoint(request.fixturenames)):
        ray.shutdown()


@pytest.fixture
def shutdown_only():
    yield None
    ray.shutdown()


@pytest.fixture
def ray_start_regular(request):
    with _ray_start(**_param(request)) as address_info:
        yield address_info


@pytest.fixture(scope="module")
def ray_start_regular_shared(request):
    with _ray_start(**_param(request)) as address_info:
        yield address_info


@pytest.fixture(scope="module")
def ray_start_shared_local_modes(request):
    with _ray_start(**_param(request)) as address_info:
        yield address_info


@pytest.fixture
def ray_start_2_cpus(request):
    with _ray_start(**{"num_cpus": 2, **_param(request)}) as address_info:
        yield address_info


@pytest.fixture
def ray_start_10_cpus(request):
    with _ray_start(**{"num_cpus": 10, **_param(request)}) as address_info:
        yield address_info


@pytest.fixture
def ray_start_object_store_memory(request):
    with _ray_start(object_store_memory=request.param) as address_info:
        yield address_info


@pytest.fixture
def ray_start_cluster(request):
    with _ray_start_cluster(**_param(request)) as cluster:
        yield cluster


@pytest.fixture
def ray_start_cluster_head(request):
    with _ray_start_cluster(do_init=True, num_nodes=1, **_param(request)) as cluster:
        yield cluster


@pytest.fixture
def ray_start_cluster_2_nodes(request):
    with _ray_start_cluster(do_init=True, num_nodes=2, **_param(request)) as cluster:
        yield cluster


@pytest.fixture
def error_pubsub():
    from ray._private.test_utils import init_error_pubsub

    subscriber = init_error_pubsub()
    yield subscriber
    subscriber.close()
