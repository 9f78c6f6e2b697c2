"""``@remote`` classes, actor handles and their methods."""

from __future__ import annotations

import asyncio
import inspect
import weakref
from typing import NoReturn

from raggio.core import context
from raggio.util import scheduling_strategies
from raggio.core.options import ACTOR_OPTIONS, METHOD_OPTIONS, resources_of, validate
from raggio.core.remote_function import Exporter
from raggio.core.task_events import task_info
from raggio.core.task_spec import (encode_args, encode_retry_exceptions, return_ids,
                                   track_submission)
from raggio.core.serialization import note_contained_ref
from raggio.exceptions import ActorExitRequested, AsyncioActorExit


def method(*args, **options):
    """Decorator for actor methods: ``@raggio.method(num_returns=2)``."""
    validate(options, METHOD_OPTIONS, "actor methods")

    def decorate(fn):
        fn.__raggio_method_options__ = options
        return fn
    if len(args) == 1 and callable(args[0]) and not options:
        return decorate(args[0])
    return decorate


class ActorClass:
    """What ``@raggio.remote`` makes of a class."""

    def __init__(self, cls: type, options: dict):
        self._cls = cls
        self._options = validate(dict(options), ACTOR_OPTIONS, "actors")
        self._exporter = Exporter(cls)
        self.__name__ = cls.__name__
        self.__qualname__ = cls.__qualname__
        self.__doc__ = cls.__doc__

    def __call__(self, *args, **kwargs):
        raise TypeError(
            f"Actors cannot be instantiated directly. Instead of '{self.__name__}()', use "
            f"'{self.__name__}.remote()'.")

    def options(self, **options) -> "ActorClass":
        clone = ActorClass.__new__(ActorClass)
        clone.__dict__.update(self.__dict__)
        clone._options = dict(self._options, **validate(options, ACTOR_OPTIONS, "actors"))
        return clone

    def remote(self, *args, **kwargs) -> "ActorHandle":
        core = context.get_core()
        options = self._options
        namespace = options.get("namespace") or core.namespace
        name = options.get("name")
        if name and options.get("get_if_exists"):
            from raggio.core.api import get_actor
            try:
                return get_actor(name, namespace=namespace)
            except ValueError:
                pass
        class_id = self._exporter.ensure_exported(core)
        actor_id = core.ids.task_id_bytes()[-16:]
        encoded, kwarg_names, held = encode_args(core, args, kwargs, f"{self.__name__}.__init__")
        runtime_env = options.get("runtime_env") or core.job_runtime_env or {}
        methods = _method_table(self._cls)
        resources, strategy, capture = scheduling_strategies.resolve(
            options.get("scheduling_strategy"), resources_of(options, 0.0),
            getattr(core.current, "placement_group", None))
        spec = {
            "actor_id": actor_id, "class_id": class_id, "class_name": self.__name__,
            "args": encoded, "kwarg_names": kwarg_names, "job_id": core.job_id,
            "resources": resources,
            "max_restarts": options.get("max_restarts", 0),
            "max_task_retries": options.get("max_task_retries", 0),
            "max_concurrency": options.get("max_concurrency"),
            "name": name, "namespace": namespace, "lifetime": options.get("lifetime"),
            "runtime_env": {"env_vars": dict(runtime_env.get("env_vars") or {})},
            "owner_worker_id": core.worker_id, "owner_address": core.address,
            "methods": methods,
            "strategy": strategy, "placement_group": capture,
        }
        core.request("gcs", "create_actor", spec)
        counted = spec["lifetime"] != "detached"
        if counted:
            core.actor_handles.created(actor_id)
        handle = ActorHandle(actor_id, self.__name__, methods, spec["max_task_retries"],
                             counted=counted)
        handle._creation_refs = held  # keeps __init__'s arguments alive with the handle
        return handle


#: Methods every actor has, as in Ray (run by the executor, not the user's class).
_BUILTIN_METHODS = ("__ray_ready__", "__ray_terminate__", "__ray_call__")


def exit_actor() -> NoReturn:
    """End the current actor on purpose, from inside one of its methods, as Ray's.

    The actor is not restarted (whatever ``max_restarts`` says); its ``atexit``
    handlers run; calls to it then fail with ``ActorDiedError`` saying it exited on
    purpose. In an async actor this raises ``AsyncioActorExit``, elsewhere a
    ``SystemExit``: let it propagate.

    Raises:
        TypeError: called outside an actor (in a driver or a plain task).
    """
    core = context.current_core_or_none()
    if core is None or core.mode != "worker" or not getattr(core, "actor_id", None):
        mode = "a driver" if core is not None and core.mode == "driver" else "a task"
        raise TypeError(f"exit_actor API is called on a non-actor worker ({mode}). Call this "
                        "API inside an actor method if you'd like to exit the actor "
                        "gracefully.")
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise ActorExitRequested() from None
    raise AsyncioActorExit()


def _method_table(cls: type) -> dict:
    table = dict.fromkeys(_BUILTIN_METHODS, 1)
    for name, fn in inspect.getmembers(cls, callable):
        if name.startswith("__") and name != "__call__":
            continue
        default = ("streaming" if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn)
                   else 1)  # Ray's default for generators
        table[name] = getattr(fn, "__raggio_method_options__", {}).get("num_returns", default)
    return table


