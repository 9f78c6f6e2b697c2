"""The service discovery file's targets (``gcs/metrics_discovery.py``): which nodes it lists.

The file's upkeep by a running control store, and a real Prometheus reading it, are
tested in ``tests/metrics/test_prometheus.py``.
"""

import json

from raggio.gcs.metrics_discovery import ServiceDiscoveryFile, scrape_targets


def node(ip="127.0.0.1", port=9000, state="ALIVE"):
    return {"node_ip": ip, "metrics_export_port": port, "state": state}


def test_targets_are_the_live_nodes_with_a_metrics_port():
    nodes = [node(port=9001), node(port=9002, state="DEAD"), node(port=0),
             node(port=9003, state="RECOVERING"),
             {"node_ip": "10.0.0.2", "state": "ALIVE"}, node(ip="::1", port=9004)]
    assert scrape_targets(nodes) == ["127.0.0.1:9001", "127.0.0.1:9003", "[::1]:9004"]


def test_the_file_is_in_ray_s_format_and_follows_the_nodes(tmp_path):
    sd = ServiceDiscoveryFile(str(tmp_path))
    sd.update([node(port=9001), node(ip="10.0.0.2", port=9002)])
    assert sd.path == str(
        tmp_path / "metrics" / "prometheus" / "prom_metrics_service_discovery.json")
    with open(sd.path) as f:
        assert json.load(f) == [{"labels": {"job": "ray"},
                                 "targets": ["10.0.0.2:9002", "127.0.0.1:9001"]}]
    sd.update([node(port=9001)])
    with open(sd.path) as f:
        assert json.load(f)[0]["targets"] == ["127.0.0.1:9001"]
    assert sorted(p.name for p in (tmp_path / "metrics" / "prometheus").iterdir()) == [
        "prom_metrics_service_discovery.json"]  # no temporary file left behind
