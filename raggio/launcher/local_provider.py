"""The local provider (``provider: {type: local, head_ip, worker_ips}``): machines you already have.

The machines exist before the cluster does and outlive it: "creating" a node
takes an address from the pool (``head_ip`` for the head, ``worker_ips`` for
workers) and "terminating" one gives it back. Node ids are the addresses.
What the pool's machines are doing is kept in the launcher's state file
(``cluster_state.py``), under its lock.
"""

from __future__ import annotations

from raggio.exceptions import ClusterLaunchError
from raggio.launcher.cluster_state import ClusterState
from raggio.launcher.node_provider import (NODE_KIND_HEAD, TAG_RAY_NODE_KIND, NodeProvider,
                                           ProviderNode)

RUNNING = "running"
TERMINATED = "terminated"


class LocalNodeProvider(NodeProvider):
    """The ``head_ip`` and ``worker_ips`` of the provider section, as a pool of nodes."""

    def __init__(self, provider_config: dict, cluster_name: str) -> None:
        super().__init__(provider_config, cluster_name)
        self.head_ip: str = provider_config["head_ip"]
        self.worker_ips: list[str] = list(provider_config.get("worker_ips") or [])
        #: Where the launcher reaches the head, when not at head_ip (Ray's external_head_ip).
        self.external_head_ip: str = provider_config.get("external_head_ip") or self.head_ip
        self.state = ClusterState(cluster_name)

    def non_terminated_nodes(self, tag_filters: dict[str, str]) -> list[str]:
        return [node.node_id for node in self.describe_nodes(tag_filters)]

    def describe_nodes(self, tag_filters: dict[str, str]) -> list[ProviderNode]:
        nodes = self.state.read()["nodes"]
        return [ProviderNode(node_id, dict(record["tags"]), node_id, None)
                for node_id, record in nodes.items()
                if record["state"] == RUNNING
                and all(record["tags"].get(k) == v for k, v in tag_filters.items())]

    def is_running(self, node_id: str) -> bool:
        return self._record(node_id).get("state") == RUNNING

    def is_terminated(self, node_id: str) -> bool:
        return not self.is_running(node_id)

    def node_tags(self, node_id: str) -> dict[str, str]:
        return dict(self._record(node_id).get("tags", {}))

    def external_ip(self, node_id: str) -> str:
        return self.external_head_ip if node_id == self.head_ip else node_id

    def internal_ip(self, node_id: str) -> str:
        return node_id

    def create_node(self, node_config: dict, tags: dict[str, str], count: int) -> None:
        with self.state.update() as document:
            nodes = document["nodes"]
            taken = {node_id for node_id, record in nodes.items() if record["state"] == RUNNING}
            if tags.get(TAG_RAY_NODE_KIND) == NODE_KIND_HEAD:
                pool = [self.head_ip]
            else:
                pool = [ip for ip in self.worker_ips if ip != self.head_ip]
            free = [ip for ip in pool if ip not in taken]
            if len(free) < count:
                raise ClusterLaunchError(
                    f"The local provider has {len(free)} free address(es) of {len(pool)} for "
                    f"{count} more node(s): add addresses to provider.worker_ips, or lower "
                    "max_workers.")
            for ip in free[:count]:
                nodes[ip] = {"state": RUNNING, "tags": dict(tags)}

    def set_node_tags(self, node_id: str, tags: dict[str, str]) -> None:
        with self.state.update() as document:
            document["nodes"][node_id]["tags"].update(tags)

    def terminate_node(self, node_id: str) -> None:
        with self.state.update() as document:
            record = document["nodes"].get(node_id)
            if record is not None:
                record["state"] = TERMINATED

    def _record(self, node_id: str) -> dict:
        return self.state.read()["nodes"].get(node_id, {})
