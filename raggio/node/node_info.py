"""What a new node is: its session directory and default resources.

Ray's defaults: all CPUs, detected GPUs, 70% of memory for tasks,
``Config.object_store_fraction`` (30%) for the object store (capped by
``Config.object_store_cap_bytes``, and by /dev/shm where that is the arena's
home), one ``node:<ip>`` resource, ``node:__internal_head__`` on the head.
``Config.override_resources`` (RAGGIO_OVERRIDE_RESOURCES, Ray's
RAY_OVERRIDE_RESOURCES, which the launcher sets) wins over what the node was given.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import time

import psutil


def new_session_dir(temp_dir: str) -> tuple[str, str]:
    name = time.strftime("session_%Y-%m-%d_%H-%M-%S_") + f"{os.getpid()}"
    path = os.path.join(temp_dir, name)
    os.makedirs(os.path.join(path, "logs"), exist_ok=True)
    latest = os.path.join(temp_dir, "session_latest")
    try:
        if os.path.islink(latest):
            os.unlink(latest)
        os.symlink(path, latest)
    except OSError:
        pass
    return path, name


def detect_gpus() -> int:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip()])
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


def default_labels(cfg) -> dict[str, str]:
    """Ray's default labels that come from the environment (``RAY_NODE_MARKET_TYPE``,
    ``RAY_NODE_TYPE_NAME``, ``RAY_NODE_REGION``, ``RAY_NODE_ZONE``); the node manager adds
    ``ray.io/node-id``. A label the node was started with wins."""
    values = {"ray.io/market-type": cfg.node_market_type, "ray.io/node-group": cfg.node_type_name,
              "ray.io/availability-region": cfg.node_region,
              "ray.io/availability-zone": cfg.node_zone}
    return {key: value for key, value in values.items() if value}


def default_resources(cfg, *, num_cpus, num_gpus, resources: dict, memory=None,
                      object_store_memory, node_ip: str, is_head: bool) -> tuple[dict, int]:
    """The node's resources and its object store's size: what was given, else Ray's defaults
    (the store: ``cfg.object_store_fraction`` of memory, at most ``cfg.object_store_cap_bytes``).

    Raises:
        ValueError: ``resources`` names one that has its own argument (CPU, GPU...).
    """
    for reserved in ("CPU", "GPU", "memory", "object_store_memory"):
        if reserved in resources:
            raise ValueError(
                f"Use the {reserved.lower() if reserved != 'CPU' else 'num_cpus'} argument "
                f"instead of resources={{'{reserved}': ...}}.")
    total_memory = psutil.virtual_memory().total
    if object_store_memory is None:
        object_store_memory = min(int(total_memory * cfg.object_store_fraction),
                                  cfg.object_store_cap_bytes)
        if os.path.isdir("/dev/shm"):
            object_store_memory = min(object_store_memory,
                                      int(shutil.disk_usage("/dev/shm").total * 0.95))
    out = {"CPU": float(os.cpu_count() if num_cpus is None else num_cpus)}
    gpus = detect_gpus() if num_gpus is None else num_gpus
    if gpus:
        out["GPU"] = float(gpus)
    out["memory"] = float(int(total_memory * 0.7) if memory is None else memory)
    out["object_store_memory"] = float(object_store_memory)
    out[f"node:{node_ip}"] = 1.0
    if is_head:
        out["node:__internal_head__"] = 1.0
    out.update({k: float(v) for k, v in resources.items()})
    return out, int(object_store_memory)


def overridden_resources(spec, cfg):
    """``spec`` (a ``NodeSpec``) with ``cfg.override_resources`` in place of its resources:
    CPU, GPU, memory and object_store_memory replace num_cpus, num_gpus, memory and
    object_store_memory, and the rest join (and win over) its custom resources, as Ray's
    node takes RAY_OVERRIDE_RESOURCES.

    Raises:
        ValueError: the variable is not a JSON object of numbers >= 0.
    """
    if not cfg.override_resources:
        return spec
    try:
        override = json.loads(cfg.override_resources)
    except json.JSONDecodeError:
        override = None
    if not isinstance(override, dict) or not all(
            isinstance(amount, (int, float)) and not isinstance(amount, bool) and amount >= 0
            for amount in override.values()):
        raise ValueError(
            f"RAGGIO_OVERRIDE_RESOURCES={cfg.override_resources!r} is not a JSON object of "
            'resource amounts; write it like \'{"CPU": 4, "memory": 17179869184, "custom": 1}\'.')
    named = {"CPU": "num_cpus", "GPU": "num_gpus", "memory": "memory",
             "object_store_memory": "object_store_memory"}
    changes = {field: override.pop(name) for name, field in named.items() if name in override}
    for field in ("memory", "object_store_memory"):
        if field in changes:
            changes[field] = int(changes[field])
    return dataclasses.replace(spec, resources={**spec.resources, **override}, **changes)
