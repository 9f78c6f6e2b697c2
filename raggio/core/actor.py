"""``@remote`` classes, actor handles and their methods."""

from __future__ import annotations

import asyncio
import functools
import inspect
from typing import NoReturn

from raggio.core import context
from raggio.core import scheduling_strategies
from raggio.core.actor_handles import live_handles
from raggio.core.options import (METHOD_OPTIONS, actor_options, check_namespace, method_options,
                                 resources_of)
from raggio.core.remote_function import Exporter, Submittable
from raggio.common.task_records import task_info
from raggio.core.task_spec import (call_shape, check_call, encode_args,
                                   encode_retry_exceptions, return_ids, signature_of,
                                   track_submission)
from raggio.core.serialization import note_contained_ref
from raggio.exceptions import (ActorClassInheritanceException, ActorExitRequested,
                               AsyncioActorExit)


def method(*args, **options):
    """Decorator for actor methods: ``@raggio.method`` or ``@raggio.method(num_returns=2)``.

    Raises:
        AssertionError: positional arguments or an unknown keyword (Ray's errors and
            messages).
        ValueError, TypeError: a bad value.
    """
    def decorate(fn):
        fn.__raggio_method_options__ = options
        return fn
    if len(args) == 1 and callable(args[0]) and not options:
        return decorate(args[0])
    valid = list(METHOD_OPTIONS)
    if args or not options:
        raise AssertionError(
            "The @ray.method decorator must be applied using no arguments or at least one of "
            f"the arguments in the list {valid}, for example '@ray.method(num_returns=2)'.")
    for key in options:
        if key not in METHOD_OPTIONS:
            raise AssertionError(f"Unexpected keyword argument to @ray.method: '{key}'. The "
                                 f"supported keyword arguments are {valid}")
    method_options(options)
    return decorate


class ActorClass(Submittable):
    """What ``@raggio.remote`` makes of a class.

    As in Ray, the object is an instance of a class made from both ActorClass and the
    user's class (``ActorClass(Name)``), so the user's class stays visible through it:
    class and static attributes, class and static methods, the methods themselves (with
    their names, docs and signatures), ``dir()`` and ``isinstance``. Only ``remote``,
    ``options`` and ``bind`` are its own. Subclassing it raises
    ActorClassInheritanceException; calling it raises TypeError.
    """

    def __init__(self, *args, **kwargs):
        """Reached only by a class statement naming an actor class as a base (refused, as
        in Ray), or by a class method of the user's class calling ``cls(...)`` (which, as in
        Ray, makes a plain local instance). ``_from_class`` builds actor classes."""
        if len(args) == 3 and isinstance(args[1], tuple):
            for base in args[1]:
                if isinstance(base, ActorClass):
                    raise ActorClassInheritanceException(
                        f"Attempted to define subclass '{args[0]}' of actor class "
                        f"'{base.__name__}'. Inheriting from actor classes is not currently "
                        "supported. You can instead inherit from a non-actor base class and "
                        "make the derived class an actor class (with @ray.remote).")
        super().__init__(*args, **kwargs)

    @classmethod
    def _from_class(cls, user_class: type, options: dict) -> "ActorClass":
        """The actor class of ``user_class`` with ``options`` (what ``@remote`` returns).

        Raises:
            ValueError, TypeError: bad options, or a method without ``self``.
        """
        self = _new_actor_class_object(user_class)
        self._cls = user_class
        self._set_options(actor_options({}, options, in_options=False))
        self._exporter = Exporter(user_class, "actor")
        self._init_shape = _constructor_shape(user_class)
        self._methods = _method_table(user_class)
        self.__name__ = user_class.__name__
        self.__qualname__ = user_class.__qualname__
        self.__doc__ = user_class.__doc__
        return self

    def __call__(self, *args, **kwargs):
        raise TypeError(
            f"Actors cannot be instantiated directly. Instead of '{self.__name__}()', use "
            f"'{self.__name__}.remote()'.")

    # The user's class may define these for its own instances; the actor class keeps
    # plain object behaviour (hashable, printable, picklable with its attributes).
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"ActorClass({self.__qualname__})"

    def __reduce_ex__(self, protocol):
        return _new_actor_class_object, (self._cls,), self.__dict__

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def bind(self, *args, **kwargs):
        raise NotImplementedError("DAG building with .bind() is not supported by raggio yet.")

    def options(self, **options) -> "ActorClass":
        """This class with some options changed, for the actors made through it.

        Raises:
            ValueError, TypeError: an unknown option or a bad value, as in Ray.
        """
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._set_options(actor_options(self._options, options, in_options=True))
        return clone

    def remote(self, *args, **kwargs) -> "ActorHandle":
        fewest, most, parameters = self._init_shape
        if kwargs or not fewest <= len(args) <= most:
            check_call(parameters, args, kwargs)
        core = context.get_core()
        if core.is_client:
            return core.create_actor(self, args, kwargs)
        options = self._options
        namespace = options.get("namespace") or core.namespace
        name = options.get("name")
        if name and options.get("get_if_exists"):
            try:
                return get_actor(name, namespace=namespace)
            except ValueError:
                pass
        # First: packing may raise (a package too large) before anything is held for the call.
        runtime_env = core.runtime_envs.for_call(options.get("runtime_env"))
        class_id = self._exporter.ensure_exported(core)
        actor_id = core.ids.task_id_bytes()[-16:]
        encoded, kwarg_names, held = encode_args(core, args, kwargs, f"{self.__name__}.__init__")
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
            "runtime_env": runtime_env,
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


