"""The public API behind ``import raggio as ray``: init, get, put, wait, and the rest.

A thin sync facade: each function checks its input, then calls the process's
core worker. ``init()`` with no address starts a private head (control store
and node manager in one process, bound to loopback) tied to this driver; what
each of its keywords becomes (honoured or refused) is ``init_options.py``'s.
"""

from __future__ import annotations

import atexit
import inspect
import logging
import os
import subprocess
import threading
import uuid
from typing import Any

from raggio.config import get_config
from raggio.core import context, init_options
from raggio.core.actor import ActorClass, ActorHandle
from raggio.core.core_worker import DRIVER, CoreWorker
from raggio.core import generators
from raggio.core.generators import ObjectRefGenerator
from raggio.core.object_ref import ObjectRef
from raggio.core.options import ACTOR_OPTIONS, TASK_OPTIONS, check_runtime_env
from raggio.core.remote_function import RemoteFunction
from raggio.exceptions import RaySystemError
from raggio.core.job_config import JobConfig
from raggio import cluster_file
from raggio.launch import wait_ready
from raggio.node_spec import NodeSpec
from raggio.rpc import local_ip_for, split_address

logger = logging.getLogger(__name__)

_head: subprocess.Popen | None = None
_init_lock = threading.RLock()


def is_initialized() -> bool:
    return context.current_core_or_none() is not None


LOG_FORMAT = "%(asctime)s\t%(levelname)s %(filename)s:%(lineno)d -- %(message)s"


def _configure_logging(level: int | str, logging_format: str | None) -> None:
    """Set the level (and format) of raggio's own loggers, not the application's root
    logger (as Ray), and give them a handler on stderr once."""
    if isinstance(level, str):
        number = logging.getLevelName(level.upper())
        if not isinstance(number, int):
            raise ValueError(f"logging_level={level!r} is not a level; use one of DEBUG, "
                             "INFO, WARNING, ERROR, CRITICAL (or a logging constant).")
        level = number
    logger = logging.getLogger("raggio")
    logger.setLevel(level)
    handler = next((h for h in logger.handlers if getattr(h, "_raggio", False)), None)
    if handler is None:
        handler = logging.StreamHandler()
        handler._raggio = True
        logger.addHandler(handler)
        logger.propagate = False
    handler.setFormatter(logging.Formatter(logging_format or LOG_FORMAT))


