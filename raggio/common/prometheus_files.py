"""Where a session's Prometheus files live, and the label their targets carry (Ray's names).

The control store writes the service discovery file (``gcs/metrics_discovery.py``);
``raggio metrics launch-prometheus`` (``monitoring/prometheus.py``) points a
Prometheus at it and keeps that Prometheus's config, data and pid beside it. Both
sides name the files through here, so neither reaches into the other.
"""

from __future__ import annotations

import os

#: Ray's file name (``ray_constants.PROMETHEUS_SERVICE_DISCOVERY_FILE``).
SERVICE_DISCOVERY_FILE = "prom_metrics_service_discovery.json"
#: The ``job`` label Prometheus gives every series scraped from these targets (Ray's).
JOB_LABEL = "ray"


def prometheus_dir(session_dir: str) -> str:
    """Where a session's Prometheus files live: the discovery file, the config, the data,
    the pid."""
    return os.path.join(session_dir, "metrics", "prometheus")


def service_discovery_path(session_dir: str) -> str:
    return os.path.join(prometheus_dir(session_dir), SERVICE_DISCOVERY_FILE)
