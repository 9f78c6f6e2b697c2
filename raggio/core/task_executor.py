"""Running tasks and actors inside a worker process.

Owns what a worker executes: the function cache (fetched once from the
control store's KV), argument resolution, running the task, and packing its
returns (inline, or written to the node's arena); a generator task's values are
stored and reported to its owner as it yields them (``generators.ItemReporter``). Normal tasks and methods of
plain actors run one at a time on the main thread; methods of async actors
run as coroutines on the actor's own event loop (up to ``max_concurrency``,
default 1000); threaded actors use a pool of ``max_concurrency`` threads.
Called through the ``push_task``/``create_actor``/``cancel_task``/
``exit_worker`` ops of the worker's RPC server.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import functools
import inspect
import logging
import os
import pickle
import queue
import signal
import sys
import threading
import traceback
from types import GeneratorType
from typing import Any, NoReturn

import setproctitle

from raggio.common.log_marks import JOB_MARK, TASK_MARK
from raggio.core import context
from raggio.core.serialization import error_location
from raggio.core.generators import ItemReporter
from raggio.core.object_ref import ObjectRef
from raggio.core.serialization import deserialize_inline, loads_function, serialize
from raggio.core.task_events import error_summary
from raggio.exceptions import (ActorExitRequested, AsyncioActorExit, RayError, RayTaskError,
                               StreamingGeneratorReplayInconsistentError, TaskCancelledError,
                               failed_dependency_traceback)

logger = logging.getLogger(__name__)


class TaskExecutor:
    """See the module docstring."""

    def __init__(self, core):
        self.core = core
        self.functions: dict[bytes, Any] = {}
        self.main_queue: queue.SimpleQueue = queue.SimpleQueue()
        self.actor: Any = None
        self.actor_name = ""
        self.actor_loop: asyncio.AbstractEventLoop | None = None
        self.actor_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self.actor_semaphore: asyncio.Semaphore | None = None
        self._running_task: bytes | None = None  #: task on the main thread
        self._cancel_requested: bytes | None = None
        self._async_calls: dict[bytes, asyncio.Task] = {}  #: running calls of an async actor
        self._generators: dict[bytes, ItemReporter] = {}  #: running generator tasks
        #: Tasks pushed here and not started yet (not async actor calls): (spec, reply future).
        self._queued: dict[bytes, tuple[dict, asyncio.Future]] = {}
        self._marks = {"job": None, "name": None}
        #: The CPUs OMP_NUM_THREADS was last set from (-1: not yet); None: the user set it.
        self._omp_cpus: float | None = None if "OMP_NUM_THREADS" in os.environ else -1.0
        self._actor_placement: tuple = ([], None, {})

    # -- the main thread --

    def run_forever(self) -> None:
        setproctitle.setproctitle("raggio::IDLE")
        signal.signal(signal.SIGUSR1, self._on_cancel_signal)
        while True:
            job, fut = self.main_queue.get()
            try:
                result = job()
            except ActorExitRequested as exc:
                self._exit_actor(exc.cause)
            except SystemExit:  # a task called sys.exit() (see _execute)
                self._exit_gracefully()
            except BaseException as exc:  # noqa: BLE001 (must reach the owner)
                self.core.call_soon(_set_exception, fut, exc)
            else:
                self.core.call_soon(_set_result, fut, result)

    # -- ops (loop thread) --

    def push_task(self, conn, spec: dict) -> asyncio.Future:
        # The caller owns what the task returns; the node keeps the owner's address with
        # each return it stores, to tell the owner if the object moves (a draining node).
        spec.setdefault("owner_address", conn.peer_info.get("address"))
        if self.actor_loop is not None:
            cfut = asyncio.run_coroutine_threadsafe(self._execute_async(spec, conn),
                                                    self.actor_loop)
            return asyncio.wrap_future(cfut, loop=self.core.loop)
        fut = self.core.loop.create_future()
        self._queued[spec["task_id"]] = (spec, fut)
        if self.actor_pool is not None:
            self.actor_pool.submit(self._execute, spec, conn).add_done_callback(
                lambda done: self.core.call_soon(_copy_outcome, done, fut))
        else:
            self.main_queue.put((lambda: self._execute(spec, conn), fut))
        return fut

    def create_actor(self, conn, msg: dict) -> asyncio.Future:
        fut = self.core.loop.create_future()
        self.main_queue.put((lambda: self._create_actor(msg), fut))
        return fut

    def cancel_task(self, conn, msg: dict) -> None:
        """Cancel a task or actor call pushed here: one not started yet never runs, a
        running one is interrupted, except a call of a plain or threaded actor (as in Ray,
        an actor's state would be left half-changed), and a running async actor call is
        cancelled; ``force`` ends this worker; ``recursive`` cancels what it submitted."""
        task_id = msg["task_id"]
        if msg.get("recursive"):
            self.core.cancel_children(task_id, msg.get("force", False))
        running = self._async_calls.get(task_id)
        if running is not None:
            self.actor_loop.call_soon_threadsafe(running.cancel)
            return
        queued = self._queued.pop(task_id, None)  # atomic: either this or _execute has it
        if queued is not None:
            spec, fut = queued
            _set_result(fut, self._pack_error(spec, TaskCancelledError(task_id.hex()), False))
            return
        if self._running_task != task_id or self.actor is not None:
            return
        if msg.get("force"):
            sys.stdout.flush()
            os._exit(1)
        # A signal interrupts blocking calls (sleep, I/O) where an async exception would not;
        # its handler raises TaskCancelledError in the main thread.
        self._cancel_requested = msg["task_id"]
        signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)

    def _on_cancel_signal(self, signum, frame) -> None:
        requested, self._cancel_requested = self._cancel_requested, None
        if requested is not None and requested == self._running_task:
            raise TaskCancelledError(requested.hex())

    def exit_worker(self, conn, msg: dict) -> None:
        """End this worker: at once (``raggio.kill``), or for an actor no one holds any
        more, after the calls already queued on its main thread, running atexit handlers."""
        if msg.get("graceful"):
            self.main_queue.put((self._exit_gracefully, None))
            return
        self._exit_now()

    def _exit_now(self) -> NoReturn:
        if not self.core._closed:  # (an atexit handler may have shut the core worker down)
            self.core.task_events.flush()
            self.core.gcs.close()  # sends what is buffered
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    def _exit_gracefully(self) -> NoReturn:
        """Run the interpreter's exit handlers (the user's ``atexit`` ones), then exit."""
        try:
            atexit._run_exitfuncs()
        finally:
            self._exit_now()

    def _exit_actor(self, cause: str) -> NoReturn:
        """The actor ends itself (``exit_actor()``, ``__ray_terminate__``): tell the control
        store why, so it is not restarted and its callers read the cause, then exit."""
        try:
            self.core.request("gcs", "actor_exiting", {"actor_id": self.core.actor_id,
                                                       "cause": cause})
        finally:
            self._exit_gracefully()

    # -- running one task --

    def _execute(self, spec: dict, conn) -> dict:
        is_main = threading.current_thread() is threading.main_thread()
        if is_main:  # first: a cancel that finds it no longer queued must find it running
            self._running_task = spec["task_id"]
        if self._queued.pop(spec["task_id"], None) is None:  # cancelled, and answered
            if is_main:
                self._running_task = None
            return {}
        started = self.core.task_events.running(spec["task_id"], spec.get("attempt", 0))
        name = spec["name"]
        self._enter_job(spec)
        self._mark(spec["job_id"], name)
        setproctitle.setproctitle(f"raggio::{name}")
        current = self.core.current
        current.task_id = spec["task_id"]
        if "actor_id" not in spec:  # an actor's calls run with what the actor was given
            self._take_placement(spec.get("gpu_ids") or [], spec.get("placement_group"),
                                 spec["resources"])
        failed_dependency = False
        try:
            try:
                fn = self._callable(spec)
                self.core.running_tasks[spec["task_id"]] = (spec, fn)
                try:
                    args, kwargs = self._resolve_args(spec)
                except RayError as exc:
                    failed_dependency = not isinstance(exc, TaskCancelledError)
                    raise
                result = fn(*args, **kwargs)
            finally:
                if is_main:
                    self._running_task = None
            reply = self._pack_returns(spec, result, conn)
        except ActorExitRequested as exc:
            exc.cause = exc.cause or _exit_actor_cause(spec)
            if not is_main:  # a threaded actor's pool thread: exit from here
                self._exit_actor(exc.cause)
            raise  # to run_forever, which exits once the task's bookkeeping is done
        except SystemExit as exc:  # the user's sys.exit(): this worker exits, as Ray's does
            if self.actor is not None and exc.code in (0, None):
                cause = f"The actor exited on purpose: {spec['name']} called sys.exit()."
                if not is_main:
                    self._exit_actor(cause)
                raise ActorExitRequested(cause) from None
            logger.error("SystemExit(%r) was raised from %s: this worker exits", exc.code, name)
            if not is_main:
                self._exit_gracefully()
            raise  # to run_forever, as above; the owner sees the worker die
        except BaseException as exc:  # noqa: BLE001
            reply = self._pack_error(spec, exc, failed_dependency)
        finally:
            current.task_id = None
            self.core.running_tasks.pop(spec["task_id"], None)
            self.core.task_events.done_running(spec["task_id"])
            setproctitle.setproctitle(f"raggio::{self.actor_name or 'IDLE'}")
        reply["started"] = started
        return reply

    async def _execute_async(self, spec: dict, conn) -> dict:
        self._async_calls[spec["task_id"]] = asyncio.current_task()
        context.async_call_task_id.set(spec["task_id"])  # this call's own context
        try:
            return await self._execute_async_limited(spec, conn)
        finally:
            self._async_calls.pop(spec["task_id"], None)
            self.core.running_tasks.pop(spec["task_id"], None)

    async def _execute_async_limited(self, spec: dict, conn) -> dict:
        async with self.actor_semaphore:
            started = self.core.task_events.running(spec["task_id"], spec.get("attempt", 0))
            self._mark(spec["job_id"], spec["name"])
            failed_dependency = False
            try:
                method = self._callable(spec)
                self.core.running_tasks[spec["task_id"]] = (spec, method)
                try:
                    args, kwargs = await self._resolve_args_async(spec)
                except RayError as exc:
                    failed_dependency = not isinstance(exc, TaskCancelledError)
                    raise
                result = method(*args, **kwargs)
                if spec["num_returns"].__class__ is str:
                    reply = await self._run_generator_async(spec, result, conn)
                else:
                    if inspect.isawaitable(result):
                        result = await result
                    reply = self._pack_returns(spec, result, conn)
            except (AsyncioActorExit, ActorExitRequested) as exc:
                self._exit_actor(getattr(exc, "cause", None) or _exit_actor_cause(spec))
            except BaseException as exc:  # noqa: BLE001
                if isinstance(exc, asyncio.CancelledError):
                    exc = TaskCancelledError(spec["task_id"].hex())
                reply = self._pack_error(spec, exc, failed_dependency)
            self.core.task_events.done_running(spec["task_id"])
            reply["started"] = started
            return reply

    def _callable(self, spec: dict):
        if "actor_id" in spec:
            builtin = _ACTOR_BUILTINS.get(spec["method"])
            if builtin is not None:
                return functools.partial(builtin, self.actor, spec)
            return getattr(self.actor, spec["method"])
        return self._load(spec["function_id"])

    def _load(self, function_id: bytes):
        fn = self.functions.get(function_id)
        if fn is None:
            blob = self.core.request("gcs", "kv_get", "fn:" + function_id.hex())
            if blob is None:
                raise RuntimeError(f"function {function_id.hex()} was never exported")
            fn = self.functions[function_id] = loads_function(blob)
        return fn

    def _resolve_args(self, spec: dict) -> tuple[list, dict]:
        values = []
        refs = {}
        for index, arg in enumerate(spec["args"]):
            if arg[0] == "v":
                values.append(deserialize_inline(arg[1]))
            else:
                refs[index] = ObjectRef(arg[1], arg[2])
                values.append(None)
        if refs:
            for index, value in zip(refs, self.core.get(list(refs.values()), None)):
                values[index] = value
        return _split_kwargs(values, spec.get("kwarg_names") or [])

    async def _resolve_args_async(self, spec: dict) -> tuple[list, dict]:
        values = []
        for arg in spec["args"]:
            if arg[0] == "v":
                values.append(deserialize_inline(arg[1]))
            else:
                values.append(await asyncio.wrap_future(
                    self.core.get_future(ObjectRef(arg[1], arg[2]))))
        return _split_kwargs(values, spec.get("kwarg_names") or [])

    def _pack_returns(self, spec: dict, result: Any, conn) -> dict:
        num_returns = spec["num_returns"]
        if num_returns.__class__ is str:
            return self._run_generator(spec, result, conn)
        if result.__class__ is GeneratorType:
            return self._generator_returns(spec, result, num_returns)
        if num_returns == 1:
            values = [result]
        elif num_returns == 0:
            values = []
        else:
            values = list(result) if isinstance(result, (tuple, list)) else None
            if values is None or len(values) != num_returns:
                raise ValueError(
                    f"Task {spec['name']} has num_returns={num_returns} but returned "
                    f"{type(result).__name__} {result!r:.100}; return (or yield) that many "
                    "values.")
        return {"returns": self._store_returns(spec, values)}

    def _store_returns(self, spec: dict, values: list) -> list:
        returns = []
        for object_id, value in zip(spec["return_ids"], values):
            try:
                serialized = serialize(value)
            except TypeError as exc:
                raise TypeError(f"Could not serialize the return value of {spec['name']}: "
                                f"{exc}") from exc
            returns.append(self.core.store_serialized(object_id, serialized,
                                                      spec["owner_address"]))
        return returns

    def _generator_returns(self, spec: dict, generator, num_returns: int) -> dict:
        """An integer ``num_returns`` from a generator, as Ray: its first values are the
        returns; one that raises after k values gives those and the error for the rest; one
        that yields too few is an error, one that yields more has the rest dropped (logged)."""
        values = []
        try:
            for value in generator:
                if len(values) == num_returns:
                    logger.error("Task %s has num_returns=%d but its generator yields more "
                                 "values; the rest are dropped.", spec["name"], num_returns)
                    break
                values.append(value)
        except Exception as exc:  # noqa: BLE001 (the error goes to the returns not yielded)
            if not values:
                raise
            reply = self._pack_error(spec, exc, False)
            reply["returns"][:len(values)] = self._store_returns(spec, values)
            return reply
        if len(values) < num_returns:
            raise ValueError(f"Task {spec['name']} has num_returns={num_returns} but its "
                             f"generator yielded {len(values)} values; yield that many.")
        return {"returns": self._store_returns(spec, values)}

    # -- generators (see generators.py) --

    def _run_generator(self, spec: dict, result: Any, conn) -> dict:
        if not inspect.isgenerator(result):
            raise TypeError(_not_a_generator(spec, result))
        reporter = self._generators[spec["task_id"]] = ItemReporter(self.core, spec, conn)
        is_main = threading.current_thread() is threading.main_thread()
        if is_main:
            self._running_task = spec["task_id"]  # its body runs here: cancel interrupts it
        try:
            for value in result:
                reporter.report(value)
                reporter.wait_capacity()
        except Exception as exc:  # noqa: BLE001
            self._end_dynamic_with_error(spec, reporter, exc)
        finally:
            if is_main:
                self._running_task = None
            del self._generators[spec["task_id"]]
        return self._generator_reply(spec, reporter)

    async def _run_generator_async(self, spec: dict, result: Any, conn) -> dict:
        if inspect.isawaitable(result):
            result = await result
        if not (inspect.isasyncgen(result) or inspect.isgenerator(result)):
            raise TypeError(_not_a_generator(spec, result))
        reporter = self._generators[spec["task_id"]] = ItemReporter(self.core, spec, conn)
        try:
            if inspect.isasyncgen(result):
                async for value in result:
                    reporter.report(value)
                    await reporter.wait_capacity_async()
            else:
                for value in result:
                    reporter.report(value)
                    await reporter.wait_capacity_async()
        except Exception as exc:  # noqa: BLE001
            self._end_dynamic_with_error(spec, reporter, exc)
        finally:
            del self._generators[spec["task_id"]]
        return self._generator_reply(spec, reporter)

    def _end_dynamic_with_error(self, spec: dict, reporter: ItemReporter,
                                exc: Exception) -> None:
        """As Ray: a dynamic generator that raises ends with a ref to its error after the
        values it yielded, unless the error is to be retried; any other kind re-raises (a
        streaming generator's error ends its stream through the task's own return)."""
        if not reporter.dynamic or _should_retry(spec.get("retry_exceptions"), exc):
            raise exc
        reporter.report_location(error_location(self._task_error(spec["name"], exc, False)))

    def _generator_reply(self, spec: dict, reporter: ItemReporter) -> dict:
        expected = spec.get("rebuild_items", 0)
        if reporter.count < expected:  # a run to rebuild lost items (reconstruction.py)
            raise StreamingGeneratorReplayInconsistentError(
                f"Task {spec['name']} ran again to rebuild a lost value but its generator "
                f"yielded {reporter.count} values, where its first run yielded {expected}; "
                f"a generator task must yield the same values each time it runs.")
        value = reporter.completion_value(spec["owner_address"])
        return {"returns": [self.core.store_serialized(spec["return_ids"][0], serialize(value),
                                                       spec["owner_address"])]}

    def generator_consumed(self, conn, msg: list) -> None:
        task_id, consumed = msg
        reporter = self._generators.get(task_id)
        if reporter is not None:
            reporter.on_consumed(consumed)

    def _pack_error(self, spec: dict, exc: BaseException, failed_dependency: bool) -> dict:
        if isinstance(exc, (TaskCancelledError, KeyboardInterrupt)) and not failed_dependency:
            error: BaseException = TaskCancelledError(spec["task_id"].hex())
            retryable = False
        else:
            error = self._task_error(spec["name"], exc, failed_dependency)
            retryable = not failed_dependency and _should_retry(spec.get("retry_exceptions"), exc)
        location = error_location(error)
        return {"returns": [location] * max(len(spec["return_ids"]), 0),
                "app_error": True, "retryable": retryable, "error": error_summary(error)}

    def _task_error(self, name: str, exc: BaseException, failed_dependency: bool,
                    actor: Any = None) -> RayTaskError:
        """The RayTaskError of a task that raised ``exc`` (the current exception), or that
        did not run because an argument is the error ``exc``.

        As in Ray, a RayTaskError raised in the task (a ``get`` of a failed task) is not
        nested: the new error's cause is the original cause, and its text shows both.
        """
        if failed_dependency:
            traceback_str = failed_dependency_traceback(exc)
        else:
            traceback_str = "".join(traceback.format_exception(exc))
        actor = self.actor if actor is None else actor
        actor_repr = None
        if actor is not None:
            try:
                actor_repr = repr(actor)
            except Exception:  # noqa: BLE001 (a broken __repr__ must not hide the error)
                actor_repr = object.__repr__(actor)
        actor_id = getattr(self.core, "actor_id", None)
        return RayTaskError(name, traceback_str,
                            exc.cause if isinstance(exc, RayTaskError) else exc,
                            pid=os.getpid(), ip=self.core.node_ip, actor_repr=actor_repr,
                            actor_id=actor_id.hex() if actor_id else None)

    def _enter_job(self, spec: dict) -> None:
        """Run as the spec's job; refs escaping in a new job are told to the node again
        (``CoreWorker.note_owns_escaped``), which keeps count per job."""
        if spec["job_id"] != self.core.job_id:
            self.core.owns_escaped = False
        self.core.job_id, self.core.namespace = spec["job_id"], spec["namespace"]

    def _mark(self, job_id: int, name: str) -> None:
        """Tell the log monitor which job and task the next lines belong to."""
        if self._marks["job"] != job_id:
            self._marks["job"] = job_id
            print(f"{JOB_MARK}{job_id}", flush=True)
            print(f"{JOB_MARK}{job_id}", file=sys.stderr, flush=True)
        if self._marks["name"] != name:
            self._marks["name"] = name
            print(f"{TASK_MARK}{name}", flush=True)
            print(f"{TASK_MARK}{name}", file=sys.stderr, flush=True)

    # -- actors --

    def _create_actor(self, msg: dict) -> dict:
        spec = msg["spec"]
        self._enter_job(spec)
        self.core.current.actor_id = spec["actor_id"]
        self.core.actor_id = spec["actor_id"]
        self.core.actor_incarnation = msg.get("incarnation", 1)
        self.core.actor_name = spec.get("name") or ""
        self.core.actor_handle_args = (spec["actor_id"], spec["class_name"], spec["methods"],
                                       spec["max_task_retries"])
        self._actor_placement = (msg.get("gpu_ids") or [], spec.get("placement_group"),
                                 spec["resources"])
        self._take_placement(*self._actor_placement)
        name = spec["class_name"]
        self._mark(spec["job_id"], name)
        setproctitle.setproctitle(f"raggio::{name}")
        self.actor_name = name
        instance, failed_dependency = None, False
        try:
            cls = self._load(spec["class_id"])
            try:
                args, kwargs = self._resolve_args(spec)
            except RayError:
                failed_dependency = True
                raise
            # As Ray: make the instance, then run __init__ as its first method, so that an
            # error in __init__ names the instance (its repr) as any method's error does.
            instance = cls.__new__(cls)
            instance.__init__(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001
            error = self._task_error(f"{name}.__init__", exc, failed_dependency, instance)
            return {"error": pickle.dumps(error), "error_summary": error_summary(error)}
        self.actor = instance
        self._setup_concurrency(cls, spec)
        return {"error": None}

    def _setup_concurrency(self, cls: type, spec: dict) -> None:
        is_async = any(inspect.iscoroutinefunction(m) or inspect.isasyncgenfunction(m)
                       for _, m in inspect.getmembers(cls, inspect.isfunction))
        max_concurrency = spec.get("max_concurrency") or (1000 if is_async else 1)
        if is_async:
            self.actor_loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run():
                self._take_placement(*self._actor_placement)
                asyncio.set_event_loop(self.actor_loop)
                self.actor_semaphore = asyncio.Semaphore(max_concurrency)
                ready.set()
                self.actor_loop.run_forever()
            threading.Thread(target=run, name="raggio-actor-loop", daemon=True).start()
            ready.wait()
        elif max_concurrency > 1:
            self.actor_pool = concurrent.futures.ThreadPoolExecutor(
                max_concurrency, thread_name_prefix="raggio-actor",
                initializer=self._take_placement, initargs=self._actor_placement)

    def _take_placement(self, gpu_ids: list[int], placement_group: dict | None,
                        resources: dict) -> None:
        """What the running task or actor was given, for this thread: its GPUs (also in
        CUDA_VISIBLE_DEVICES), the placement group its children join, its resources (for
        ``get_assigned_resources``) and, unless the user set it, OMP_NUM_THREADS as Ray sets
        it: the whole CPUs assigned, at least 1."""
        current = self.core.current
        current.gpu_ids, current.placement_group = gpu_ids, placement_group
        current.resources = resources
        if gpu_ids:
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in gpu_ids)
        cpus = resources.get("CPU", 1.0)
        if cpus != self._omp_cpus and self._omp_cpus is not None:  # putenv costs ~1 µs
            self._omp_cpus = cpus
            os.environ["OMP_NUM_THREADS"] = str(max(int(cpus), 1))


def _exit_actor_cause(spec: dict) -> str:
    return (f"The actor exited on purpose: exit_actor() was called in its method "
            f"{spec['method']!r} (worker exit type INTENDED_USER_EXIT).")


def _ray_ready(actor, spec: dict) -> bool:
    return True


def _ray_terminate(actor, spec: dict):
    raise ActorExitRequested("The actor exited on purpose: __ray_terminate__ was called "
                             "(worker exit type INTENDED_USER_EXIT).")


def _ray_call(actor, spec: dict, fn, *args, **kwargs):
    return fn(actor, *args, **kwargs)


#: The methods every actor has, as in Ray (see ``actor._BUILTIN_METHODS``).
_ACTOR_BUILTINS = {"__ray_ready__": _ray_ready, "__ray_terminate__": _ray_terminate,
                   "__ray_call__": _ray_call}


def _not_a_generator(spec: dict, result: Any) -> str:
    return (f"Task {spec['name']} has num_returns={spec['num_returns']!r} but returned "
            f"{type(result).__name__}, not a generator. Use `yield` in it, or give it an "
            "integer num_returns.")


def _split_kwargs(values: list, kwarg_names: list[str]) -> tuple[list, dict]:
    if not kwarg_names:
        return values, {}
    n = len(kwarg_names)
    return values[:-n], dict(zip(kwarg_names, values[-n:]))


def _should_retry(retry_exceptions, exc: BaseException) -> bool:
    if not retry_exceptions:
        return False
    if retry_exceptions is True:
        return isinstance(exc, Exception)
    types = tuple(pickle.loads(blob) for blob in retry_exceptions)
    return isinstance(exc, types)


def _set_result(fut: asyncio.Future, value) -> None:
    if not fut.done():
        fut.set_result(value)


def _copy_outcome(done: concurrent.futures.Future, fut: asyncio.Future) -> None:
    if done.exception() is not None:
        _set_exception(fut, done.exception())
    else:
        _set_result(fut, done.result())


def _set_exception(fut: asyncio.Future, exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
