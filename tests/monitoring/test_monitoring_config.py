"""``--monitoring-config`` files (``monitoring/monitoring_config.py``): what they enable, and
errors that name the key at fault.

A head started with one is tested in ``tests/metrics/test_prometheus.py``.
"""

import pytest

from raggio.monitoring.monitoring_config import MonitoringConfig, load


def write(tmp_path, text):
    path = tmp_path / "cluster.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text", [
    "cluster_name: c\nmonitoring_config:\n  prometheus: {enabled: true, port: 9091}\n",
    "prometheus:\n  enabled: true\n  port: 9091\n",  # the section on its own
])
def test_a_cluster_file_or_its_section(tmp_path, text):
    assert load(write(tmp_path, text)) == MonitoringConfig(prometheus_enabled=True,
                                                           prometheus_port=9091)


def test_defaults(tmp_path):
    assert load(write(tmp_path, "monitoring_config:\n")) == MonitoringConfig(False, 9090)
    assert load(write(tmp_path, "prometheus: {enabled: true}\n")).prometheus_port == 9090


@pytest.mark.parametrize("text, message", [
    ("monitoring_config: {prometheus: {enabled: 1}}",
     "`monitoring_config.prometheus.enabled` is 1: it must be true or false"),
    ("monitoring_config: {prometheus: {enabled: true, port: 70000}}",
     "`monitoring_config.prometheus.port` is 70000: it must be a port number from 0"),
    ("monitoring_config: {prometheus: {enable: true}}",
     "unknown key 'enable' in `monitoring_config.prometheus`; the keys it takes are enabled, "
     "port"),
    ("cluster_name: c\nprovider: {}\n",
     "unknown key 'cluster_name', 'provider' in the file, which has no `monitoring_config:` "
     "section"),
    ("monitoring_config: [prometheus]", "`monitoring_config` is ['prometheus']: it must be a "
     "mapping"),
    ("monitoring_config: {prometheus: [", "cannot read it"),
])
def test_mistakes_name_the_key_and_the_fix(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as info:
        load(path)
    assert str(info.value).startswith(f"--monitoring-config {path}: ")
    assert message in str(info.value)
