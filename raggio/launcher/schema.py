"""The cluster file's JSON Schema, in both dialects, and its resource quantities.

``SCHEMA`` (JSON Schema draft 2020-12, checked with jsonschema) takes:

- Ray's cluster YAML (the keys of Ray 2.60's ``ray-schema.json``): ``cluster_name``,
  ``max_workers``, ``upscaling_speed``, ``idle_timeout_minutes``, ``docker``,
  ``provider``, ``auth``, ``available_node_types``, ``head_node_type``, ``file_mounts``,
  the command lists, and the legacy ``head_node``/``worker_nodes`` node configs.
- The seed's: ``head_node``/``worker_nodes`` with ``resources``, ``worker_node_types`` (a
  list of ``{name, instance_type, min_workers, max_workers, use_spot, spot_price,
  resources}``), ``autoscaling_config``, ``monitoring_config`` and ``alerting`` (the
  schemas of ``raggio/monitoring/monitoring_config.py`` and ``raggio/alerts/config.py``).

Every key has a ``description`` and, where Ray gives one, its ``default``; error messages
quote both. Resource amounts are numbers or Kubernetes-style quantities (``16Gi``,
``500m``), which ``parse_quantity`` turns into numbers. Nothing here reads files:
``cluster_config.py`` does, checks a document against ``SCHEMA`` and fills the defaults.
"""

from __future__ import annotations

import re

from raggio.alerts.config import SCHEMA as ALERTING_SCHEMA
from raggio.monitoring.monitoring_config import SCHEMA as MONITORING_SCHEMA

#: A number with an optional suffix: binary (Ki..Ei), decimal (k/K..E) or milli (m).
QUANTITY_PATTERN = (r"^\s*[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?\s*"
                    r"(Ki|Mi|Gi|Ti|Pi|Ei|k|K|M|G|T|P|E|m)?\s*$")
