"""``@remote`` classes, actor handles and their methods."""

from __future__ import annotations

import inspect
import weakref

from raggio.core import context
from raggio.util import scheduling_strategies
from raggio.core.options import actor_options, method_options, resources_of
from raggio.core.remote_function import Exporter
from raggio.core.task_events import task_info
from raggio.core.task_spec import (call_shape, check_call, encode_args,
                                   encode_retry_exceptions, return_ids, track_submission)
from raggio.core.serialization import note_contained_ref


def method(*args, **options):
    """Decorator for actor methods: ``@raggio.method(num_returns=2)``."""
    method_options(options)

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
        self._set_options(actor_options({}, options, in_options=False))
        self._exporter = Exporter(cls, "actor")
        self._init_shape = _constructor_shape(cls)
        self._methods = _method_table(cls)
        self.__name__ = cls.__name__
        self.__qualname__ = cls.__qualname__
        self.__doc__ = cls.__doc__

    def __call__(self, *args, **kwargs):
        raise TypeError(
            f"Actors cannot be instantiated directly. Instead of '{self.__name__}()', use "
            f"'{self.__name__}.remote()'.")

    def _set_options(self, options: dict) -> None:
        self._options = options
        self._labels = scheduling_strategies.label_constraints(
            options.get("scheduling_strategy"), options.get("label_selector"),
            options.get("fallback_strategy"))

    def options(self, **options) -> "ActorClass":
        """This class with some options changed, for the actors made through it.

        Raises:
            ValueError, TypeError: an unknown option or a bad value, as in Ray.
        """
        clone = ActorClass.__new__(ActorClass)
        clone.__dict__.update(self.__dict__)
        clone._set_options(actor_options(self._options, options, in_options=True))
        return clone

    def remote(self, *args, **kwargs) -> "ActorHandle":
        fewest, most, parameters = self._init_shape
        if kwargs or not fewest <= len(args) <= most:
            check_call(parameters, args, kwargs)
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
        methods = self._methods
        resources, strategy, capture = scheduling_strategies.resolve(
            options.get("scheduling_strategy"), resources_of(options, 0.0),
            getattr(core.current, "placement_group", None), self._labels, self.__name__)
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
        handle = ActorHandle(actor_id, self.__name__, methods, spec["max_task_retries"])
        handle._creation_refs = held  # keeps __init__'s arguments alive with the handle
        return handle


def _constructor_shape(cls: type) -> tuple:
    """The call shape of ``cls.__init__``; a class without one takes no arguments, as in Ray."""
    if cls.__init__ is object.__init__:
        return 0, 0, []
    return call_shape(cls.__init__, skip_first=True)


def _method_table(cls: type) -> dict[str, list]:
    """``{name: [num_returns, fewest, most, parameters]}`` for each method a handle offers
    (the last three are the method's call shape, see ``task_spec.call_shape``).

    Plain values only: the table travels with the actor's spec and its handles.
    """
    table = {}
    for name, fn in inspect.getmembers(cls, lambda m: inspect.isfunction(m) or inspect.ismethod(m)):
        if name.startswith("__") and name != "__call__":
            continue
        # A static method takes no self; a class method is already bound to the class.
        unbound = not (inspect.ismethod(fn)
                       or isinstance(inspect.getattr_static(cls, name), staticmethod))
        num_returns = getattr(fn, "__raggio_method_options__", {}).get("num_returns", 1)
        table[name] = [num_returns, *call_shape(fn, skip_first=unbound)]
    return table


#: The handles alive in this process (one per actor: handles compare by actor id), for the
#: ACTOR_HANDLE references of ``raggio memory``.
_live_handles: weakref.WeakSet = weakref.WeakSet()


def live_actor_ids() -> list[bytes]:
    return [handle._actor_id for handle in list(_live_handles)]


class ActorHandle:
    """A handle to an actor; picklable, so it can be passed to tasks and actors."""

    def __init__(self, actor_id: bytes, class_name: str, methods: dict, max_task_retries: int):
        self._actor_id = actor_id
        self._class_name = class_name
        self._methods = methods
        self._max_task_retries = max_task_retries
        self._seq = 0
        self._event_infos: dict[str, tuple] = {}  #: method -> (core, its task-history info)
        _live_handles.add(self)

    def __getattr__(self, name: str) -> "ActorMethod":
        methods = self.__dict__.get("_methods")
        if methods is None or name not in methods:
            raise AttributeError(f"'{self.__dict__.get('_class_name')}' actor has no method "
                                 f"'{name}'")
        return ActorMethod(self, name, methods[name])

    def __repr__(self):
        return f"Actor({self._class_name}, {self._actor_id.hex()})"

    def __hash__(self):
        return hash(self._actor_id)

    def __eq__(self, other):
        return isinstance(other, ActorHandle) and other._actor_id == self._actor_id

    def __reduce__(self):
        note_contained_ref(self)
        return ActorHandle, (self._actor_id, self._class_name, self._methods,
                             self._max_task_retries)

    @property
    def _ray_actor_id(self):
        from raggio.core.ids import ActorID
        return ActorID(self._actor_id)

    def _submit(self, method_name: str, args: tuple, kwargs: dict, options: dict):
        core = context.get_core()
        num_returns = options.get("num_returns", 1)
        task_id = core.ids.task_id_bytes()
        name = f"{self._class_name}.{method_name}"
        encoded, kwarg_names, held = encode_args(core, args, kwargs, name)
        ids, refs = return_ids(core, task_id, num_returns, "actor call")
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
        track_submission(core, spec, held, info_id)
        core.call_soon(core.actor_submitter.submit, spec)
        if num_returns == 1:
            return refs[0]
        return refs


class ActorMethod:
    """``handle.method``: call with ``.remote()``, tune with ``.options()``."""

    def __init__(self, handle: ActorHandle, name: str, entry: list, options: dict | None = None):
        self._handle = handle
        self._name = name
        self._entry = entry  #: the method's row of ``_method_table``
        self._options = {"num_returns": entry[0]} if options is None else options

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Actor methods cannot be called directly. Instead of running "
                        f"'object.{self._name}()', try 'object.{self._name}.remote()'.")

    def remote(self, *args, **kwargs):
        _, fewest, most, parameters = self._entry
        if kwargs or not fewest <= len(args) <= most:
            check_call(parameters, args, kwargs)
        return self._handle._submit(self._name, args, kwargs, self._options)

    def options(self, **options) -> "ActorMethod":
        method_options(options)
        return ActorMethod(self._handle, self._name, self._entry, dict(self._options, **options))
