"""What ``init()``'s keyword arguments become: honoured, or refused with the reason.

Ray 2.60's ``init`` takes many keywords; raggio honours each one it can and
refuses the rest with a sentence saying what raggio does instead, so that no
setting is dropped silently. ``resolve`` turns them into ``InitSettings``:
the job's namespace, runtime env and record fields, the configuration
(``_system_config``), and the private head to start when there is no cluster
to join (a ``NodeSpec``). Settings of the node and cluster themselves are refused when
``init()`` joins a running cluster, as Ray refuses them
(``refuse_when_joining``). ``api.init`` is the only caller.

The private head runs a dashboard unless ``include_dashboard=False``, on
``dashboard_host`` (loopback by default) and ``dashboard_port`` (None: 8265,
or the next free port after it, as Ray). A running cluster's dashboard was set
when it started, so these keywords cannot change it; Ray ignores them then,
and raggio says so in a warning rather than refusing them, since Ray programs
pass them and work.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any

from raggio.config import Config, honoured_system_config
from raggio.core.options import check_namespace
from raggio.common.labels import check_node_labels
from raggio.common.runtime_env import merge
from raggio.core.job_config import JobConfig
from raggio.node_spec import NodeSpec

logger = logging.getLogger(__name__)

#: ``init()``'s default ``dashboard_host`` (Ray's): this machine only.
DEFAULT_DASHBOARD_HOST = "127.0.0.1"

#: Private keywords raggio refuses, with what it does instead.
_REFUSED = {
    "_plasma_directory": "raggio's object store is a file in /dev/shm (or under the temp "
                         "dir when /dev/shm is too small); no directory can be chosen",
    "_redis_max_memory": "raggio's private head keeps its tables in memory, without Redis; "
                         "`raggio start --head --storage redis://HOST:PORT` makes a cluster "
                         "keep them in Redis",
    "_redis_password": "raggio's private head uses no Redis (see `raggio start --storage`)",
    "_redis_username": "raggio's private head uses no Redis (see `raggio start --storage`)",
    "_driver_object_store_memory": "deprecated in Ray; a driver's objects go to its node's "
                                   "object store (object_store_memory sizes it)",
    "_tracing_startup_hook": "raggio has no tracing integration",
    "_node_name": "a raggio node is named by its IP address; there is no other name to set",
    "storage": "Ray's experimental cluster storage URI was removed from Ray; raggio has none",
    "allow_multiple": "it is an argument of Ray Client connections (ray://), which raggio "
                      "does not have",
}

#: Private keywords raggio honours (the others are handled in ``api.init``).
_PRIVATE = ("_node_ip_address", "_temp_dir", "_system_config", "_memory",
            "_enable_object_reconstruction", "_skip_env_hook", "_metrics_export_port")


@dataclasses.dataclass
class InitSettings:
    """``init()``'s keywords, resolved."""

    cfg: Config  #: the configuration, with ``_system_config`` applied
    namespace: str | None
    runtime_env: dict | None
    #: More fields of the job's record (JobConfig metadata, default_actor_lifetime).
    job_info: dict
    #: The private head this driver starts when it finds no cluster to join: tied to the
    #: driver, recorded as the machine's current cluster.
    head: NodeSpec
    #: Keywords given that only a private head can honour (refused when joining), each
    #: with what to do instead.
    head_only: dict[str, str]
    #: Keywords given that only a private head honours and Ray ignores when joining: a
    #: warning names them then.
    ignored_when_joining: list[str]
    temp_dir: str
    node_ip: str | None


def resolve(cfg: Config, *, num_cpus: float | None, num_gpus: float | None,
            resources: dict | None, labels: dict | None, object_store_memory: int | None,
            local_mode: bool, include_dashboard: Any, dashboard_host: Any,
            dashboard_port: Any, job_config: JobConfig | None,
            logging_config: Any, namespace: str | None, runtime_env: dict | None,
            enable_resource_isolation: bool, system_reserved_cpu: float | None,
            system_reserved_memory: int | None, private: dict) -> InitSettings:
    """Check init()'s keywords and say what each becomes.

    Raises:
        RuntimeError: an unknown keyword, or ``local_mode=True`` (as Ray 2.60).
        TypeError: ``job_config`` is not a JobConfig, or a dashboard keyword of the wrong
            type.
        ValueError: a setting raggio has no equivalent of, or a bad value.
    """
    _refuse_unsupported(local_mode, logging_config, enable_resource_isolation,
                        system_reserved_cpu, system_reserved_memory, private)
    check_namespace(namespace)
    temp_dir = private.get("_temp_dir") or cfg.temp_dir
    node_ip = private.get("_node_ip_address")
    head = NodeSpec(head=True, tied=True, cluster_file=True,
                    node_ip_address=node_ip or "127.0.0.1", temp_dir=temp_dir)
    settings = InitSettings(cfg=cfg, namespace=namespace, runtime_env=runtime_env, job_info={},
                            head=head, head_only={}, ignored_when_joining=[],
                            temp_dir=temp_dir, node_ip=node_ip)
    _apply_dashboard(settings, include_dashboard, dashboard_host, dashboard_port)
    _apply_node_settings(settings, num_cpus=num_cpus, num_gpus=num_gpus, resources=resources,
                         labels=labels, object_store_memory=object_store_memory,
                         memory=private.get("_memory"))
    if private.get("_metrics_export_port"):
        head.metrics_export_port = private["_metrics_export_port"]
        settings.ignored_when_joining.append("_metrics_export_port")
    if private.get("_system_config"):
        _apply_system_config(settings, private["_system_config"])
    if job_config is not None:
        _apply_job_config(settings, job_config)
    _apply_submitted_job(settings)
    return settings