#: The handles alive in this process (one per actor: handles compare by actor id), for the
#: ACTOR_HANDLE references of ``raggio memory``.
_live_handles: weakref.WeakSet = weakref.WeakSet()


def live_actor_ids() -> list[bytes]:
    return [handle._actor_id for handle in list(_live_handles)]


class ActorHandle:
    """A handle to an actor; picklable, so it can be passed to tasks and actors."""

    def __init__(self, actor_id: bytes, class_name: str, methods: dict, max_task_retries: int,
                 *, counted: bool = False, transit_token: bytes | None = None):
        self._actor_id = actor_id
        self._class_name = class_name
        self._methods = methods
        self._max_task_retries = max_task_retries
        self._seq = 0
        self._event_infos: dict[str, tuple] = {}  #: method -> (core, its task-history info)
        #: The core worker this handle is counted in (it keeps the actor alive), or None
        #: for a weak handle (``get_actor``, ``current_actor``); see ``actor_handles``.
        self._counted_in = None
        if counted:
            core = context.current_core_or_none()
            if core is not None:
                core.actor_handles.acquire(actor_id, transit_token)
                self._counted_in = core
        _live_handles.add(self)

    def __del__(self):
        core = self.__dict__.get("_counted_in")
        if core is not None:
            try:
                core.actor_handles.release(self._actor_id)
            except Exception:  # interpreter shutdown
                pass

    def __getattr__(self, name: str) -> "ActorMethod":
        methods = self.__dict__.get("_methods")
        if methods is None or name not in methods:
            raise AttributeError(f"'{self.__dict__.get('_class_name')}' actor has no method "
                                 f"'{name}'")
        return ActorMethod(self, name, {"num_returns": methods[name]})

    def __repr__(self):
        return f"Actor({self._class_name}, {self._actor_id.hex()})"

    def __hash__(self):
        return hash(self._actor_id)

    def __eq__(self, other):
        return isinstance(other, ActorHandle) and other._actor_id == self._actor_id

    def __reduce__(self):
        note_contained_ref(self)
        core = self._counted_in
        token = None if core is None else core.actor_handles.in_transit(self._actor_id)
        return _rebuild_handle, (self._actor_id, self._class_name, self._methods,
                                 self._max_task_retries, token)

    @property
    def _ray_actor_id(self):
        from raggio.core.ids import ActorID
        return ActorID(self._actor_id)

    def _submit(self, method_name: str, args: tuple, kwargs: dict, options: dict):
        core = context.get_core()
        num_returns = options.get("num_returns", 1)
        count = num_returns if num_returns.__class__ is int else 1  # a generator: 1 return
        task_id = core.ids.task_id_bytes()
        name = f"{self._class_name}.{method_name}"
        encoded, kwarg_names, held = encode_args(core, args, kwargs, name)
        ids, refs = return_ids(core, task_id, count, "actor call")
        self._seq += 1
        spec = {
            "task_id": task_id, "actor_id": self._actor_id, "method": method_name, "name": name,
            "args": encoded, "kwarg_names": kwarg_names, "return_ids": ids,
            "num_returns": num_returns, "job_id": core.job_id, "seq": self._seq,
            "namespace": core.namespace,
            "retries_left": options.get("max_task_retries", self._max_task_retries),
            "retry_exceptions": encode_retry_exceptions(options.get("retry_exceptions", False)),
        }
        info_id = self._event_infos.get(method_name)
        if info_id is None or info_id[0] is not core:
            info_id = self._event_infos[method_name] = (core, core.task_events.info_id(
                (self._actor_id, method_name, core.job_id),
                lambda: task_info(name, name, "ACTOR_TASK", core.job_id, self._actor_id)))
        info_id = info_id[1]
        if count is not num_returns:
            refs = core.generators.open(spec, refs[0], options)
        track_submission(core, spec, held, info_id)
        core.call_soon(core.actor_submitter.submit, spec)
        if num_returns == 1:
            return refs[0]
        return refs


def _rebuild_handle(actor_id: bytes, class_name: str, methods: dict, max_task_retries: int,
                    token: bytes | None) -> ActorHandle:
    """Unpickle a handle: a copy of a counted handle is counted here too."""
    return ActorHandle(actor_id, class_name, methods, max_task_retries,
                       counted=token is not None, transit_token=token)


class ActorMethod:
    """``handle.method``: call with ``.remote()``, tune with ``.options()``."""

    def __init__(self, handle: ActorHandle, name: str, options: dict):
        self._handle = handle
        self._name = name
        self._options = options

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Actor methods cannot be called directly. Instead of running "
                        f"'object.{self._name}()', try 'object.{self._name}.remote()'.")

    def remote(self, *args, **kwargs):
        return self._handle._submit(self._name, args, kwargs, self._options)

    def options(self, **options) -> "ActorMethod":
        validate(options, METHOD_OPTIONS, "actor methods")
        return ActorMethod(self._handle, self._name, dict(self._options, **options))
