"""The local provider's pool: `worker_ips` are the workers it may take, a terminated one goes
back to the pool, a full pool says how to grow it, and its one-listing view of the nodes
(`describe_nodes`, what the autoscaler reads each round) says what the per-node calls say.

No machine is reached: the provider only keeps the record of who holds which address."""

from __future__ import annotations

import pytest

from raggio.exceptions import ClusterLaunchError
from raggio.launcher.cluster_state import ClusterState
from raggio.launcher.local_provider import LocalNodeProvider
from raggio.launcher.node_provider import (NODE_KIND_HEAD, NODE_KIND_WORKER, TAG_RAY_NODE_KIND,
                                           TAG_RAY_USER_NODE_TYPE, NodeProvider, ProviderNode,
                                           new_node_tags)

PROVIDER = {"type": "local", "head_ip": "127.0.0.1", "worker_ips": ["127.0.0.2", "127.0.0.3"]}


@pytest.fixture
def provider(tmp_path) -> LocalNodeProvider:
    provider = LocalNodeProvider(PROVIDER, "pool")
    provider.state = ClusterState("pool", root=str(tmp_path))
    return provider


def test_workers_take_free_addresses_and_give_them_back(provider):
    provider.create_node({}, new_node_tags("pool", NODE_KIND_HEAD, "head"), 1)
    provider.create_node({}, new_node_tags("pool", NODE_KIND_WORKER, "cpu"), 2)
    workers = {TAG_RAY_NODE_KIND: NODE_KIND_WORKER}
    assert sorted(provider.non_terminated_nodes(workers)) == ["127.0.0.2", "127.0.0.3"]

    with pytest.raises(ClusterLaunchError, match=r"0 free address\(es\) of 2 .* add addresses "
                                                 r"to provider.worker_ips, or lower max_workers"):
        provider.create_node({}, new_node_tags("pool", NODE_KIND_WORKER, "cpu"), 1)

    provider.terminate_node("127.0.0.2")
    assert provider.is_terminated("127.0.0.2")
    provider.create_node({}, new_node_tags("pool", NODE_KIND_WORKER, "gpu"), 1)
    assert provider.node_tags("127.0.0.2")[TAG_RAY_USER_NODE_TYPE] == "gpu"


def test_describe_nodes_agrees_with_the_per_node_calls(provider):
    provider.create_node({}, new_node_tags("pool", NODE_KIND_HEAD, "head"), 1)
    provider.create_node({}, new_node_tags("pool", NODE_KIND_WORKER, "cpu"), 2)
    provider.terminate_node("127.0.0.3")
    for tag_filters in ({}, {TAG_RAY_NODE_KIND: NODE_KIND_WORKER},
                        {TAG_RAY_USER_NODE_TYPE: "none"}):
        described = provider.describe_nodes(tag_filters)
        assert described == NodeProvider.describe_nodes(provider, tag_filters)
    assert provider.describe_nodes({TAG_RAY_NODE_KIND: NODE_KIND_WORKER}) == [
        ProviderNode("127.0.0.2", new_node_tags("pool", NODE_KIND_WORKER, "cpu"), "127.0.0.2",
                     None)]
