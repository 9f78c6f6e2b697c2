"""The NodeProvider interface: how the launcher and the autoscaler get machines.

A provider owns a cluster's machines on one platform (a list of SSH hosts,
EC2, GCP, Azure, Kubernetes, local processes) and knows nothing of raggio:
it creates, lists, tags and terminates nodes. What runs on a node is the
updater's business (``updater.py``), over SSH. The method names and the tag
keys are Ray's (``ray.autoscaler.node_provider.NodeProvider``,
``ray.autoscaler.tags``), so that a Ray provider's author finds their way;
the methods are synchronous, as Ray's are, and callers on an event loop run
them in a thread.

A node's tags are all the state the launcher keeps about it: its kind (head
or worker), its node type, its status, and the hashes of what was last set up
on it (so a second ``raggio up`` redoes only what changed).
"""

from __future__ import annotations

import dataclasses
import importlib

from raggio.exceptions import ClusterConfigError

# Tag keys (Ray's).
TAG_RAY_CLUSTER_NAME = "ray-cluster-name"
TAG_RAY_NODE_NAME = "ray-node-name"
#: "head" or "worker".
TAG_RAY_NODE_KIND = "ray-node-type"
TAG_RAY_USER_NODE_TYPE = "ray-user-node-type"
TAG_RAY_NODE_STATUS = "ray-node-status"
#: The hash of what set the node up: initialization and setup commands, node config.
TAG_RAY_RUNTIME_CONFIG = "ray-runtime-config"
#: The hash of the file mounts' contents last synced to the node.
TAG_RAY_FILE_MOUNTS_CONTENTS = "ray-file-mounts-contents"
#: The hash of the start commands (and what they read) last run on the node.
TAG_RAGGIO_START_CONFIG = "raggio-start-config"
#: "spot" for a node of a type with ``use_spot``: the provider launches spot capacity.
TAG_RAGGIO_MARKET_TYPE = "raggio-market-type"

NODE_KIND_HEAD = "head"
NODE_KIND_WORKER = "worker"

# Node statuses (Ray's values, in the order a node goes through them).
STATUS_UNINITIALIZED = "uninitialized"
STATUS_WAITING_FOR_SSH = "waiting-for-ssh"
STATUS_SYNCING_FILES = "syncing-files"
STATUS_SETTING_UP = "setting-up"
STATUS_STARTING = "starting-raggio"
#: raggio runs on the node, which the head does not count alive yet (raggio's own status).
STATUS_JOINING = "joining"
STATUS_UP_TO_DATE = "up-to-date"
STATUS_UPDATE_FAILED = "update-failed"


def new_node_tags(cluster_name: str, kind: str, node_type: str, *,
                  use_spot: bool = False) -> dict[str, str]:
    """The tags a node is created with, by ``raggio up`` or the autoscaler: its cluster,
    kind and type, its name, status uninitialized, and the spot market for a type with
    ``use_spot``."""
    tags = {TAG_RAY_CLUSTER_NAME: cluster_name, TAG_RAY_NODE_KIND: kind,
            TAG_RAY_USER_NODE_TYPE: node_type, TAG_RAY_NODE_NAME: f"raggio-{cluster_name}-{kind}",
            TAG_RAY_NODE_STATUS: STATUS_UNINITIALIZED}
    if use_spot:
        tags[TAG_RAGGIO_MARKET_TYPE] = "spot"
    return tags


@dataclasses.dataclass(frozen=True)
class ProviderNode:
    """What ``describe_nodes`` says of one node."""

    node_id: str  #: the provider's id
    tags: dict[str, str]
    internal_ip: str
    cluster_node_id: str | None  #: as ``NodeProvider.cluster_node_id``


class NodeProvider:
    """One platform's machines for one cluster. Node ids are the provider's own strings."""

    #: Whether a new node is set up over SSH (setup and start commands, ``updater.py``);
    #: False for a provider whose nodes start raggio themselves (``fake_multinode``; Ray's
    #: ``disable_node_updaters``).
    node_updaters: bool = True

    def __init__(self, provider_config: dict, cluster_name: str) -> None:
        self.provider_config = provider_config
        self.cluster_name = cluster_name

    def non_terminated_nodes(self, tag_filters: dict[str, str]) -> list[str]:
        """The ids of the cluster's nodes (pending or running) whose tags include ``tag_filters``."""
        raise NotImplementedError

    def describe_nodes(self, tag_filters: dict[str, str]) -> list[ProviderNode]:
        """The ``non_terminated_nodes`` with their tags and addresses, in one listing: the
        autoscaler reads this each round. This asks per node; a provider that lists its
        nodes whole (a state file, a cloud's describe call) answers from that listing."""
        return [ProviderNode(node_id, self.node_tags(node_id), self.internal_ip(node_id),
                             self.cluster_node_id(node_id))
                for node_id in self.non_terminated_nodes(tag_filters)]

    def is_running(self, node_id: str) -> bool:
        raise NotImplementedError

    def is_terminated(self, node_id: str) -> bool:
        raise NotImplementedError

    def node_tags(self, node_id: str) -> dict[str, str]:
        raise NotImplementedError

    def external_ip(self, node_id: str) -> str:
        """The address the launcher reaches the node at."""
        raise NotImplementedError

    def internal_ip(self, node_id: str) -> str:
        """The address the cluster's nodes reach each other at."""
        raise NotImplementedError

    def cluster_node_id(self, node_id: str) -> str | None:
        """The node's raggio node id (hex), where the provider knows it (one that starts
        node managers itself); None: the autoscaler matches nodes by ``internal_ip``."""
        return None

    def create_node(self, node_config: dict, tags: dict[str, str], count: int) -> None:
        """Launch ``count`` nodes of ``node_config``, tagged ``tags``."""
        raise NotImplementedError

    def create_node_with_resources_and_labels(self, node_config: dict, tags: dict[str, str],
                                              count: int, resources: dict[str, float],
                                              labels: dict[str, str]) -> None:
        """Launch ``count`` nodes of a node type whose resources and labels are ``resources``
        and ``labels``: the autoscaler's call (Ray's). A provider whose machines have their
        own resources (the start command says them) launches them as ``create_node``."""
        self.create_node(node_config, tags, count)

    def set_node_tags(self, node_id: str, tags: dict[str, str]) -> None:
        """Merge ``tags`` into the node's tags."""
        raise NotImplementedError

    def terminate_node(self, node_id: str) -> None:
        raise NotImplementedError

    def terminate_nodes(self, node_ids: list[str]) -> None:
        for node_id in node_ids:
            self.terminate_node(node_id)


#: Provider type (the cluster file's ``provider.type``) -> "module:class".
PROVIDERS = {
    "local": "raggio.launcher.local_provider:LocalNodeProvider",
    "fake_multinode": "raggio.autoscaler.fake_multinode:FakeMultiNodeProvider",
}


def get_node_provider(provider_config: dict, cluster_name: str) -> NodeProvider:
    """The provider the cluster file's ``provider:`` section names."""
    kind = provider_config.get("type")
    if kind not in PROVIDERS:
        raise ClusterConfigError(
            f"provider.type: {kind!r} has no node provider in raggio's launcher yet; the "
            f"providers are {', '.join(sorted(PROVIDERS))}.")
    module_name, class_name = PROVIDERS[kind].split(":")
    provider_class = getattr(importlib.import_module(module_name), class_name)
    return provider_class(provider_config, cluster_name)
