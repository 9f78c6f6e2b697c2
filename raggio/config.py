"""Every tunable of raggio, defined once.

Each field has a type, a default, a one-line doc and an environment variable
``RAGGIO_<NAME>``. ``Config.from_env()`` parses and validates them once at
process start; everything else reads attributes (``cfg.rpc_timeout_s``) and
never touches ``os.environ`` for tunables. Ray's default ports and sizes live
here too.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field, fields

#: Values smaller than this travel inline in messages; larger ones go to the
#: node's shared-memory store (Ray's max_direct_call_object_size).
DEFAULT_MAX_INLINE_BYTES = 100 * 1024
DEFAULT_GCS_PORT = 6379
DEFAULT_DASHBOARD_PORT = 8265
DEFAULT_CLIENT_PORT = 10001


def _doc(text: str, default, *aliases: str):
    """A field; ``aliases`` are further variables read when RAGGIO_<NAME> is unset."""
    return field(default=default, metadata={"doc": text, "aliases": aliases})


@dataclass(frozen=True)
class Config:
    """Process-wide settings; build with :meth:`from_env`."""

    rpc_timeout_s: float = _doc("Deadline for one control-plane request.", 30.0)
    connect_timeout_s: float = _doc("How long to keep retrying a connection before giving up.", 30.0)
    peer_connect_timeout_s: float = _doc(
        "The same for a running peer (an owner, a worker): a refusal there means it is gone.",
        3.0)
    head_start_timeout_s: float = _doc("How long init() waits for a private head to come up.", 30.0)
    max_inline_bytes: int = _doc("Objects below this size travel inline.", DEFAULT_MAX_INLINE_BYTES)
    object_store_fraction: float = _doc(
        "Share of system memory used for the object store when not given.", 0.3)
    object_store_cap_bytes: int = _doc(
        "Upper bound of the default object store size.", 200 * 1024**3)
    function_size_warn_threshold_bytes: int = _doc(
        "A pickled remote function or actor class past this size is warned about.", 10**7)
    function_size_error_threshold_bytes: int = _doc(
        "A pickled remote function or actor class past this size is refused (ValueError).",
        10**8, "FUNCTION_SIZE_ERROR_THRESHOLD")
    lease_linger_s: float = _doc(
        "How long a submitter keeps an idle worker lease before returning it.", 0.01)
    max_pending_lease_requests: int = _doc(
        "Lease requests in flight per scheduling shape.", 10)
    lease_retry_timeout_s: float = _doc(
        "How long, added up, a lease request may spend failing to reach a node manager "
        "(spilled to a node that died or left) before its task or actor fails; the time a "
        "node holds it waiting for resources does not count.", 60.0)
    object_store_prefault_bytes: int = _doc(
        "Most arena memory allocated in the background ahead of the highest object while "
        "objects are being created (as much as lies below that object, up to this).", 1024**3)
    object_store_release_after_s: float = _doc(
        "Quiet time (no new object) after which a node gives back the arena memory above its "
        "highest object (negative: never).", 10.0)
    prestart_workers: bool = _doc("Start num_cpus workers when the first driver connects.", True)
    idle_worker_keep: int = _doc(
        "Idle workers kept per runtime environment beyond num_cpus.", 0)
    log_poll_period_s: float = _doc("How often the log monitor reads worker logs.", 0.1)
    log_rotation_max_bytes: int = _doc(
        "A log file in a session's logs directory is rotated when it grows past this.",
        512 * 1024**2, "RAY_ROTATION_MAX_BYTES")
    log_rotation_backup_count: int = _doc(
        "Rotated copies kept of each log file (name.1 the newest).", 5,
        "RAY_ROTATION_BACKUP_COUNT")
    dedup_logs: bool = _doc(
        "Print a line that several workers write once, then how often it repeated.", True,
        "RAY_DEDUP_LOGS")
    dedup_logs_allow_regex: str = _doc(
        "Worker output lines matching this regex are never deduplicated.", "",
        "RAY_DEDUP_LOGS_ALLOW_REGEX")
    dedup_logs_skip_regex: str = _doc(
        "Worker output lines matching this regex are not printed in the driver.", "",
        "RAY_DEDUP_LOGS_SKIP_REGEX")
    dedup_logs_window_s: float = _doc(
        "How long repeats of a line are counted before the count is printed.", 5.0,
        "RAY_DEDUP_LOGS_AGG_WINDOW_S")
    task_events_report_interval_s: float = _doc(
        "How often a process sends its task state changes to the control store (0: off).", 1.0)
    task_events_max_buffer: int = _doc(
        "Task events a process holds while the control store is away (then the oldest go).",
        100_000)
    task_events_max_tasks: int = _doc(
        "Task attempts the control store keeps (then the oldest go, counted).", 100_000,
        "RAY_task_events_max_num_task_in_gcs")
    enable_metrics_collection: bool = _doc(
        "Serve the node's Prometheus endpoint and send application metrics to it.", True,
        "RAY_enable_metrics_collection")
    metrics_report_period_s: float = _doc(
        "How often a process sends its changed application metrics to its node.", 2.0)
    gc_gen0_threshold: int = _doc(
        "The garbage collector's first threshold in drivers and workers, when Python's "
        "default (700) is in force; 0 leaves it alone.", 7000)
    record_ref_creation_sites: bool = _doc(
        "Record where each object ref was made (`raggio memory`'s Call Site).", False,
        "RAY_record_ref_creation_sites")
    health_check_period_s: float = _doc("How often the control store pings nodes.", 1.0)
    health_check_timeout_s: float = _doc(
        "How long a node has to answer a ping before it counts as missed: a node busy "
        "forking a hundred workers on two cores is not a dead one (Ray waits 10 s).", 5.0)
    health_check_failure_threshold: int = _doc("Missed pings before a node is dead.", 3)
    gcs_reconnect_timeout_s: float = _doc(
        "How long nodes, drivers and workers wait for a lost control store to come back.", 60.0)
    gcs_reconnect_grace_s: float = _doc(
        "How long a restarted control store waits for nodes and drivers to come back.", 30.0)
    client_reconnect_grace_s: float = _doc(
        "How long a ray:// client's session outlives its lost connection, waiting for it to "
        "reconnect, before its objects and actors are freed.", 30.0,
        "RAY_CLIENT_RECONNECT_GRACE_PERIOD")
    memory_usage_threshold: float = _doc(
        "Node memory use (a fraction) above which the newest worker is killed.", 0.95)
    memory_monitor_period_s: float = _doc("How often the memory monitor looks.", 0.25)
    drain_owner_timeout_s: float = _doc(
        "How long a draining node waits for the owner of an object it moves, to connect and "
        "to answer, before it gives the drain up.", 10.0)
    temp_dir: str = _doc("Where session directories live.", "/tmp/raggio")
    launcher_dir: str = _doc(
        "Where `raggio up` keeps each cluster's state file, token and node logs.",
        "~/.raggio/clusters")
    launcher_ssh_wait_s: float = _doc(
        "How long `raggio up` keeps trying to reach a node's SSH server before it marks the "
        "node failed.", 60.0)
    autoscaler_update_interval_s: float = _doc(
        "How often the autoscaler looks at the cluster's demand and idle nodes.", 5.0,
        "AUTOSCALER_UPDATE_INTERVAL_S")
    autoscaler_node_start_wait_s: float = _doc(
        "How long a launched node may take to join the cluster before the autoscaler counts "
        "its launch failed and removes it.", 900.0, "AUTOSCALER_NODE_START_WAIT_S")
    autoscaler_max_launch_backoff_s: float = _doc(
        "The longest pause before the autoscaler launches a node type again after its "
        "launches failed (the pause doubles from 5 s with each failure in a row).", 300.0)
    launcher_start_timeout_s: float = _doc(
        "How long each of a node's start commands may run under `raggio up` (they start "
        "daemons and return) before the node is marked failed.", 300.0)
    auth_token: str = _doc("The cluster token, when not read from the session directory.", "",
                           "RAY_AUTH_TOKEN")
    address: str = _doc("The cluster init() joins when given no address.", "", "RAY_ADDRESS")
    override_resources: str = _doc(
        "A JSON object of resources (CPU, GPU, memory, object_store_memory in bytes, custom "
        "ones) that a starting node takes instead of the detected or given ones; the "
        "launcher sets it from the node type's resources.", "", "RAY_OVERRIDE_RESOURCES")
    job_stop_wait_time_s: float = _doc(
        "How long a stopped job's entrypoint has after SIGTERM before SIGKILL.", 3.0,
        "RAY_JOB_STOP_WAIT_TIME_S")
    job_config_json: str = _doc(
        "The JobConfig a submitted job's driver takes (metadata, runtime_env), as JSON; set "
        "by its supervisor.", "", "RAY_JOB_CONFIG_JSON_ENV_VAR")
    override_job_runtime_env: bool = _doc(
        "Let a submitted job's driver give init() a runtime_env whose fields (or env vars) "
        "the job's also has: init()'s win, instead of an error.", False,
        "RAY_OVERRIDE_JOB_RUNTIME_ENV")
    logging_level: str = _doc("Log level of raggio's own processes.", "WARNING")
    node_market_type: str = _doc(
        "A node's ray.io/market-type label (spot, on-demand), as Ray reads it.", "",
        "RAY_NODE_MARKET_TYPE")
    node_type_name: str = _doc("A node's ray.io/node-group label.", "", "RAY_NODE_TYPE_NAME")
    node_region: str = _doc("A node's ray.io/availability-region label.", "", "RAY_NODE_REGION")
    node_zone: str = _doc("A node's ray.io/availability-zone label.", "", "RAY_NODE_ZONE")
    cloud_instance_id: str = _doc(
        "The cloud instance this node runs on (get_node_instance_id); set by whoever "
        "launched it.", "", "RAY_CLOUD_INSTANCE_ID")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Config":
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = environ.get("RAGGIO_" + f.name.upper())
            for alias in f.metadata["aliases"]:
                if raw is None:
                    raw = environ.get(alias)
            if raw is None:
                continue
            values[f.name] = _parse(f, raw)
        return cls(**values)

    def replace(self, **changes) -> "Config":
        return dataclasses.replace(self, **changes)


def _parse(f: dataclasses.Field, raw: str):
    kind = type(f.default)
    try:
        if kind is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        return kind(raw)
    except ValueError:
        raise ValueError(
            f"RAGGIO_{f.name.upper()}={raw!r} is not a valid {kind.__name__} "
            f"({f.metadata['doc']})") from None


#: Ray's ``_system_config`` keys that name a raggio setting: key -> (field, factor applied
#: to the value: Ray counts some in milliseconds where raggio counts seconds).
SYSTEM_CONFIG_KEYS: dict[str, tuple[str, float | None]] = {
    "health_check_period_ms": ("health_check_period_s", 0.001),
    "health_check_failure_threshold": ("health_check_failure_threshold", None),
    "max_direct_call_object_size": ("max_inline_bytes", None),
    "task_events_max_num_task_in_gcs": ("task_events_max_tasks", None),
    "task_events_report_interval_ms": ("task_events_report_interval_s", 0.001),
    "memory_usage_threshold": ("memory_usage_threshold", None),
    "gcs_rpc_server_reconnect_timeout_s": ("gcs_reconnect_timeout_s", None),
    "record_ref_creation_sites": ("record_ref_creation_sites", None),
    "enable_metrics_collection": ("enable_metrics_collection", None),
    "metrics_report_interval_ms": ("metrics_report_period_s", 0.001),
}


def unknown_system_config_keys(system_config: dict) -> list[str]:
    """The keys ``system_config_changes`` would refuse (no raggio equivalent)."""
    names = {f.name for f in fields(Config)}
    return [key for key in system_config if key not in SYSTEM_CONFIG_KEYS and key not in names]


def system_config_changes(system_config: dict) -> dict:
    """The Config fields that ``init(_system_config=...)`` sets: Ray's keys above, or
    raggio's own field names.

    Raises:
        ValueError: a key that is neither, or a value of the wrong type.
    """
    fields_by_name = {f.name: f for f in fields(Config)}
    changes = {}
    for key, value in system_config.items():
        name, factor = SYSTEM_CONFIG_KEYS.get(key, (key, None))
        f = fields_by_name.get(name)
        if f is None:
            raise ValueError(
                f"_system_config key {key!r} has no raggio equivalent. Ray's keys raggio "
                f"honours: {', '.join(sorted(SYSTEM_CONFIG_KEYS))}; raggio's own settings "
                f"can be named too: {', '.join(sorted(fields_by_name))}.")
        kind = type(f.default)
        if kind is bool or kind is str:
            fits = isinstance(value, kind)
        else:
            fits = (isinstance(value, (int, float)) and not isinstance(value, bool)
                    and (kind is float or float(value).is_integer()))
        if not fits:
            raise ValueError(f"_system_config[{key!r}] must be a {kind.__name__}, got "
                             f"{value!r}.")
        changes[name] = kind(value * factor) if factor else kind(value)
    return changes


def honoured_system_config(system_config: dict, where: str) -> dict:
    """The Config changes of a ``_system_config``. A key with no raggio equivalent (one of
    Ray's many internal tunings) is not applied, and a warning names it: Ray programs and
    tests pass such keys, and refusing them would stop programs that run the same without.

    Raises:
        ValueError: a value of the wrong type for a key raggio honours.
    """
    unknown = unknown_system_config_keys(system_config)
    if unknown:
        logging.getLogger("raggio").warning(
            "%s: _system_config keys with no raggio equivalent are not applied: %s. Ray's "
            "keys raggio honours: %s.", where, ", ".join(unknown),
            ", ".join(sorted(SYSTEM_CONFIG_KEYS)))
    return system_config_changes({k: v for k, v in system_config.items() if k not in unknown})


def system_config_env(changes: dict) -> dict[str, str]:
    """The ``RAGGIO_<NAME>`` environment that gives another process these settings."""
    return {"RAGGIO_" + name.upper(): ("1" if value else "0") if isinstance(value, bool)
            else str(value) for name, value in changes.items()}


_config: Config | None = None


def get_config() -> Config:
    """The process's configuration, parsed from the environment on first use."""
    global _config
    if _config is None:
        _config = Config.from_env()
    return _config
