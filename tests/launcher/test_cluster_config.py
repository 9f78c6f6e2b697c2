"""Cluster files: both dialects load into Ray's shape with Ray's defaults, and a mistake is
one paragraph naming the line, the key and the fix."""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import pickle
import textwrap

import jsonschema
import pytest

from raggio.exceptions import ClusterConfigError
from raggio.launcher import cluster_config
from raggio.launcher.cluster_config import (LEGACY_HEAD_TYPE, LEGACY_WORKER_TYPE,
                                            LOCAL_NODE_TYPE, load)
from raggio.launcher.schema import SCHEMA, parse_quantity

EXAMPLES = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "..", "examples",
                                         "clusters", "*.yaml")))
GiB = 1024**3


@pytest.fixture
def write(tmp_path):
    """write(text) -> the path of a cluster file holding ``text`` (dedented)."""
    def write(text: str, name: str = "cluster.yaml") -> str:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return str(path)
    return write


def _error(path: str, **overrides) -> str:
    with pytest.raises(ClusterConfigError) as info:
        load(path, overrides or None)
    return str(info.value)


def test_the_schema_is_a_valid_json_schema_and_every_key_says_what_it_is():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    for key, schema in SCHEMA["properties"].items():
        assert schema.get("description"), key


@pytest.mark.parametrize("path", EXAMPLES, ids=os.path.basename)
def test_every_example_validates_and_its_normalised_form_loads_back_the_same(path, tmp_path):
    config = load(path)
    again = tmp_path / "bootstrap.json"
    again.write_text(json.dumps(config.raw))
    assert dataclasses.replace(load(str(again)), path=config.path) == config


def test_the_seeds_on_premise_file_keeps_its_resources_and_every_worker(write):
    config = load(EXAMPLES[[os.path.basename(p) for p in EXAMPLES].index("onprem.yaml")])
    assert config.head_node_type == LEGACY_HEAD_TYPE
    head, worker = config.node_types[LEGACY_HEAD_TYPE], config.node_types[LEGACY_WORKER_TYPE]
    assert head.resources == {"CPU": 8, "memory": 16 * GiB}
    assert (head.min_workers, head.max_workers) == (0, 0)
    assert worker.resources == {"CPU": 16, "memory": 32 * GiB}
    assert (worker.min_workers, worker.max_workers) == (2, 2)  # len(worker_ips), as Ray
    assert config.worker_types() == [worker]
    assert config.provider["worker_ips"] == ["192.168.1.11", "192.168.1.12"]
    assert config.auth == {"ssh_user": "ubuntu", "ssh_private_key":
                           os.path.expanduser("~/.ssh/id_rsa"), "ssh_port": 22}
    assert config.setup_commands_for(is_head=True) == ["pip install -U raggio"]
    assert config.start_commands_for(is_head=False) == [
        "ray stop", "ray start --address=$RAY_HEAD_IP:6379"]


def test_rays_local_form_has_one_node_type_for_head_and_workers(write):
    config = load(write("""
        cluster_name: lab
        provider: {type: local, head_ip: 10.0.0.1, worker_ips: [10.0.0.2, 10.0.0.3, 10.0.0.4]}
        auth: {ssh_user: me}
        setup_commands: [echo common]
        worker_setup_commands: [echo worker]
        file_mounts: {~/data: ./data}
    """))
    assert config.head_node_type == LOCAL_NODE_TYPE
    (only,) = config.node_types.values()
    assert (only.min_workers, only.max_workers, config.max_workers) == (3, 3, 3)
    assert config.worker_types() == [only]
    assert config.head_start_ray_commands[0] == "ray stop"  # the local provider's defaults
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in config.head_start_ray_commands[1]
    assert config.setup_commands_for(is_head=False) == ["echo common", "echo worker"]
    assert config.setup_commands_for(is_head=True) == ["echo common"]
    assert config.file_mounts == {"~/data": os.path.abspath("data")}
    assert (config.upscaling_speed, config.idle_timeout_minutes) == (1.0, 5)


