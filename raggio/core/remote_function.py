"""``@remote`` functions: options, export to the control store, submission."""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import threading

from raggio.core import context
from raggio.core import scheduling_strategies
from raggio.core.options import resources_of, task_options
from raggio.core.serialization import dumps_function
from raggio.common.task_records import task_info
from raggio.core.task_spec import (call_shape, check_call, encode_args,
                                   encode_retry_exceptions, return_ids, track_submission)

DEFAULT_MAX_RETRIES = 3

logger = logging.getLogger(__name__)


class Exporter:
    """Pickles a function or class once and stores it in the control store's KV.

    As in Ray, a pickle past ``function_size_warn_threshold_bytes`` (10 MB) is warned
    about and one past ``function_size_error_threshold_bytes`` (100 MB) refused: such a
    size means the definition captured a large object.
    """

    def __init__(self, obj, kind: str = "remote function"):
        self._obj = obj
        self._kind = kind  #: "remote function" or "actor", for the size messages
        self._lock = threading.Lock()
        self._exported_to = None  #: the core worker it was exported through
        self.function_id = b""

    def __getstate__(self):
        return {"obj": self._obj}  # a lock and a core worker do not travel

    def __setstate__(self, state):
        self.__init__(state["obj"])

    def _check_size(self, blob: bytes, cfg) -> None:
        size = len(blob)
        if size <= cfg.function_size_warn_threshold_bytes:
            return
        name = getattr(self._obj, "__name__", repr(self._obj))
        advice = ("Check that its definition is not implicitly capturing a large array or "
                  "other object in scope. Tip: use ray.put() to put large objects in the Ray "
                  "object store.")
        if size < cfg.function_size_error_threshold_bytes:
            logger.warning("Warning: The %s %s is very large (%d MiB). %s", self._kind, name,
                           size // 2**20, advice)
            return
        raise ValueError(
            f"The {self._kind} {name} is too large ({size // 2**20} MiB > "
            f"FUNCTION_SIZE_ERROR_THRESHOLD={cfg.function_size_error_threshold_bytes // 2**20}"
            f" MiB). {advice}")

    def ensure_exported(self, core) -> bytes:
        if self._exported_to is core:
            return self.function_id
        with self._lock:
            if self._exported_to is not core:
                blob = dumps_function(self._obj)
                self._check_size(blob, core.cfg)
                self.function_id = hashlib.sha1(blob).digest()[:16]
                core.request("gcs", 
                    "kv_put", ["fn:" + self.function_id.hex(), blob, False])
                self._exported_to = core
        return self.function_id


class Submittable:
    """What remote functions, actor classes and actor methods share: options that decide
    where they run, and Ray's ``_remote`` spelling of ``options(...).remote(...)``."""

    def _set_options(self, options: dict) -> None:
        self._options = options
        self._labels = scheduling_strategies.label_constraints(
            options.get("scheduling_strategy"), options.get("label_selector"),
            options.get("fallback_strategy"))

    def _remote(self, args=None, kwargs=None, **options):
        """Ray's other spelling: ``x._remote(args=[...], kwargs={...}, **options)``."""
        target = self.options(**options) if options else self
        return target.remote(*(args or ()), **(kwargs or {}))


class RemoteFunction(Submittable):
    """What ``@raggio.remote`` makes of a function."""

    def __init__(self, function, options: dict):
        self._function = function
        self._name = getattr(function, "__name__", repr(function))
        self._set_options(task_options({}, options, in_options=False))
        if inspect.isgeneratorfunction(function) or inspect.isasyncgenfunction(function):
            self._options.setdefault("num_returns", "streaming")  # Ray's default for them
        self._exporter = Exporter(function)
        self._call_shape = call_shape(function)
        functools.update_wrapper(self, function)

    def __call__(self, *args, **kwargs):
        raise TypeError(
            f"Remote functions cannot be called directly. Instead of running "
            f"'{self._name}()', try '{self._name}.remote()'.")

    def options(self, **options) -> "RemoteFunction":
        """This function with some options changed, for the calls made through it.

        Raises:
            ValueError, TypeError: an unknown option or a bad value, as in Ray.
        """
        clone = RemoteFunction.__new__(RemoteFunction)
        clone.__dict__.update(self.__dict__)
        clone._set_options(task_options(self._options, options, in_options=True))
        return clone

    def remote(self, *args, **kwargs):
        fewest, most, parameters = self._call_shape
        if kwargs or not fewest <= len(args) <= most:
            check_call(parameters, args, kwargs)
        core = context.get_core()
        if core.is_client:
            return core.submit_task(self, args, kwargs)
        options = self._options
        # First: packing may raise (a package too large) before anything is held for the call.
        runtime_env = core.runtime_envs.for_call(options.get("runtime_env"))
        function_id = self._exporter.ensure_exported(core)
        num_returns = options.get("num_returns", 1)
        count = num_returns if num_returns.__class__ is int else 1  # a generator: 1 return
        task_id = core.ids.task_id_bytes()
        encoded, kwarg_names, held = encode_args(core, args, kwargs, self._name)
        ids, refs = return_ids(core, task_id, count)
        resources, strategy, capture = scheduling_strategies.resolve(
            options.get("scheduling_strategy"), resources_of(options, 1.0),
            getattr(core.current, "placement_group", None), self._labels, self._name)
        spec = {
            "task_id": task_id, "name": options.get("name") or self._name,
            "function_id": function_id, "args": encoded, "kwarg_names": kwarg_names,
            "return_ids": ids, "num_returns": num_returns, "job_id": core.job_id,
            "namespace": core.namespace, "resources": resources,
            "retries_left": options.get("max_retries", DEFAULT_MAX_RETRIES),
            "max_retries": options.get("max_retries", DEFAULT_MAX_RETRIES),
            "retry_exceptions": encode_retry_exceptions(options.get("retry_exceptions", False)),
            "runtime_env": runtime_env,
            "strategy": strategy, "placement_group": capture,
        }
        labels = self._labels
        info_id = core.task_events.info_id(
            (function_id, spec["name"], core.job_id, tuple(resources.items()), id(labels)),
            lambda: task_info(spec["name"], self._name, "NORMAL_TASK", core.job_id,
                              resources=resources, label_constraints=labels))
        if count is not num_returns:
            refs = core.generators.open(spec, refs[0], options)
        track_submission(core, spec, held, info_id)
        core.call_soon(core.submitter.submit, spec)
        if num_returns == 1:
            return refs[0]
        return refs or None  # Ray returns None for num_returns=0

    def bind(self, *args, **kwargs):
        raise NotImplementedError("DAG building with .bind() is not supported by raggio yet.")