def init(address: str | None = None, *, num_cpus: float | None = None,
         num_gpus: float | None = None, resources: dict | None = None,
         labels: dict[str, str] | None = None, object_store_memory: int | None = None,
         local_mode: bool = False, ignore_reinit_error: bool = False,
         include_dashboard: bool | None = None, dashboard_host: str = "127.0.0.1",
         dashboard_port: int | None = None, job_config: JobConfig | None = None,
         configure_logging: bool = True, logging_level: int | str = logging.INFO,
         logging_format: str | None = None, logging_config=None,
         log_to_driver: bool | None = None, namespace: str | None = None,
         runtime_env: dict | None = None, enable_resource_isolation: bool = False,
         system_reserved_cpu: float | None = None, system_reserved_memory: int | None = None,
         **kwargs) -> "RayContext":
    """Start a private local cluster, or connect to a running one (Ray 2.60's arguments).

    Args:
        address: "ray://HOST:PORT" (or "raggio://") connects through the head's client
            server as a remote driver, with the token in RAGGIO_AUTH_TOKEN;
            "auto" joins the cluster this machine runs (`raggio start --head`),
            "HOST:PORT" joins the one there, "local" starts a private head even so, None
            joins the one from RAGGIO_ADDRESS/RAY_ADDRESS or this machine's current cluster,
            and otherwise starts a private head tied to this process (bound to loopback).
        num_cpus, num_gpus, resources, labels, object_store_memory: the private head's node
            (refused when joining a cluster, as in Ray; so are ``_memory``,
            ``_system_config`` and a JobConfig's ``code_search_path``).
        local_mode: refused, as in Ray 2.60 (it was removed).
        include_dashboard: whether the private head runs the dashboard (None: it does);
            ``init()`` does not wait for it to start.
        dashboard_host: its address (default: loopback only; another host warns that it is
            reachable from the network).
        dashboard_port: its port; None: 8265, or the next free one after it; 0: any free
            one. An explicit port in use fails the start, naming the port.
            (The three are ignored, with a warning, when joining a running cluster.)
        job_config: a ``raggio.job_config.JobConfig``: its runtime_env, namespace and
            metadata, and its default_actor_lifetime for the job's actors.
        configure_logging: False leaves raggio's loggers alone (then ``logging_level`` and
            ``logging_format`` have no effect, as in Ray).
        logging_level, logging_format: the level and format of raggio's own log lines.
        logging_config: refused (structured logging is not supported yet).
        log_to_driver: print worker output here, prefixed with its task and pid (default).
        namespace: the namespace for named actors (a fresh one if None).
        runtime_env: the job's default runtime env (``env_vars``, ``working_dir``,
            ``py_modules``, ``pip``, ``uv``, ``config``, ``excludes``; its local packages
            are uploaded here).
        enable_resource_isolation, system_reserved_cpu, system_reserved_memory: refused
            (raggio does not isolate processes in cgroups).
        ignore_reinit_error: make a second ``init()`` a no-op instead of an error.
        **kwargs: Ray's private keywords. Honoured: ``_node_ip_address``, ``_temp_dir``,
            ``_memory``, ``_system_config`` (Ray's keys that name a raggio setting, or
            raggio's setting names; see ``config.SYSTEM_CONFIG_KEYS``),
            ``_enable_object_reconstruction=True`` (always so), ``_skip_env_hook``,
            ``_metrics_export_port`` (the private head node's Prometheus port). The
            others raise, saying what raggio does instead.

    Raises:
        RuntimeError: raggio is already initialized, ``local_mode=True``, or an unknown
            keyword.
        ValueError: a setting raggio cannot honour, or an invalid value.
    """
    with _init_lock:
        if is_initialized():
            if ignore_reinit_error:
                return RayContext(context.current_core_or_none())
            raise RuntimeError("Maybe you called raggio.init twice by accident? This error "
                               "can be suppressed by passing in 'ignore_reinit_error=True' or "
                               "by calling 'raggio.shutdown()' prior to 'raggio.init()'.")
        settings = init_options.resolve(
            get_config(), num_cpus=num_cpus, num_gpus=num_gpus, resources=resources,
            labels=labels, object_store_memory=object_store_memory, local_mode=local_mode,
            include_dashboard=include_dashboard, dashboard_host=dashboard_host,
            dashboard_port=dashboard_port, job_config=job_config,
            logging_config=logging_config, namespace=namespace, runtime_env=runtime_env,
            enable_resource_isolation=enable_resource_isolation,
            system_reserved_cpu=system_reserved_cpu,
            system_reserved_memory=system_reserved_memory, private=kwargs)
        if configure_logging:
            _configure_logging(logging_level, logging_format)
        if settings.runtime_env is not None:
            check_runtime_env(settings.runtime_env)
        target = address if address is not None else (settings.cfg.address or None)
        if isinstance(target, str) and target.startswith(CLIENT_SCHEMES):
            return _connect_client(target, settings, log_to_driver is not False)
        return _connect(address, settings, log_to_driver is not False)


#: Addresses of a ray:// client server (``raggio start --head``'s --ray-client-server-port).
CLIENT_SCHEMES = ("ray://", "raggio://")


def _connect_client(address: str, settings: init_options.InitSettings,
                    log_to_driver: bool) -> "RayContext":
    """Connect as a remote driver through the head's client server (``raggio/client/``):
    the token is RAGGIO_AUTH_TOKEN's, else that of a head this process started, else this
    machine's current cluster's."""
    init_options.refuse_when_joining(settings)
    cfg = settings.cfg
    current = cluster_file.read(settings.temp_dir)
    token = (cfg.auth_token or cluster_file.known_token(address.partition("://")[2])
             or (cluster_file.read_token(current) if current else "") or "")
    core = context.connect_client(address, cfg=cfg, token=token,
                                  namespace=settings.namespace,
                                  runtime_env=settings.runtime_env, log_to_driver=log_to_driver)
    context.set_core(core)
    logger.info("Connected to raggio cluster at %s (ray:// client).", address)
    return RayContext(core)