def test_available_node_types_get_rays_defaults(write):
    config = load(write("""
        provider: {type: aws, region: us-west-2}
        max_workers: 5
        available_node_types:
          head: {node_config: {InstanceType: m5.large}, resources: {CPU: 2}}
          gpu:
            resources: {GPU: 1, object_store_memory: 500Mi, accel: 500m}
            worker_setup_commands: [echo gpu]
        head_node_type: head
    """))
    head, gpu = config.node_types["head"], config.node_types["gpu"]
    assert (head.max_workers, gpu.min_workers, gpu.max_workers) == (0, 0, 5)
    assert gpu.resources == {"GPU": 1.0, "object_store_memory": 500 * 1024**2, "accel": 0.5}
    assert config.setup_commands_for(False, "gpu") == ["echo gpu"]
    assert config.auth["ssh_user"] == "ubuntu" and config.cluster_name == "default"
    assert "--object-manager-port=8076" in config.head_start_ray_commands[1]


def test_the_seeds_worker_type_list_becomes_node_types(write):
    config = load(write("""
        provider: {type: aws}
        worker_node_types:
          - {name: cpu, instance_type: m5.4xlarge, min_workers: 1, max_workers: 3,
             resources: {CPU: 16, memory: 64Gi}}
          - {name: spot, instance_type: p3.2xlarge, use_spot: true, spot_price: 0.9}
        autoscaling_config: {max_workers: 8, idle_timeout_minutes: 2, upscaling_speed: 2,
                             target_utilization_fraction: 0.7}
    """))
    assert config.head_node_type == LEGACY_HEAD_TYPE
    assert set(config.node_types) == {LEGACY_HEAD_TYPE, "cpu", "spot"}
    cpu, spot = config.node_types["cpu"], config.node_types["spot"]
    assert cpu.node_config == {"InstanceType": "m5.4xlarge"}
    assert cpu.resources == {"CPU": 16, "memory": 64 * GiB}
    assert (spot.use_spot, spot.spot_price, spot.max_workers) == (True, 0.9, 8)
    assert (config.max_workers, config.idle_timeout_minutes, config.upscaling_speed) == (8, 2, 2)
    assert config.autoscaling_config["target_utilization_fraction"] == 0.7


def test_overrides_replace_the_files_keys(write):
    path = write("provider: {type: local, head_ip: h, worker_ips: [a, b, c]}\n"
                 "auth: {ssh_user: me}\n")
    config = load(path, {"max_workers": 3, "min_workers": 1, "cluster_name": None})
    (only,) = config.node_types.values()
    assert (only.min_workers, only.max_workers) == (1, 3)
    assert "(`max_workers` given on the command line)" in _error(path, max_workers=-1)


@pytest.mark.parametrize("value, expected", [
    (4, 4), (0.5, 0.5), ("16Gi", 16 * GiB), ("500Mi", 500 * 1024**2), ("2G", 2e9),
    ("500m", 0.5), ("1.5k", 1500), ("3", 3)])
def test_quantities(value, expected):
    assert parse_quantity(value, "x") == expected


@pytest.mark.parametrize("value", ["16 GB", "-1", "lots", -1, True, None])
def test_a_bad_quantity_names_the_key_and_the_forms(value):
    with pytest.raises(ValueError, match=r"`head_node.resources.memory` is .*16Gi"):
        parse_quantity(value, "head_node.resources.memory")


