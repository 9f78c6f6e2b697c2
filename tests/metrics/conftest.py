"""Fixtures of the metrics tests: a two-node cluster shared by a module, a driver per test."""

from __future__ import annotations

import psutil
import pytest

import raggio as ray
from raggio.cluster_utils import Cluster


@pytest.fixture(scope="module")
def cluster_of_two(module_daemons):
    cluster = Cluster()
    cluster.add_node(num_cpus=1, object_store_memory=80 * 1024**2)
    cluster.add_node(num_cpus=1, object_store_memory=80 * 1024**2, resources={"other": 1})
    # Its workers outlive each test's driver; the leak check blames no test for them.
    module_daemons.extend(psutil.Process(n.process.pid) for n in cluster.list_all_nodes())
    yield cluster
    cluster.shutdown()


@pytest.fixture
def two_nodes(cluster_of_two):
    """The module's two-node cluster, with this test's driver connected."""
    ray.init(address=cluster_of_two.address)
    yield cluster_of_two
    ray.shutdown()