def _new_actor_class_object(user_class: type) -> ActorClass:
    """An empty instance of ``ActorClass(<user_class>)``, a class deriving from ActorClass
    then ``user_class``; a plain ActorClass where the user's class cannot be such a base
    (a builtin base, a conflicting metaclass or layout, abstract methods)."""
    name = f"ActorClass({user_class.__name__})"
    namespace = {"__module__": user_class.__module__, "__qualname__": name,
                 "__doc__": user_class.__doc__, **_static_method_proxies(user_class)}
    try:
        return object.__new__(type(user_class)(name, (ActorClass, user_class), namespace))
    except TypeError:
        return object.__new__(ActorClass)


def _static_method_proxies(user_class: type) -> dict:
    """A stand-in for each static method of ``user_class``, for its actor class to show.

    cloudpickle pickles a function by reference when its module and qualified name
    (``module.Counter.double``) lead back to it. Through the actor class, which the module
    now holds under the class's name, a static method would lead back to itself, and
    workers that cannot import the module could not load the class. A stand-in (same
    name, doc and signature, ``__wrapped__`` the original) keeps the original by value.
    """
    proxies, seen = {}, set()
    for klass in user_class.__mro__:
        for name, attr in vars(klass).items():
            if name not in seen and isinstance(attr, staticmethod):
                proxies[name] = staticmethod(_forward(attr.__func__))
            seen.add(name)
    return proxies


def _forward(fn):
    @functools.wraps(fn)
    def forward(*args, **kwargs):
        return fn(*args, **kwargs)
    return forward


def _constructor_shape(cls: type) -> tuple:
    """The call shape of ``cls.__init__``; a class without one takes no arguments, as in Ray."""
    if cls.__init__ is object.__init__:
        return 0, 0, []
    return call_shape(cls.__init__, skip_first=True)


def _builtin_method_table() -> dict[str, list]:
    """The methods every actor has, as in Ray, in ``_method_table``'s form. The executor runs
    them (``task_executor._ACTOR_BUILTINS``); these stand-ins give their signatures."""
    def __ray_ready__(self):
        """True once the actor was constructed."""

    def __ray_terminate__(self):
        """End the actor on purpose after the calls before this one, as ``exit_actor()``."""

    def __ray_call__(self, fn, *args, **kwargs):
        """Run ``fn(actor, *args, **kwargs)`` in the actor and return its result."""

    return {fn.__name__: [1, *call_shape(fn, skip_first=True), inspect.getdoc(fn)]
            for fn in (__ray_ready__, __ray_terminate__, __ray_call__)}