_QUANTITY = re.compile(QUANTITY_PATTERN)
_SUFFIXES = {
    "": 1, "m": 1e-3,
    "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}
#: Resources counted in bytes: their amounts are whole numbers.
BYTE_RESOURCES = ("memory", "object_store_memory")

#: Ray's start commands, which a file that gives none runs (Ray's defaults.yaml; its
#: local provider's differ: ``LOCAL_START_COMMANDS``).
DEFAULT_HEAD_START_COMMANDS = [
    "ray stop",
    "ulimit -n 65536; ray start --head --port=6379 --object-manager-port=8076 "
    "--autoscaling-config=~/ray_bootstrap_config.yaml",
]
DEFAULT_WORKER_START_COMMANDS = [
    "ray stop",
    "ulimit -n 65536; ray start --address=$RAY_HEAD_IP:6379 --object-manager-port=8076",
]
LOCAL_START_COMMANDS = {
    "head_start_ray_commands": [
        "ray stop",
        "ulimit -c unlimited && ray start --head --port=6379 "
        "--autoscaling-config=~/ray_bootstrap_config.yaml",
    ],
    "worker_start_ray_commands": ["ray stop", "ray start --address=$RAY_HEAD_IP:6379"],
}


def parse_quantity(value, key: str) -> float:
    """A resource amount as a number: ``16Gi`` -> 17179869184, ``2G`` -> 2e9, ``500m`` -> 0.5.

    Args:
        value: a number, or a string of a number with an optional Kubernetes suffix.
        key: the key's path, for the message.

    Raises:
        ValueError: not a non-negative number nor such a string.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return value
    match = _QUANTITY.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(
            f"`{key}` is {value!r}: expected a number >= 0, or one with a suffix: 16Gi, "
            "500Mi (powers of 1024), 2G, 500M (powers of 1000), 500m (thousandths)")
    number, suffix = value.strip(), match.group(3) or ""
    return float(number[:len(number) - len(suffix)]) * _SUFFIXES[suffix]


def _key(kind, description: str, **more) -> dict:
    """A property of type ``kind`` (a JSON Schema type name or list of them)."""
    return {"type": kind, "description": description, **more}


def _commands(description: str, default=()) -> dict:
    return _key("array", description, items={"type": "string"}, default=list(default))


_COUNT = {"type": "integer", "minimum": 0}
_RESOURCES = _key(
    "object", "Resources of a node of this type: CPU, GPU, memory and object_store_memory "
    "(bytes), and custom ones; numbers or quantities such as 16Gi, 500m.",
    additionalProperties={"type": ["number", "string"], "minimum": 0,
                          "pattern": QUANTITY_PATTERN},
    default={})
_LABELS = _key("object", "Labels of a node of this type (strings).",
               additionalProperties={"type": "string"}, default={})
_DOCKER_PROPERTIES = {
    "image": _key("string", "The image both head and workers run in."),
    "head_image": _key("string", "The head's image, instead of `image`."),
    "worker_image": _key("string", "The workers' image, instead of `image`."),
    "container_name": _key("string", "The container's name.", default="ray_docker"),
    "pull_before_run": _key("boolean", "Run `docker pull` first.", default=True),
    "run_options": _key("array", "Options of `docker run`.", items={"type": "string"}),
    "head_run_options": _key("array", "More `docker run` options on the head.",
                             items={"type": "string"}),
    "worker_run_options": _key("array", "More `docker run` options on workers.",
                               items={"type": "string"}),
    "disable_automatic_runtime_detection": _key("boolean", "Do not use the NVIDIA runtime "
                                                "when GPUs are found."),
    "disable_shm_size_detection": _key("boolean", "Do not size /dev/shm automatically."),
    "use_podman": _key("boolean", "Run podman instead of docker."),
}
_DOCKER = _key("object", "Run raggio in Docker containers (not supported by raggio's "
               "launcher yet: leave it out).", additionalProperties=False,
               properties=_DOCKER_PROPERTIES, default={})

_NODE_TYPE = _key("object", "A node type: what its nodes are and how many of them.",
                  additionalProperties=False, properties={
                      "node_config": _key("object", "The provider's settings for its nodes "
                                          "(e.g. InstanceType).", default={}),
                      "resources": _RESOURCES,
                      "labels": _LABELS,
                      "min_workers": dict(_COUNT, description="Workers of this type to keep "
                                          "running at all times.", default=0),
                      "max_workers": dict(_COUNT, description="Workers of this type at most "
                                          "(default: the global max_workers; 0 for the "
                                          "head's type)."),
                      "worker_setup_commands": _commands(
                          "Commands for this type's workers, instead of the global "
                          "worker_setup_commands."),
                      "docker": _key("object", "Docker settings of this type's workers.",
                                     additionalProperties=False,
                                     properties={k: _DOCKER_PROPERTIES[k] for k in (
                                         "worker_image", "pull_before_run",
                                         "worker_run_options",
                                         "disable_automatic_runtime_detection",
                                         "disable_shm_size_detection")}),
                      "use_spot": _key("boolean", "Ask the provider for spot instances.",
                                       default=False),
                      "spot_price": _key("number", "The most to pay per hour for a spot "
                                         "instance.", minimum=0),
                  })


def _seed_node(whose: str, node_type: str) -> dict:
    """The seed's head_node / worker_nodes: resources, beside Ray's legacy node config."""
    return _key("object", f"{whose} settings: `resources`, and any provider node config "
                f"(Ray's legacy form; it becomes the node type {node_type}).",
                properties={"resources": _RESOURCES})


_LOCAL_PROVIDER = {
    "properties": {
        "type": _key("string", "local: machines reached over SSH."),
        "head_ip": _key("string", "The head machine's address (host name or IP).",
                        minLength=1),
        "worker_ips": _key("array", "The worker machines' addresses.",
                           items={"type": "string", "minLength": 1}, default=[]),
        "external_head_ip": _key("string", "The head's address as this machine reaches it, "
                                 "when it differs from head_ip."),
    },
    "required": ["head_ip"],
    "additionalProperties": False,
}

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "raggio cluster file",
    "type": "object",
    "additionalProperties": False,
    "required": ["provider"],
    "properties": {
        "cluster_name": _key("string", "The cluster's name, which tells its nodes apart from "
                             "other clusters'.", default="default", minLength=1),
        "max_workers": dict(_COUNT, description="Workers the cluster has at most, all types "
                            "together (local provider: the number of worker_ips).", default=2),
        "min_workers": dict(_COUNT, description="Ray's legacy form: workers to keep running "
                            "(goes to the worker node type)."),
        "upscaling_speed": _key("number", "Nodes that may be pending, as a multiple of the "
                                "running ones.", minimum=0, default=1.0),
        "idle_timeout_minutes": _key("number", "Minutes a worker stays idle before the "
                                     "autoscaler removes it.", minimum=0, default=5),
        "docker": _DOCKER,
        "provider": _key(
            "object", "Where nodes come from: `type: local` (machines reached over SSH) or a "
            "cloud's settings.", required=["type"],
            properties={"type": _key("string", "local, aws, gcp, azure, ... or a module "
                                     "path.", minLength=1)},
            **{"if": {"properties": {"type": {"const": "local"}}, "required": ["type"]},
               "then": _LOCAL_PROVIDER}),
        "auth": _key("object", "How the launcher logs in to the nodes over SSH.",
                     additionalProperties=False, default={}, properties={
                         "ssh_user": _key("string", "The user to log in as.",
                                          default="ubuntu", minLength=1),
                         "ssh_private_key": _key("string", "The private key file (default: "
                                                 "ssh's own keys and agent)."),
                         "ssh_public_key": _key("string", "The public key file."),
                         "ssh_port": dict(_COUNT, maximum=65535, default=22,
                                          description="sshd's port on the nodes."),
                     }),
        "available_node_types": _key("object", "The node types, by name.",
                                     additionalProperties=_NODE_TYPE),
        "head_node_type": _key("string", "The node type of the head (a key of "
                               "available_node_types)."),
        "head_node": _seed_node("The head's", "ray-legacy-head-node-type"),
        "worker_nodes": _seed_node("The workers'", "ray-legacy-worker-node-type"),
        "worker_node_types": _key(
            "array", "The seed's worker node types, a list; each becomes an entry of "
            "available_node_types.", items=_key(
                "object", "A worker node type.", required=["name"], additionalProperties=False,
                properties={
                    "name": _key("string", "The type's name.", minLength=1),
                    "instance_type": _key("string", "The provider's instance type "
                                          "(node_config.InstanceType)."),
                    "min_workers": _NODE_TYPE["properties"]["min_workers"],
                    "max_workers": _NODE_TYPE["properties"]["max_workers"],
                    "use_spot": _NODE_TYPE["properties"]["use_spot"],
                    "spot_price": _NODE_TYPE["properties"]["spot_price"],
                    "resources": _RESOURCES,
                    "labels": _LABELS,
                    "node_config": _NODE_TYPE["properties"]["node_config"],
                })),
        "autoscaling_config": _key(
            "object", "The seed's autoscaling policy; its min/max_workers, "
            "idle_timeout_minutes and upscaling_speed apply where the file's top level "
            "gives none.", default={}, properties={
                "min_workers": dict(_COUNT, description="Workers to keep running."),
                "max_workers": dict(_COUNT, description="Workers at most."),
                "idle_timeout_minutes": _key("number", "Minutes idle before removal.",
                                             minimum=0),
                "upscaling_speed": _key("number", "Pending nodes per running one.",
                                        minimum=0),
                "target_utilization_fraction": _key("number", "Scale up to keep resource "
                                                    "use below this fraction.", minimum=0,
                                                    maximum=1),
                "scale_up_cooldown_s": _key("number", "Seconds between scale-ups.",
                                            minimum=0),
                "scale_down_cooldown_s": _key("number", "Seconds between scale-downs.",
                                              minimum=0),
            }),
        "monitoring_config": MONITORING_SCHEMA | {
            "description": "What the head runs for monitoring (Prometheus)."},
        "alerting": ALERTING_SCHEMA,
        "file_mounts": _key("object", "Files or directories to copy to every node: {remote "
                            "path: local path}.", additionalProperties={"type": "string"},
                            default={}),
        "cluster_synced_files": _key("array", "Paths on the head copied to every worker.",
                                     items={"type": "string"}, default=[]),
        "file_mounts_sync_continuously": _key("boolean", "Copy file_mounts again whenever "
                                              "they change.", default=False),
        "rsync_exclude": _key("array", "Patterns rsync leaves out of file_mounts.",
                              items={"type": "string"}, default=[]),
        "rsync_filter": _key("array", "Files of patterns (like .gitignore) rsync leaves out.",
                             items={"type": "string"}, default=[]),
        "initialization_commands": _commands("Commands run first on every node, before "
                                             "setup_commands."),
        "setup_commands": _commands("Commands that set up every node."),
        "head_setup_commands": _commands("Commands that set up the head, after "
                                         "setup_commands."),
        "worker_setup_commands": _commands("Commands that set up workers, after "
                                           "setup_commands."),
        "head_start_ray_commands": _commands("Commands that start raggio on the head.",
                                             DEFAULT_HEAD_START_COMMANDS),
        "worker_start_ray_commands": _commands("Commands that start raggio on workers "
                                               "($RAY_HEAD_IP is the head's address).",
                                               DEFAULT_WORKER_START_COMMANDS),
    },
}