def _connect(address: str | None, settings: init_options.InitSettings,
             log_to_driver: bool) -> "RayContext":
    """Start a private head or find the cluster, then start this driver's core worker."""
    cfg = settings.cfg
    cluster = find_cluster(address, cfg, settings.temp_dir)
    if cluster is None:
        node_ip = settings.head.node_ip_address
        logger.debug("no running cluster found: starting a private head on %s", node_ip)
        ready = _start_private_head(cfg, settings.head)
        warning = settings.head.dashboard_warning()
        if warning:
            logger.warning(warning)
    else:
        init_options.refuse_when_joining(settings)
        node_ip = settings.node_ip or local_ip_for(split_address(cluster["gcs_address"])[0])
        ready = dict(cluster, node_address=None)
        logger.debug("joining the cluster at %s as %s", cluster["gcs_address"], node_ip)
    core = CoreWorker(mode=DRIVER, cfg=cfg, gcs_address=ready["gcs_address"],
                      node_address=ready["node_address"], token=ready["token"],
                      worker_id=os.urandom(28), node_ip=node_ip,
                      namespace=settings.namespace or str(uuid.uuid4()),
                      runtime_env=settings.runtime_env, log_to_driver=log_to_driver,
                      job_info=settings.job_info)
    core.session_dir = ready.get("session_dir", "")
    context.set_core(core)
    try:
        core.start(cfg.connect_timeout_s)
        core.dashboard_url = (ready.get("dashboard_url") if cluster is None
                              else _dashboard_url_of(core))
    except BaseException:
        context.set_core(None)
        _stop_head()
        raise
    logger.debug("connected: job %s, node %s, session %s", core.job_id,
                 core.node_id.hex(), core.session_dir)
    # Ray's words, with raggio's name.
    started = "Started a local raggio instance." if cluster is None else (
        "Connected to raggio cluster.")
    if core.dashboard_url:
        logger.info("%s View the dashboard at %s", started, core.dashboard_url)
    else:
        logger.info(started)
    return RayContext(core)


def _dashboard_url_of(core) -> str | None:
    """The joined cluster's dashboard URL, as its head recorded it; None if it runs none."""
    url = core.request("gcs", "kv_get", cluster_file.DASHBOARD_URL_KEY)
    return url.decode() if url else None


def find_cluster(address: str | None, cfg, temp_dir: str) -> dict | None:
    """Where to connect: {"gcs_address", "token", ...}, or None to start a private head."""
    if address == "local":
        return None
    if address is None:
        address = cfg.address or None
    current = cluster_file.read(temp_dir)
    if address is None:
        if not cluster_file.head_running(current):
            return None
        address = "auto"
    if address == "auto":
        if current is None:
            raise ConnectionError(
                "Could not find any running raggio instance on this machine "
                f"({cluster_file.path(temp_dir)} is missing). Start one with "
                "`raggio start --head`, or pass its address: init(address='HOST:PORT').")
        return dict(current, token=cfg.auth_token or cluster_file.read_token(current) or "")
    if address.startswith(("http://", "https://")):
        return _cluster_of_dashboard(address.rstrip("/"), cfg, current)
    address = address.removeprefix("raggio://")
    split_address(address)  # raises ValueError on a malformed address
    token = cfg.auth_token or cluster_file.known_token(address)
    if not token and current is not None and current.get("gcs_address") == address:
        token = cluster_file.read_token(current) or ""
    return {"gcs_address": address, "token": token}


