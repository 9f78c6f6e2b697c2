"""The alerting section: read from a cluster file or alone, checked, with its defaults; a bad
one fails ``raggio start --head`` at once, naming the key."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from raggio import cluster_file
from raggio.alerts.config import AlertingConfig, load_file
from raggio.test_utils import env_for


def write(path, document) -> str:
    path.write_text(yaml.safe_dump(document))
    return str(path)


def test_a_section_alone_gets_every_default(tmp_path):
    config = load_file(write(tmp_path / "a.yaml", {"webhook_url": "http://127.0.0.1:9/x"}))
    assert config.enabled
    assert config.destinations == {"webhook": "http://127.0.0.1:9/x"}
    assert config.rule("task_failure_rate") == {"enabled": True, "threshold": 0.2,
                                                "window_s": 300.0, "min_tasks": 10}
    assert config.rule("object_store") == {"enabled": True, "usage_threshold": 0.9,
                                           "spilling": True}
    assert config.delivery["max_attempts"] == 5
    assert config.cluster_name is None


def test_a_cluster_files_section_takes_its_cluster_name_and_round_trips(tmp_path):
    path = write(tmp_path / "cluster.yaml", {
        "cluster_name": "prod", "provider": {"type": "local"},
        "alerting": {"slack_webhook": "https://hooks.slack.com/services/T/B/X",
                     "rules": {"node_died": {"enabled": False},
                               "task_failure_rate": {"threshold": 0.5}}}})
    config = load_file(path)
    assert config.cluster_name == "prod"
    assert config.rule("node_died") is None
    assert config.rule("task_failure_rate")["threshold"] == 0.5
    assert config.rule("task_failure_rate")["min_tasks"] == 10
    assert AlertingConfig.from_json(config.to_json()).section == config.section


@pytest.mark.parametrize("section, words", [
    ({"webhook_url": "http://h/x", "rules": {"task_failur_rate": {}}},
     ["unknown key alerting.rules.task_failur_rate", "Did you mean 'task_failure_rate'?"]),
    ({"slak_webhook": "https://h/x"}, ["alerting.slak_webhook", "Did you mean 'slack_webhook'"]),
    ({"webhook_url": "ftp://h/x"}, ["alerting.webhook_url is \"ftp://h/x\"",
                                    "an http:// or https:// URL"]),
    ({"webhook_url": "http://h/x", "rules": {"object_store": {"usage_threshold": 90}}},
     ["alerting.rules.object_store.usage_threshold is 90", "a number from 0 to 1"]),
    ({"webhook_url": "http://h/x", "delivery": {"max_attempts": 0}},
     ["alerting.delivery.max_attempts is 0", "a whole number >= 1"]),
    ({"webhook_url": "http://h/x", "rules": {"node_died": True}},
     ["alerting.rules.node_died is true", "a mapping with any of the keys enabled"]),
    ({"enabled": True}, ["names no webhook", "alerting.slack_webhook or alerting.webhook_url"]),
])
def test_a_bad_section_is_refused_naming_the_key_and_the_fix(tmp_path, section, words):
    path = write(tmp_path / "a.yaml", section)
    with pytest.raises(ValueError) as info:
        load_file(path)
    message = str(info.value)
    assert message.startswith(path)
    for word in words:
        assert word in message, message


def test_a_cluster_file_without_the_section_is_refused(tmp_path):
    path = write(tmp_path / "cluster.yaml", {"cluster_name": "prod", "max_workers": 2})
    with pytest.raises(ValueError, match="cluster file without an `alerting:` section"):
        load_file(path)


def test_a_disabled_section_needs_no_webhook(tmp_path):
    assert not load_file(write(tmp_path / "a.yaml", {"enabled": False})).enabled


def test_a_malformed_config_fails_raggio_start_naming_the_key(tmp_path):
    path = write(tmp_path / "alerting.yaml", {
        "webhook_url": "http://127.0.0.1:9/x",
        "rules": {"task_failure_rate": {"threshhold": 0.3}}})
    result = subprocess.run(
        [sys.executable, "-m", "raggio", "start", "--head", "--port=0", "--dashboard-port=0",
         "--num-cpus=1", "--node-ip-address=127.0.0.1", f"--temp-dir={tmp_path}",
         f"--alerting-config={path}"],
        capture_output=True, text=True, env=env_for(tmp_path), timeout=60)
    assert result.returncode != 0
    assert ("unknown key alerting.rules.task_failure_rate.threshhold. Did you mean "
            "'threshold'?") in result.stderr, result.stderr
    assert cluster_file.read(str(tmp_path)) is None  # nothing was left running


def test_raggio_start_refuses_alerts_without_the_dashboard(tmp_path):
    path = write(tmp_path / "alerting.yaml", {"webhook_url": "http://127.0.0.1:9/x"})
    result = subprocess.run(
        [sys.executable, "-m", "raggio", "start", "--head", "--port=0",
         "--include-dashboard=false", "--num-cpus=1", "--node-ip-address=127.0.0.1",
         f"--temp-dir={tmp_path}", f"--alerting-config={path}"],
        capture_output=True, text=True, env=env_for(tmp_path), timeout=60)
    assert result.returncode != 0
    assert "--alerting-config needs the dashboard" in result.stderr, result.stderr