def _apply_submitted_job(settings: InitSettings) -> None:
    """A submitted job's driver (its supervisor set RAY_JOB_CONFIG_JSON_ENV_VAR) records
    the job's metadata, with its submission id, as Ray's drivers do: the job list links
    the driver to its submission by it. The job's runtime_env is the default of the
    driver's tasks and actors, merged with init()'s as Ray merges them: a field (or env
    var) given by both is an error, unless RAY_OVERRIDE_JOB_RUNTIME_ENV lets init()'s win."""
    if not settings.cfg.job_config_json:
        return
    try:
        submitted = json.loads(settings.cfg.job_config_json)
        metadata = submitted.get("metadata") or {}
    except (ValueError, AttributeError):
        raise ValueError("RAY_JOB_CONFIG_JSON_ENV_VAR is not a JSON object: "
                         f"{settings.cfg.job_config_json[:200]!r}") from None
    settings.job_info["metadata"] = dict(metadata, **settings.job_info.get("metadata", {}))
    job_env, driver_env = submitted.get("runtime_env") or {}, settings.runtime_env or {}
    if not settings.cfg.override_job_runtime_env and (
            (set(job_env) - {"env_vars"}) & (set(driver_env) - {"env_vars"})
            or set(job_env.get("env_vars") or {}) & set(driver_env.get("env_vars") or {})):
        raise ValueError(
            f"Failed to merge the Job's runtime env {job_env} with a ray.init's runtime env "
            f"{driver_env} because of a conflict. Specifying the same runtime_env fields or "
            "the same environment variable keys is not allowed. Use "
            "RAY_OVERRIDE_JOB_RUNTIME_ENV=1 to instruct Ray to combine Job and Driver's "
            "runtime environment in the event of a conflict.")
    settings.runtime_env = merge(job_env, driver_env) or None


def _refuse_unsupported(local_mode, logging_config, enable_resource_isolation,
                        system_reserved_cpu, system_reserved_memory, private: dict) -> None:
    unknown = [name for name in private if name not in _PRIVATE and name not in _REFUSED]
    if unknown:
        raise RuntimeError(f"Unknown keyword argument(s): {', '.join(unknown)}")
    for name in private:
        if name in _REFUSED:
            raise ValueError(f"init({name}=...) is not supported: {_REFUSED[name]}.")
    if local_mode:
        raise RuntimeError("`local_mode` is no longer supported (as in Ray 2.60). For "
                           "debugging, run the function itself without .remote(), or call "
                           "breakpoint() in the task and read its worker's output.")
    if logging_config is not None:
        raise ValueError("init(logging_config=...) (structured logging) is not supported yet; "
                         "configure_logging, logging_level and logging_format set how raggio "
                         "logs.")
    if enable_resource_isolation:
        raise ValueError("init(enable_resource_isolation=True) is not supported: raggio does "
                         "not put its processes in cgroups. Give tasks resource requests "
                         "(num_cpus, memory) to keep them apart.")
    for name, value in (("system_reserved_cpu", system_reserved_cpu),
                        ("system_reserved_memory", system_reserved_memory)):
        if value is not None:
            raise ValueError(f"init({name}=...) reserves resources for resource isolation, "
                             "which raggio does not have (enable_resource_isolation).")
    if private.get("_enable_object_reconstruction") is False:
        raise ValueError("init(_enable_object_reconstruction=False) is not supported: raggio "
                         "always rebuilds a lost object from its lineage. Give the tasks "
                         "max_retries=0 to have ObjectLostError raised instead.")