def _cluster_of_dashboard(url: str, cfg, current: dict | None) -> dict:
    """The cluster whose dashboard is at ``url`` (the address Ray's state API and job client
    take): this machine's current cluster if it is that one, else the control store the
    dashboard names, asked with the token in RAGGIO_AUTH_TOKEN."""
    if current is not None and (current.get("dashboard_url") or "").rstrip("/") == url:
        return dict(current, token=cfg.auth_token or cluster_file.read_token(current) or "")
    if not cfg.auth_token:
        raise ConnectionError(
            f"No token for the cluster whose dashboard is at {url}: it is not this machine's "
            "current cluster, so set RAGGIO_AUTH_TOKEN to its token (the head keeps it in "
            "<session dir>/token), or pass its control store's HOST:PORT.")
    import json
    import urllib.error
    import urllib.request
    request = urllib.request.Request(url + "/api/version",
                                     headers={"Authorization": f"Bearer {cfg.auth_token}"})
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as answer:
            gcs_address = json.loads(answer.read()).get("raggio_gcs_address")
    except (OSError, ValueError, urllib.error.URLError) as exc:
        raise ConnectionError(f"Could not ask the dashboard at {url} for its cluster: {exc}. "
                              "Check the URL (`raggio dashboard` prints it) and the token.")
    if not gcs_address:
        raise ConnectionError(f"The dashboard at {url} is not raggio's (its /api/version "
                              "names no raggio control store); pass the cluster's HOST:PORT.")
    return {"gcs_address": gcs_address, "token": cfg.auth_token}


def _start_private_head(cfg, spec: NodeSpec) -> dict:
    global _head
    _head = spec.start_process()
    try:
        return wait_ready(_head, cfg.head_start_timeout_s, "local raggio head")
    except RaySystemError:
        _head = None
        raise


def _stop_head() -> None:
    global _head
    head, _head = _head, None
    if head is None:
        return
    try:
        head.stdin.close()
        head.wait(timeout=10)
    except Exception:
        head.kill()
        head.wait()
    finally:
        head.stdout.close()


def shutdown() -> None:
    """Disconnect this driver and stop the private head, if it started one."""
    with _init_lock:
        core = context.current_core_or_none()
        if core is not None:
            core.shutdown()
            context.set_core(None)
        _stop_head()


atexit.register(shutdown)


