"""Monitoring outside raggio's own dashboard: Prometheus and Grafana for a session.

``prometheus.py`` (a local Prometheus: its config, launching and stopping it),
``grafana.py`` (a Grafana dashboard of the exported families, and provisioning),
``monitoring_config.py`` (the cluster file's ``monitoring_config:`` section) and
``head_monitoring.py`` (what the head does with them). The list of targets that
Prometheus scrapes is the control store's (``gcs/metrics_discovery.py``).
"""