def _apply_dashboard(settings: InitSettings, include_dashboard, host, port) -> None:
    """The private head's dashboard: on unless ``include_dashboard=False``."""
    if include_dashboard not in (None, True, False):
        raise TypeError(f"include_dashboard must be None, True or False, got "
                        f"{include_dashboard!r}.")
    if not isinstance(host, str) or not host:
        raise TypeError(f"dashboard_host must be an address (a string), got {host!r}.")
    if port is not None and (not isinstance(port, int) or isinstance(port, bool)):
        raise TypeError(f"dashboard_port must be an int, got {port!r}.")
    if port is not None and not 0 <= port <= 65535:
        raise ValueError(f"dashboard_port must be a port number (0-65535; 0: any free "
                         f"one), got {port}.")
    if include_dashboard is not False:
        settings.head.set_dashboard(host, port)
    settings.ignored_when_joining = [
        name for name, value, default in (("include_dashboard", include_dashboard, None),
                                          ("dashboard_host", host, DEFAULT_DASHBOARD_HOST),
                                          ("dashboard_port", port, None))
        if value != default]


def _apply_node_settings(settings: InitSettings, *, num_cpus, num_gpus, resources, labels,
                         object_store_memory, memory) -> None:
    """The private head's node; each setting refused when joining."""
    hint = ("the nodes' resources were set when they started (`raggio start --num-cpus ...`)")
    for name, spec_field, value in (("num_cpus", "num_cpus", num_cpus),
                                    ("num_gpus", "num_gpus", num_gpus),
                                    ("object_store_memory", "object_store_memory",
                                     None if object_store_memory is None
                                     else int(object_store_memory)),
                                    ("_memory", "memory",
                                     None if memory is None else int(memory))):
        if value is not None:
            setattr(settings.head, spec_field, value)
            settings.head_only[name] = hint
    if resources is not None:
        settings.head.resources = resources
        settings.head_only["resources"] = hint
    if labels is not None:
        check_node_labels(labels)
        settings.head.labels = labels
        settings.head_only["labels"] = ("the nodes' labels were set when they started "
                                        "(`raggio start --labels ...`)")


def _apply_system_config(settings: InitSettings, system_config: dict) -> None:
    """Ray's ``_system_config`` keys that name a raggio setting (see config.py): this
    driver's configuration and the private head's environment."""
    changes = honoured_system_config(system_config, "init()")
    settings.cfg = settings.cfg.replace(**changes)
    settings.head.config.update(changes)
    settings.head_only["_system_config"] = (
        "a running cluster's settings were fixed when it started; set them with RAGGIO_* "
        "environment variables before `raggio start`")


def _apply_job_config(settings: InitSettings, job_config: JobConfig) -> None:
    """As Ray: init()'s own namespace and runtime_env win over the JobConfig's."""
    if not isinstance(job_config, JobConfig):
        raise TypeError("init(job_config=...) takes a raggio.job_config.JobConfig, got "
                        f"{type(job_config).__name__}.")
    problem = job_config._unsupported()
    if problem:
        raise ValueError(problem)
    job_config._check_metadata()
    if settings.namespace is None:
        settings.namespace = job_config.ray_namespace
    if not settings.runtime_env:
        settings.runtime_env = job_config.runtime_env or None
    settings.job_info.update(metadata=dict(job_config.metadata),
                             default_actor_lifetime=job_config.default_actor_lifetime)
    if job_config.code_search_path:
        paths = [os.path.abspath(path) for path in job_config.code_search_path]
        inherited = os.environ.get("PYTHONPATH")
        settings.head.env["PYTHONPATH"] = os.pathsep.join(
            paths + ([inherited] if inherited else []))
        settings.head_only["JobConfig.code_search_path"] = (
            "the workers of a running cluster are forked from a process started with its "
            "node, so put the directories on PYTHONPATH before `raggio start`, or install "
            "the code as a package")


def refuse_when_joining(settings: InitSettings) -> None:
    """Raise if keywords that only a private head honours were given to join a cluster;
    warn of those that Ray ignores then.

    Raises:
        ValueError: naming each such keyword and what to do instead.
    """
    if settings.ignored_when_joining:
        logger.warning("%s: ignored when connecting to a running cluster, whose dashboard was "
                       "set when its head started (`raggio start --head "
                       "--include-dashboard/--dashboard-host/--dashboard-port`).",
                       ", ".join(settings.ignored_when_joining))
    if settings.head_only:
        by_hint: dict[str, list[str]] = {}
        for name, hint in settings.head_only.items():
            by_hint.setdefault(hint, []).append(name)
        reasons = "; ".join(f"{', '.join(names)}: {hint}" for hint, names in by_hint.items())
        raise ValueError(f"When connecting to an existing cluster, "
                         f"{', '.join(settings.head_only)} must not be provided ({reasons}).")