def _method_table(cls: type) -> dict[str, list]:
    """``{name: [num_returns, fewest, most, parameters, doc]}`` for each method a handle
    offers: ``fewest, most, parameters`` is the method's call shape (see
    ``task_spec.call_shape``), ``doc`` its docstring (for ``handle.method.__doc__``).

    Plain values only: the table travels with the actor's spec and its handles.
    """
    table = dict(_BUILTIN_METHODS)
    for name, fn in inspect.getmembers(
            cls, lambda member: inspect.isfunction(member) or inspect.ismethod(member)):
        if name.startswith("__") and name != "__call__":
            continue
        # A static method takes no self; a class method is already bound to the class.
        unbound = not (inspect.ismethod(fn)
                       or isinstance(inspect.getattr_static(cls, name), staticmethod))
        generator = inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn)
        default = "streaming" if generator else 1  # Ray's default for generators
        num_returns = getattr(fn, "__raggio_method_options__", {}).get("num_returns", default)
        table[name] = [num_returns, *call_shape(fn, skip_first=unbound), inspect.getdoc(fn)]
    return table


_BUILTIN_METHODS = _builtin_method_table()

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
        live_handles.add(self)

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
        return ActorMethod(self, name, methods[name])

    def __dir__(self) -> list[str]:
        return sorted(self._methods)  # the actor's methods, for autocompletion (as in Ray)

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
        from raggio.common.ids import ActorID
        return ActorID(self._actor_id)

    def _submit(self, method_name: str, args: tuple, kwargs: dict, options: dict):
        core = context.get_core()
        if core.is_client:
            return core.submit_actor_call(self, method_name, args, kwargs, options)
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
        return refs or None  # Ray returns None for num_returns=0


def _rebuild_handle(actor_id: bytes, class_name: str, methods: dict, max_task_retries: int,
                    token: bytes | None) -> ActorHandle:
    """Unpickle a handle: a copy of a counted handle is counted here too."""
    return ActorHandle(actor_id, class_name, methods, max_task_retries,
                       counted=token is not None, transit_token=token)


class ActorMethod(Submittable):
    """``handle.method``: call with ``.remote()``, tune with ``.options()``.

    Shows the user's method as Ray does: ``__name__``, ``__doc__`` and its signature
    without ``self`` (``inspect.signature(handle.method)``). They are properties, computed
    when read: an ActorMethod is made for every call. (No ``__getattr__`` here: defining
    one slows every attribute read of the class, measured at +0.3-0.8 us per call.)
    """

    def __init__(self, handle: ActorHandle, name: str, entry: list, options: dict | None = None):
        self._handle = handle
        self._name = name
        self._entry = entry  #: the method's row of ``_method_table``
        self._options = {"num_returns": entry[0]} if options is None else options

    @property
    def __name__(self) -> str:
        return self._name

    @property
    def __doc__(self) -> str | None:
        return self._entry[4] if len(self._entry) > 4 else None

    @property
    def __signature__(self) -> inspect.Signature | None:
        return signature_of(self._entry[3])

    def __repr__(self) -> str:
        return f"ActorMethod({self._handle._class_name}.{self._name})"

    def __call__(self, *args, **kwargs):
        raise TypeError(f"Actor methods cannot be called directly. Instead of running "
                        f"'object.{self._name}()', try 'object.{self._name}.remote()'.")

    def remote(self, *args, **kwargs):
        entry = self._entry
        if kwargs or not entry[1] <= len(args) <= entry[2]:
            check_call(entry[3], args, kwargs)
        return self._handle._submit(self._name, args, kwargs, self._options)

    def options(self, **options) -> "ActorMethod":
        method_options(options)
        return ActorMethod(self._handle, self._name, self._entry, dict(self._options, **options))


def get_actor(name: str, namespace: str | None = None) -> ActorHandle:
    """The handle of the named actor ``name`` in ``namespace`` (default: this job's)."""
    if not isinstance(name, str) or not name:
        raise ValueError("Please supply a non-empty value to get_actor")
    check_namespace(namespace)
    core = context.get_core()
    if core.is_client:
        return core.get_actor(name, namespace)
    namespace = namespace or core.namespace
    found = core.request("gcs", "get_named_actor", {"name": name, "namespace": namespace})
    if found is None:
        raise ValueError(f"Failed to look up actor with name '{name}'. This could because "
                         "1. You are trying to look up a named actor you didn't create. 2. The "
                         "named actor died. 3. You did not use a namespace matching the "
                         f"namespace of the actor (looked in namespace {namespace!r}).")
    spec = found["spec"]
    return ActorHandle(spec["actor_id"], spec["class_name"], spec["methods"],
                       spec["max_task_retries"])