BAD_FILES = [
    # (file, what the message says)
    ("cluster_name: a\nprovider: {type: local, head_ip: h}\nauth: {ssh_user: u}\n"
     "head_setup_command: [x]\n",
     ":4: unknown key `head_setup_command` in the file's top level: did you mean "
     "`head_setup_commands`?"),
    ("provider:\n  type: local\n  head_ip: h\n  worker_ip: [a]\nauth: {ssh_user: u}\n",
     ":4: unknown key `worker_ip` in `provider`: did you mean `worker_ips`?"),
    ("provider:\n  type: local\n  worker_ips: [a]\nauth: {ssh_user: u}\n",
     ":1: `provider.head_ip` is missing: add it (the head machine's address"),
    ("provider: {type: aws}\nhead_node:\n  resources:\n    memory: 16 GB\n",
     ':4: `head_node.resources.memory` is "16 GB": expected a number >= 0, or one with a '
     "suffix: 16Gi"),
    ("provider: {type: aws}\nmax_workers: two\n",
     ':2: `max_workers` is "two": expected a whole number >= 0 (workers the cluster has'),
    ("provider: {type: aws}\nworker_node_types:\n  - instance_type: m5.large\n",
     ":3: `worker_node_types[0].name` is missing"),
    ("provider: {type: aws}\ndocker:\n  image: rayproject/ray\n",
     ":3: `docker` asks for a container (`image`): docker is not supported by raggio's "
     "launcher yet; remove the section"),
    ("provider: {type: aws}\navailable_node_types:\n  a: {}\n",
     ":2: `head_node_type` is missing"),
    ("provider: {type: aws}\navailable_node_types:\n  head.a: {}\nhead_node_type: heada\n",
     ":4: `head_node_type` is 'heada', which is not a type of available_node_types (head.a). "
     "Did you mean `head.a`?"),
    ("provider: {type: aws}\nhead_node: {}\navailable_node_types:\n  a: {}\n"
     "head_node_type: a\n", ":2: `head_node` is the legacy form of available_node_types"),
    ("provider: {type: local, head_ip: h}\n", ": `auth.ssh_user` is missing"),
    ("provider: {type: local, head_ip: h, worker_ips: [a]}\nauth: {ssh_user: u}\n"
     "min_workers: 3\n", "min_workers=3, but provider.worker_ips lists 1 machine(s)"),
    ("provider: {type: aws}\navailable_node_types:\n  h: {}\n  w: {min_workers: 4, "
     "max_workers: 2}\nhead_node_type: h\n",
     ":4: node type 'w' has min_workers=4 above its max_workers=2"),
    ("provider: {type: aws}\nmax_workers: 1\nworker_node_types:\n  - {name: a, min_workers: 1}\n"
     "  - {name: b, min_workers: 1}\n", ":2: the node types' min_workers add up to 2"),
    ("provider: {type: aws}\nalerting:\n  rules:\n    task_failur_rate: {}\n",
     ":4: unknown key `task_failur_rate` in `alerting.rules`: did you mean "
     "`task_failure_rate`?"),
    ("provider: {type: aws}\nalerting: {enabled: true}\n",
     ":2: alerting is enabled but names no webhook"),
    ("provider: {type: aws}\nmonitoring_config: {prometheus: {port: 99999}}\n",
     ":2: `monitoring_config.prometheus.port` is 99999: expected a whole number from 0 to "
     "65535"),
    ("provider: {type: local\n  x: [\n", ":2: not valid YAML"),
    ("", ": a cluster file is a mapping of keys (cluster_name, provider, ...), not an empty "
     "file."),
]


@pytest.mark.parametrize("text, expected", BAD_FILES)
def test_a_mistake_names_its_line_key_and_fix(write, text, expected):
    path = write(text)
    message = _error(path)
    assert message.startswith(path)
    assert expected in message
    assert "\n" not in message


def test_every_problem_is_listed_with_its_line(write):
    path = write("provider: {type: aws}\nfoo: 1\nmax_workers: two\nbar: 2\n")
    message = _error(path)
    assert message.startswith(f"{path}:2: unknown key `foo`")
    assert f"2 more problem(s): max_workers ({path}:3), bar ({path}:4)" in message


def test_a_missing_file_is_named():
    assert "Cannot read the cluster file /nonexistent.yaml" in _error("/nonexistent.yaml")


def test_the_error_is_a_value_error_and_pickles(write):
    error = pickle.loads(pickle.dumps(ClusterConfigError("x.yaml:3: bad")))
    assert isinstance(error, ValueError) and str(error) == "x.yaml:3: bad"


def test_the_kv_form_parses_back(write):
    config = load(write("provider: {type: local, head_ip: h}\nauth: {ssh_user: u}\n"))
    again = cluster_config.parse(config.to_json().decode(), cluster_config.CONFIG_KEY)
    assert again.raw == config.raw
