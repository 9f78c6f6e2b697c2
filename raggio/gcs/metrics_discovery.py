"""Prometheus file service discovery: the file naming every live node's metrics endpoint.

The control store (``server.py``) owns the file and rewrites it when a node
registers or dies, and once when it starts, after recovery:
``<session>/metrics/prometheus/prom_metrics_service_discovery.json``, in the
format of Prometheus's ``file_sd_configs`` that Ray writes too,
``[{"labels": {"job": "ray"}, "targets": ["IP:PORT", ...]}]``. A Prometheus
watching it (the one ``raggio metrics launch-prometheus`` starts, see
``raggio/monitoring/prometheus.py``, or any other) picks the change up at once.
Not owned here: the endpoints themselves (each node manager serves its own on
its ``metrics_export_port``), the files' names (``common/prometheus_files.py``) and
Prometheus's configuration.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable

from raggio.common.prometheus_files import JOB_LABEL, service_discovery_path

logger = logging.getLogger(__name__)

#: Nodes whose endpoints are listed: the live ones, and after a control-store restart the
#: ones expected back (their processes still run and serve; if they never come back they
#: are declared dead and leave the list).
_LISTED_STATES = ("ALIVE", "RECOVERING")


def scrape_targets(nodes: Iterable[dict]) -> list[str]:
    """``HOST:PORT`` of each listed node that exports metrics (a port of 0 or none: it
    does not), sorted."""
    targets = set()
    for node in nodes:
        port = node.get("metrics_export_port") or 0
        if node.get("state") in _LISTED_STATES and port:
            host = node["node_ip"]
            targets.add(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    return sorted(targets)


class ServiceDiscoveryFile:
    """The file of one control store; ``update`` rewrites it when its targets change."""

    path: str
    _written: list[str] | None  #: the targets the file holds now (None: not written yet)

    def __init__(self, session_dir: str):
        self.path = service_discovery_path(session_dir)
        self._written = None

    def update(self, nodes: Iterable[dict]) -> None:
        """List the endpoints of ``nodes`` (the node table's records) that are live.

        Error handling: a file that cannot be written is logged, never raised; the node
        table's change that called this stands (a Prometheus keeps the last list it read).
        """
        targets = scrape_targets(nodes)
        if targets == self._written:
            return
        # Written whole then renamed over the old one: Prometheus reads the file when it
        # changes, and must never see half of it (Ray's metrics agent does the same).
        tmp = f"{self.path}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(tmp, "w") as f:
                json.dump([{"labels": {"job": JOB_LABEL}, "targets": targets}], f)
            os.replace(tmp, self.path)
        except OSError as exc:
            logger.warning("could not write Prometheus's service discovery file %s: %s",
                           self.path, exc)
            return
        self._written = targets