class RayContext(dict):
    """What ``init()`` returns: a dict of addresses, usable as a context manager.

    As Ray's, ``dashboard_url`` and the ``webui_url`` key give the dashboard's address
    without its scheme ("127.0.0.1:8265"), or None when the cluster runs no dashboard.
    """

    def __init__(self, core):
        url = core.dashboard_url
        self.dashboard_url = url.partition("://")[2] if url else None
        # "redis_address" is Ray's old name for the control store's address; programs still
        # read it (as ray.init()["redis_address"]).
        super().__init__(address=core.gcs_address, node_id=core.node_id.hex(),
                         session_dir=getattr(core, "session_dir", ""),
                         gcs_address=core.gcs_address, redis_address=core.gcs_address,
                         node_ip_address=core.node_ip, webui_url=self.dashboard_url)
        self.address_info = dict(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        shutdown()

    def disconnect(self):
        shutdown()


def remote(*args, **options):
    """Make a function a remote function, or a class an actor class.

    ``@remote`` alone, or ``@remote(option=value, ...)`` with Ray's options.

    Raises:
        AssertionError: other arguments (Ray's error and message).
        TypeError: applied to something that is neither a function nor a class.
        ValueError, TypeError: an unknown option or a bad value.
    """
    def make(target):
        if inspect_isclass(target):
            return ActorClass._from_class(target, options)
        if inspect.iscoroutinefunction(target):
            raise ValueError("'async def' should not be used for remote tasks. You can wrap "
                             "the async function with `asyncio.run(f())`, or make it a method "
                             "of an async actor.")
        if inspect.isfunction(target):
            return RemoteFunction(target, options)
        raise TypeError("The @ray.remote decorator must be applied to either a function or a "
                        "class.")
    if len(args) == 1 and not options and callable(args[0]):
        return make(args[0])
    if args or not options:
        raise AssertionError(
            "The @ray.remote decorator must be applied either with no arguments and no "
            "parentheses, for example '@ray.remote', or it must be applied using some of the "
            f"arguments in the list {list(dict(TASK_OPTIONS, **ACTOR_OPTIONS))}, for example "
            "'@ray.remote(num_returns=2, resources={\"CustomResource\": 1})'.")
    return make


def inspect_isclass(obj) -> bool:
    return isinstance(obj, type)


def _check_refs(value, what: str, error: type = TypeError) -> tuple[list[ObjectRef], bool]:
    if isinstance(value, ObjectRef):
        return [value], True
    if isinstance(value, (list, tuple)):
        for item in value:
            if not isinstance(item, ObjectRef):
                raise error(f"{what} takes an ObjectRef or a list of ObjectRefs; the list "
                                f"holds a {type(item).__name__}.")
        return list(value), False
    raise error(f"{what} takes an ObjectRef or a list of ObjectRefs, got "
                    f"{type(value).__name__}. Pass the ref returned by .remote() or put().")


def get(object_refs, *, timeout: float | None = None) -> Any:
    """Fetch the value(s) of object refs, waiting up to ``timeout`` seconds.

    Raises:
        GetTimeoutError: not ready within ``timeout``.
        RayTaskError: the task raised (also an instance of the user's exception type).
    """
    try:
        refs, single = _check_refs(object_refs, "get", ValueError)  # Ray raises ValueError here
    except ValueError:
        if isinstance(object_refs, ObjectRefGenerator):
            return object_refs  # as Ray's get does
        raise
    if timeout is not None and timeout < 0:
        raise ValueError(f"timeout must be non-negative, got {timeout}")
    values = context.get_core().get(refs, timeout)
    return values[0] if single else values


def put(value: Any, *, _owner=None) -> ObjectRef:
    """Store a value in the object store and return its ref."""
    return context.get_core().put(value)


def wait(object_refs: list, *, num_returns: int = 1, timeout: float | None = None,
         fetch_local: bool = True) -> tuple[list, list]:
    """Return (ready, not_ready) once ``num_returns`` refs are ready or ``timeout`` passes."""
    if isinstance(object_refs, (ObjectRef, ObjectRefGenerator)):
        raise TypeError("wait() expected a list of ray.ObjectRef or ray.ObjectRefGenerator, "
                        f"got a single {type(object_refs).__name__}")
    try:
        refs, _ = _check_refs(list(object_refs), "wait")
    except TypeError:
        refs = list(object_refs)
        if not all(isinstance(item, (ObjectRef, ObjectRefGenerator)) for item in refs):
            raise
        return _wait_with_generators(refs, num_returns, timeout, fetch_local)
    if len({ref._id for ref in refs}) != len(refs):
        raise ValueError("Wait requires a list of unique object refs.")
    if not refs:
        return [], []  # as Ray: nothing to wait for
    if num_returns <= 0:
        raise ValueError("Invalid number of objects to return %d." % num_returns)
    if num_returns > len(refs):
        raise ValueError(f"num_returns ({num_returns}) cannot be greater than the number of "
                         f"refs provided ({len(refs)})")
    if timeout is not None and timeout < 0:
        raise ValueError(f"timeout must be non-negative, got {timeout}")
    return context.get_core().wait(refs, num_returns, timeout, fetch_local)


def _wait_with_generators(waitables: list, num_returns: int, timeout: float | None,
                          fetch_local: bool) -> tuple[list, list]:
    """``wait`` on a list holding generators: one is ready when ``next()`` would not block."""
    if len(set(map(id, waitables))) != len(waitables):
        raise ValueError("Wait requires a list of unique ray_waitables.")
    if num_returns <= 0 or num_returns > len(waitables):
        raise ValueError(f"num_returns must be between 1 and the number of ray_waitables "
                         f"({len(waitables)}), got {num_returns}.")
    if timeout is not None and timeout < 0:
        raise ValueError(f"timeout must be non-negative, got {timeout}")
    core = context.get_core()
    if core.is_client:  # its generators are the session's: the session waits on them
        return core.wait(waitables, num_returns, timeout, fetch_local)
    return generators.wait(core, waitables, num_returns, timeout, fetch_local)


def cancel(object_ref: ObjectRef, *, force: bool = False, recursive: bool = True) -> None:
    """Cancel the task that makes ``object_ref``; ``get`` then raises TaskCancelledError.

    A task still waiting for its arguments or a worker never runs. A running task is
    interrupted (``force=True`` ends its worker); with ``recursive`` the tasks and actor
    calls it submitted are cancelled too. An actor call not started yet never runs; a
    running call of an async actor is cancelled, one of a plain or threaded actor runs to
    the end. A finished task is left alone. A ref owned by another process is cancelled
    by its owner.

    Raises:
        TypeError: ``object_ref`` is not an ObjectRef.
        ValueError: ``force=True`` for an actor call (use ``kill`` on the actor).
    """
    if isinstance(object_ref, ObjectRefGenerator):
        object_ref = object_ref._generator_ref
    if not isinstance(object_ref, ObjectRef):
        raise TypeError("ray.cancel() only supported for object refs. For actors, try "
                        f"ray.kill(). Got: {type(object_ref)}.")
    core = context.get_core()
    core.run_sync(core.cancel(object_ref, force, recursive))


def kill(actor: ActorHandle, *, no_restart: bool = True) -> None:
    """End an actor now; with ``no_restart=False`` it may restart."""
    if not isinstance(actor, ActorHandle):
        raise ValueError(f"kill() takes an actor handle, got {type(actor).__name__}")
    core = context.get_core()
    core.request("gcs", "kill_actor", {"actor_id": actor._actor_id,
                                               "no_restart": no_restart})


def list_named_actors(all_namespaces: bool = False) -> list:
    """The live named actors: their names in this job's namespace, or with
    ``all_namespaces`` a ``{"name", "namespace"}`` dict for each in the cluster."""
    core = context.get_core()
    found = core.request("gcs", "list_named_actors", {"namespace": core.namespace,
                                                      "all_namespaces": all_namespaces})
    if all_namespaces:
        return [{"name": entry["name"], "namespace": entry["namespace"]} for entry in found]
    return [entry["name"] for entry in found]


def get_node_ip_address(address: str = "8.8.8.8:53") -> str:
    """The IP address of this process's node; before ``init()``, this machine's address
    on the route to ``address`` (nothing is sent there)."""
    core = context.current_core_or_none()
    if core is not None:
        return core.node_ip
    return local_ip_for(split_address(address)[0])


def get_node_instance_id() -> str:
    """The cloud instance id of this process's node, as its launcher gave it in
    ``RAY_CLOUD_INSTANCE_ID``; "" elsewhere (a laptop, ``raggio start`` by hand)."""
    return get_config().cloud_instance_id


def nodes() -> list[dict]:
    """One dict per node, with Ray's keys."""
    core = context.get_core()
    out = []
    for node in core.request("gcs", "get_nodes", None):
        out.append({
            "NodeID": node["node_id"].hex(), "Alive": node["state"] == "ALIVE",
            "NodeManagerAddress": node["node_ip"], "NodeManagerHostname": node["hostname"],
            "NodeManagerPort": int(node["address"].rpartition(":")[2]),
            "ObjectStoreSocketName": node["arena_path"], "Resources": node["resources"],
            "Labels": node.get("labels", {}), "alive": node["state"] == "ALIVE",
            "NodeName": node["node_ip"], "IsHead": node["is_head"],
            "MetricsExportPort": node.get("metrics_export_port", 0),
        })
    return out


def _resources(key: str) -> dict:
    core = context.get_core()
    view = core.request("gcs", "cluster_resources", None)
    return view[key]


def cluster_resources() -> dict:
    """Total resources of the live nodes."""
    return _resources("total")


def available_resources() -> dict:
    """Resources not in use right now."""
    return _resources("available")


def get_gpu_ids() -> list[int]:
    core = context.get_core()
    return list(getattr(core.current, "gpu_ids", None) or [])
