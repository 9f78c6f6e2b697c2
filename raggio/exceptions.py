"""Every exception class of raggio, with Ray 2.60's public names and hierarchy.

User code catches these as ``ray.exceptions.<Name>``; every package may raise
them. This module owns the classes, their messages and how they pickle; it does
not decide when they are raised (the callers do: ``core`` for task and object
errors, ``rpc`` for connection errors, ``node`` and ``gcs`` for scheduling and
failures) and it imports nothing from raggio.

Class tree (``+`` marks a second base class)::

    Exception
     └── RayError
          ├── TaskCancelledError
          ├── RayTaskError
          │    └── RayTaskError(<cause type>)   made by as_instanceof_cause()
          │                                     + the type of the remote exception
          ├── LocalRayletDiedError
          ├── WorkerCrashedError
          ├── RayActorError
          │    ├── ActorDiedError
          │    └── ActorUnavailableError
          ├── RaySystemError
          │    └── StreamingGeneratorReplayInconsistentError
          ├── ObjectStoreFullError
          ├── OutOfDiskError
          ├── OutOfMemoryError
          ├── NodeDiedError
          ├── ObjectLostError
          │    ├── ObjectFetchTimedOutError
          │    ├── ReferenceCountingAssertionError   + AssertionError
          │    ├── OwnerDiedError
          │    └── ObjectReconstructionFailedError
          ├── GetTimeoutError                        + TimeoutError
          ├── PlasmaObjectNotAvailable
          ├── AsyncioActorExit
          ├── RuntimeEnvSetupError
          ├── TaskPlacementGroupRemoved
          ├── ActorPlacementGroupRemoved
          ├── PendingCallsLimitExceeded
          ├── TaskUnschedulableError
          ├── ActorUnschedulableError
          ├── ActorAlreadyExistsError                + ValueError (listed first, as in Ray)
          ├── ActorHandleNotFoundError               + ValueError (listed first, as in Ray)
          ├── UnserializableException
          ├── RpcError
          │    ├── AuthenticationError
          │    └── ConnectionLost                    (internal)
          ├── NodeUnreachableError                   (internal: the launcher's SSH)
          └── NodeCommandError                       (internal: the launcher's SSH)
    SystemExit
     └── ActorExitRequested                          (internal)
    RuntimeError
     └── ClusterLaunchError                          (internal)

    TypeError
     └── ActorClassInheritanceException              (Ray's ``ray.actor``; not a RayError)
    ValueError
     └── ClusterConfigError                          (raggio's launcher; not a RayError)

Departures from Ray:

- ``AuthenticationError`` derives from ``RpcError`` (Ray: directly from
  ``RayError``). In raggio only the rpc layer checks the cluster token, during
  the handshake, so a wrong token is one way a connection fails; callers that
  retry on ``RpcError`` must catch ``AuthenticationError`` first, because
  retrying with the same token cannot succeed. ``except RayError`` still
  catches it.
- Ray's cross-language, compiled-graph channel, Ray Data and streaming-generator
  internals (``CrossLanguageError``, ``RayChannelError``, ``UserCodeException``
  and kin) are absent: raggio has none of those features. Each is listed with its
  reason in ``DEPARTURES`` in tests/test_public_surface.py.
- Ray 2.60 folds the old ``ObjectReconstructionFailedMaxAttemptsExceededError``
  and ``ObjectReconstructionFailedLineageEvictedError`` into
  ``ObjectReconstructionFailedError`` with a ``reason``; raggio does the same.

Every class pickles (exceptions cross processes): ``RayError.__reduce__`` saves
the instance's attributes and ``args`` and restores them without calling
``__init__``, so a subclass may take any constructor arguments.
"""

from __future__ import annotations

import copyreg
import logging
import os
from typing import Any

import cloudpickle

logger = logging.getLogger(__name__)

#: Where a node's logs are by default (``Config.temp_dir`` + ``session_latest/logs``).
_SESSION_LOGS = "/tmp/raggio/session_latest/logs"

#: Traceback frames from these paths are raggio's task-execution machinery, not
#: user code; RayTaskError hides them, as Ray hides ``ray/_private/``.
_INTERNAL_FRAME_MARKERS = ("/raggio/core/",)


class RayError(Exception):
    """Base class of every raggio exception: ``except ray.exceptions.RayError`` catches them all."""

    def __reduce__(self) -> tuple[Any, ...]:
        # BaseException's default re-calls type(self)(*self.args), which breaks
        # for subclasses whose __init__ takes other arguments than it stores.
        state = dict(self.__dict__)
        state["args"] = self.args
        return copyreg.__newobj__, (type(self),), state


class TaskCancelledError(RayError):
    """Raised by ``ray.get`` on the result of a task that ``ray.cancel`` stopped.

    Args:
        task_id: The cancelled task's id (a ``TaskID`` or its hex string).
        error_message: Why or how it was cancelled, when known.
    """

    def __init__(self, task_id: object = None, error_message: str | None = None):
        super().__init__(task_id, error_message)
        self.task_id = task_id
        self.error_message = error_message

    def __str__(self) -> str:
        parts = []
        if self.task_id is not None:
            parts.append(f"Task: {self.task_id} was cancelled.")
        if self.error_message:
            parts.append(self.error_message)
        return " ".join(parts) or "This task or one of its dependencies was cancelled."


class RayTaskError(RayError):
    """A task or actor method raised; ``ray.get`` on its result raises this.

    The remote exception is ``cause``; ``as_instanceof_cause()`` gives the
    exception that ``ray.get`` raises, an instance of both this class and the
    cause's type, so ``except ValueError`` catches a remote ``ValueError``.

    Args:
        function_name: Name of the task's function or actor method.
        traceback_str: The remote traceback, as ``traceback.format_exception`` prints it.
        cause: The exception the task raised. One that cannot be pickled is
            replaced by a ``RayError`` carrying its text.
        proctitle: Title of the process that ran the task; defaults to
            ``ray::<function_name>``, the title raggio's workers take.
        pid: Process id of the worker; defaults to this process's.
        ip: Address of the worker's node, when known.
        actor_repr: ``repr()`` of the actor, for an actor method.
        actor_id: Hex id of the actor, for an actor method.
    """

    function_name: str
    traceback_str: str
    cause: BaseException
    proctitle: str
    pid: int
    ip: str | None
    actor_repr: str | None
    actor_id: str | None

    def __init__(
        self,
        function_name: str,
        traceback_str: str,
        cause: BaseException,
        proctitle: str | None = None,
        pid: int | None = None,
        ip: str | None = None,
        actor_repr: str | None = None,
        actor_id: str | None = None,
    ):
        self.function_name = function_name
        self.traceback_str = traceback_str
        self.cause = _picklable_cause(cause, function_name, traceback_str)
        self.proctitle = proctitle or f"ray::{function_name}"
        self.pid = pid or os.getpid()
        self.ip = ip
        self.actor_repr = actor_repr
        self.actor_id = actor_id
        super().__init__(*self._constructor_args())

    def _constructor_args(self) -> tuple[Any, ...]:
        return (self.function_name, self.traceback_str, self.cause, self.proctitle,
                self.pid, self.ip, self.actor_repr, self.actor_id)

    def as_instanceof_cause(self) -> RayTaskError:
        """Return this error as an instance of both RayTaskError and the cause's type.

        The returned exception has this error's ``str()`` and attributes, the
        cause's ``args``, and reads any other attribute from ``cause``. Its
        class, named ``RayTaskError(<cause type>)``, is made once per cause
        type. When the cause is itself a RayTaskError (a nested task failed),
        the innermost user exception's type is used.

        Returns:
            The dual instance, or ``self`` when the cause's type already is a
            base of RayTaskError or cannot be combined with it (a class that
            forbids subclassing, or whose ``__new__`` rejects its own args);
            the latter is logged.
        """
        root_cause = self.cause
        while isinstance(root_cause, RayTaskError) and root_cause.cause is not root_cause:
            root_cause = root_cause.cause
        cause_type = type(root_cause)
        if issubclass(RayTaskError, cause_type):
            return self
        try:
            dual_type = _dual_type(cause_type)
            dual = dual_type.__new__(dual_type, *root_cause.args)
            dual.args = root_cause.args  # OSError's __new__ leaves them to __init__
            dual.__dict__.update(self.__dict__)
        except Exception as exc:  # any failure of a user class: fall back, never hide the error
            logger.warning(
                "The exception %s raised by %s cannot be combined with RayTaskError "
                "(%r); it is raised as a plain RayTaskError, and `.cause` holds it.",
                cause_type.__qualname__, self.function_name, exc)
            return self
        return dual

    def __str__(self) -> str:
        """The remote traceback laid out as Ray lays it out.

        Each ``Traceback (most recent call last):`` line (one per exception of a chain)
        becomes the header ``ray::<function>() (pid=..., ip=...)``; raggio's own frames and
        Python's ``^^^`` markers are left out; raggio's exception classes are named by their
        Ray path (``ray.exceptions.RayTaskError``), as ``import raggio as ray`` users know them.
        """
        header = self._header()
        out: list[str] = []
        in_internal_frame = False
        for line in self.traceback_str.strip().splitlines():
            if line.startswith("Traceback "):
                in_internal_frame = False
                out.append(header)
            elif line.startswith("  File ") and any(m in line for m in _INTERNAL_FRAME_MARKERS):
                in_internal_frame = True
            elif line.startswith("    ") and (in_internal_frame or _is_caret_line(line)):
                continue  # a hidden frame's source line, or the markers under a source line
            else:
                in_internal_frame = False
                out.append(_ray_class_path(line))
        if not out or out[0] != header:
            out.insert(0, header)
        return "\n".join(out)

    def _header(self) -> str:
        details = [f"pid={self.pid}"]
        if self.ip:
            details.append(f"ip={self.ip}")
        if self.actor_repr:
            details.append(f"actor_id={self.actor_id}")
            details.append(f"repr={self.actor_repr}")
        return f"{self.proctitle}() ({', '.join(details)})"


#: The line Ray's layout puts where a task failed because one of its arguments is an error.
FAILED_DEPENDENCY_LINE = "  At least one of the input arguments for this task could not be computed:"


def failed_dependency_traceback(error: BaseException) -> str:
    """The traceback text of a task that did not run because an argument is ``error``.

    Laid out by ``RayTaskError.__str__`` as Ray does: the task's header, the line saying an
    argument could not be computed, then the argument's own error (its header and traceback).
    """
    name = "RayTaskError" if isinstance(error, RayTaskError) else type(error).__qualname__
    module = __name__ if isinstance(error, RayTaskError) else type(error).__module__
    return (f"Traceback (most recent call last):\n{FAILED_DEPENDENCY_LINE}\n"
            f"{_ray_class_path(f'{module}.{name}')}: {error}\n")


def _is_caret_line(line: str) -> bool:
    return not line.strip(" ^~")


def _ray_class_path(line: str) -> str:
    """``raggio.exceptions.X...`` at the start of a line, as Ray names it."""
    if line.startswith(_OWN_PATH):
        return "ray.exceptions." + line[len(_OWN_PATH):]
    return line


_OWN_PATH = __name__ + "."


def _picklable_cause(cause: BaseException, function_name: str, traceback_str: str) -> BaseException:
    """``cause``, or a RayError with its text when it cannot cross processes."""
    try:
        cloudpickle.dumps(cause)
    except Exception as exc:
        cause_type = f"{type(cause).__module__}.{type(cause).__qualname__}"
        logger.warning("The exception %s raised by %s cannot be pickled: %r",
                       cause_type, function_name, exc)
        return RayError(f"Exception {cause_type} isn't serializable: {exc}.\n"
                        f"Original exception details:\n{traceback_str}")
    return cause


#: Dual classes made by RayTaskError.as_instanceof_cause, by cause type.
_dual_types: dict[type, type] = {}


def _dual_type(cause_type: type) -> type:
    """The class ``RayTaskError(<cause_type>)``; raises TypeError if the two cannot be combined."""
    dual_type = _dual_types.get(cause_type)
    if dual_type is None:
        name = f"RayTaskError({cause_type.__name__})"
        namespace = {
            "__module__": __name__,
            "__qualname__": name,
            "__getattr__": _read_from_cause,
            "__reduce__": _reduce_dual,
        }
        dual_type = type(name, (RayTaskError, cause_type), namespace)
        _dual_types[cause_type] = dual_type
    return dual_type


def _read_from_cause(self: RayTaskError, name: str) -> Any:
    # Called only for attributes the dual instance lacks, such as ones the
    # user's exception set in its own __init__, which never ran on the dual.
    cause = self.__dict__.get("cause")
    if cause is None:
        raise AttributeError(name)
    return getattr(cause, name)


def _reduce_dual(self: RayTaskError) -> tuple[Any, ...]:
    # The dual class is made at run time and cannot be found by name, so the
    # receiver rebuilds it from the RayTaskError's arguments.
    return _rebuild_instanceof_cause, self._constructor_args()


def _rebuild_instanceof_cause(*args: Any) -> RayTaskError:
    return RayTaskError(*args).as_instanceof_cause()


class LocalRayletDiedError(RayError):
    """The node manager of the node running the task died."""

    def __str__(self) -> str:
        return ("The task's local node manager (raylet) died. Check its log in the "
                f"session's logs directory ({_SESSION_LOGS} by default) for more information.")


class WorkerCrashedError(RayError):
    """The worker process died while running the task (for example killed, or a segfault)."""

    def __str__(self) -> str:
        return ("The worker died unexpectedly while executing this task. Check the worker "
                f"logs in the session's logs directory ({_SESSION_LOGS} by default) for "
                "more information.")


class RayActorError(RayError):
    """The actor could not finish the call: it is dead (ActorDiedError) or unreachable
    for now (ActorUnavailableError).

    Args:
        actor_id: Hex id of the actor, when known.
        error_msg: The full message.
        actor_init_failed: The actor died because its ``__init__`` raised.
        preempted: The actor died because its node was drained (preempted).
    """

    BASE_ERROR_MSG = "The actor experienced an error before finishing this task."

    def __init__(self, actor_id: str | None = None, error_msg: str = BASE_ERROR_MSG,
                 actor_init_failed: bool = False, preempted: bool = False):
        super().__init__(actor_id, error_msg, actor_init_failed, preempted)
        self.actor_id = actor_id
        self.error_msg = error_msg
        self._actor_init_failed = actor_init_failed
        self._preempted = preempted

    @property
    def actor_init_failed(self) -> bool:
        """Whether the actor died because its ``__init__`` raised."""
        return self._actor_init_failed

    @property
    def preempted(self) -> bool:
        """Whether the actor died because its node was drained."""
        return self._preempted

    def __str__(self) -> str:
        return self.error_msg


class ActorDiedError(RayActorError):
    """The actor is dead: its process or node died, it was killed, or its ``__init__`` raised.

    Args:
        cause: The RayTaskError of a failed ``__init__``, or a sentence saying
            why the actor died (its process exited, ``ray.kill``, its node
            died), or None when unknown.
        actor_id: Hex id of the actor, when known.
        preempted: The actor died because its node was drained.
    """

    BASE_ERROR_MSG = "The actor died unexpectedly before finishing this task."

    def __init__(self, cause: RayTaskError | str | None = None, actor_id: str | None = None,
                 preempted: bool = False):
        if isinstance(cause, RayTaskError):
            error_msg = f"The actor died because of an error raised in its creation task, {cause}"
            super().__init__(actor_id or cause.actor_id, error_msg, True, preempted)
            return
        lines = [self.BASE_ERROR_MSG]
        if actor_id:
            lines.append(f"\tactor_id: {actor_id}")
        if cause:
            lines.append(cause)
        super().__init__(actor_id, "\n".join(lines), False, preempted)

    @staticmethod
    def from_task_error(task_error: RayTaskError) -> ActorDiedError:
        """The error for an actor whose ``__init__`` raised ``task_error``."""
        return ActorDiedError(task_error)


class ActorUnavailableError(RayActorError):
    """The actor cannot be reached now (for example it is restarting) but may be later.

    The call may or may not have run on the actor.

    Args:
        error_message: What went wrong.
        actor_id: Hex id of the actor, when known.
    """

    def __init__(self, error_message: str, actor_id: str | None = None):
        error_msg = (f"The actor {actor_id} is unavailable: {error_message}. The task may or "
                     "may not have been executed on the actor.")
        super().__init__(actor_id, error_msg)


class RaySystemError(RayError):
    """raggio itself failed (for example a node manager was killed).

    Args:
        client_exc: The underlying error or its description.
        traceback_str: Its traceback, when there is one.
    """

    def __init__(self, client_exc: object, traceback_str: str | None = None):
        super().__init__(client_exc, traceback_str)
        self.client_exc = client_exc
        self.traceback_str = traceback_str

    def __str__(self) -> str:
        message = f"System error: {self.client_exc}"
        if self.traceback_str:
            message += f"\ntraceback: {self.traceback_str}"
        return message


class StreamingGeneratorReplayInconsistentError(RaySystemError):
    """A generator task ran again to rebuild lost items and yielded fewer than its first
    run did, so the items it did not yield again are lost (a generator must yield the same
    items each time it runs). Ray raises it for more items too; raggio checks for fewer."""


class ObjectStoreFullError(RayError):
    """The object store has no room for a new object, even after evicting and spilling.

    Args:
        message: What could not be stored, with sizes.
    """

    def __str__(self) -> str:
        return _join_nonempty(
            super().__str__(),
            "The local object store is full of objects that are still in scope and "
            "cannot be evicted. Tip: Use the `raggio memory` command to list active "
            "objects in the cluster.")


class OutOfDiskError(RayError):
    """The object store is full and the local disk too full to spill to.

    Args:
        message: What could not be stored, with sizes.
    """

    def __str__(self) -> str:
        return _join_nonempty(
            super().__str__(),
            "The object cannot be created because the local object store is full and "
            "the local disk is too full to spill objects to. Tip: Use `df` on this node "
            "to check disk usage and `raggio memory` to check object store memory usage.")


class OutOfMemoryError(RayError):
    """The node ran low on memory and killed this task's or actor's worker to free some.

    Args:
        message: Which worker was killed, and the node's memory figures.
    """

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NodeDiedError(RayError):
    """The node running the task or actor died or stopped answering health checks.

    Args:
        message: Which node, and how its death was noticed.
    """

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ObjectLostError(RayError):
    """Every copy of the object is gone (its node died) and it was not rebuilt.

    Args:
        object_ref_hex: Hex id of the object.
        owner_address: Address of the worker that owns the object, when known.
        call_site: Where the ObjectRef was created, when recorded.
    """

    def __init__(self, object_ref_hex: str, owner_address: str | None = None,
                 call_site: str | None = None):
        super().__init__(object_ref_hex, owner_address, call_site)
        self.object_ref_hex = object_ref_hex
        self.owner_address = owner_address
        self.call_site = call_site

    def _base_str(self) -> str:
        message = f"Failed to retrieve object {self.object_ref_hex}."
        if self.call_site:
            message += f" The ObjectRef was created at: {self.call_site}"
        return message

    def __str__(self) -> str:
        return (f"{self._base_str()}\n\nAll copies of {self.object_ref_hex} have been lost "
                f"due to node failure. Check cluster logs ({_SESSION_LOGS} by default) "
                "for more information about the failure.")


class ObjectFetchTimedOutError(ObjectLostError):
    """No node could be found that holds a copy of the object before the fetch timed out."""

    def __str__(self) -> str:
        return (f"{self._base_str()}\n\nFetch for object {self.object_ref_hex} timed out "
                "because no locations were found for the object. This may indicate a "
                "system-level bug.")


class ReferenceCountingAssertionError(ObjectLostError, AssertionError):
    """The object was deleted while a reference to it still existed: a raggio bug."""

    def __str__(self) -> str:
        return (f"{self._base_str()}\n\nThe object has already been deleted by the "
                "reference counting protocol. This should not happen.")


class OwnerDiedError(ObjectLostError):
    """The worker that owns the object (the one that called ``.remote()`` or ``put``) died."""

    def __str__(self) -> str:
        where = f" at address {self.owner_address}" if self.owner_address else ""
        return (f"{self._base_str()}\n\nThe object's owner has exited. This is the Python "
                "worker that first created the ObjectRef via `.remote()` or `ray.put()`. "
                f"Check the logs of the owner{where} in the session's logs directory "
                f"({_SESSION_LOGS} by default) for more information about the Python "
                "worker failure.")


class ObjectReconstructionFailedError(ObjectLostError):
    """The object was lost and rebuilding it from lineage is impossible.

    Args:
        object_ref_hex: Hex id of the object.
        reason: One of the ``*`` reason constants of this class (Ray's
            ``ErrorType`` names), or None when unknown.
        reason_message: Overrides the message that goes with ``reason``.
        owner_address: Address of the worker that owns the object, when known.
        call_site: Where the ObjectRef was created, when recorded.
    """

    MAX_ATTEMPTS_EXCEEDED = "OBJECT_UNRECONSTRUCTABLE_MAX_ATTEMPTS_EXCEEDED"
    LINEAGE_EVICTED = "OBJECT_UNRECONSTRUCTABLE_LINEAGE_EVICTED"
    PUT = "OBJECT_UNRECONSTRUCTABLE_PUT"
    RETRIES_DISABLED = "OBJECT_UNRECONSTRUCTABLE_RETRIES_DISABLED"
    BORROWED = "OBJECT_UNRECONSTRUCTABLE_BORROWED"
    TASK_CANCELLED = "OBJECT_UNRECONSTRUCTABLE_TASK_CANCELLED"

    REASON_MESSAGES = {
        MAX_ATTEMPTS_EXCEEDED: (
            "The object cannot be reconstructed because the maximum number of task "
            "retries has been exceeded. Consider increasing the number of retries using "
            "`@ray.remote(max_retries=N)`."),
        LINEAGE_EVICTED: (
            "The object cannot be reconstructed because its lineage has been evicted to "
            "reduce memory pressure."),
        PUT: (
            "The object cannot be reconstructed because it was created by ray.put(), "
            "which has no task lineage. To prevent this error, return the value from a "
            "task instead."),
        RETRIES_DISABLED: (
            "The object cannot be reconstructed because the task was created with "
            "max_retries=0. Consider enabling retries using `@ray.remote(max_retries=N)`."),
        BORROWED: (
            "The object cannot be reconstructed because it crossed an ownership boundary. "
            "Only the owner of an object can trigger reconstruction, but this worker "
            "borrowed the object from another worker."),
        TASK_CANCELLED: (
            "The object cannot be reconstructed because the task that would produce it "
            "was cancelled."),
    }

    def __init__(self, object_ref_hex: str, reason: str | None = None,
                 reason_message: str | None = None, owner_address: str | None = None,
                 call_site: str | None = None):
        super().__init__(object_ref_hex, owner_address, call_site)
        self.args = (object_ref_hex, reason, reason_message, owner_address, call_site)
        self.reason = reason
        self.reason_message = reason_message or self.REASON_MESSAGES.get(
            reason, "The object cannot be reconstructed.")

    def __str__(self) -> str:
        tag = f"[{self.reason}] " if self.reason else ""
        return f"{self._base_str()}\n\n{tag}{self.reason_message}"


class GetTimeoutError(RayError, TimeoutError):
    """``ray.get`` or ``ray.wait`` reached its ``timeout`` first; raised with a message."""


class PlasmaObjectNotAvailable(RayError):
    """An object was not available in the local object store within the given timeout."""


class AsyncioActorExit(RayError):
    """Raised inside an asyncio actor by ``ray.actor.exit_actor()`` to stop it on purpose."""


class RuntimeEnvSetupError(RayError):
    """The task's or actor's runtime environment could not be set up.

    Args:
        error_message: Why setup failed (for example the pip output).
    """

    def __init__(self, error_message: str | None = None):
        super().__init__(error_message)
        self.error_message = error_message

    def __str__(self) -> str:
        return _join_nonempty("Failed to set up runtime environment.", self.error_message)


class TaskPlacementGroupRemoved(RayError):
    """The placement group the task was scheduled into was removed."""

    def __str__(self) -> str:
        return "The placement group corresponding to this task has been removed."


class ActorPlacementGroupRemoved(RayError):
    """The placement group the actor was scheduled into was removed."""

    def __str__(self) -> str:
        return "The placement group corresponding to this Actor has been removed."


class PendingCallsLimitExceeded(RayError):
    """The caller has more calls queued on the actor than its ``max_pending_calls``."""


class TaskUnschedulableError(RayError):
    """The task can never be scheduled, for example its hard node affinity names a dead node.

    Args:
        error_message: Why not.
    """

    def __init__(self, error_message: str):
        super().__init__(error_message)
        self.error_message = error_message

    def __str__(self) -> str:
        return f"The task is not schedulable: {self.error_message}"


class ActorUnschedulableError(RayError):
    """The actor can never be scheduled, for example its hard node affinity names a dead node.

    Args:
        error_message: Why not.
    """

    def __init__(self, error_message: str):
        super().__init__(error_message)
        self.error_message = error_message

    def __str__(self) -> str:
        return f"The actor is not schedulable: {self.error_message}"


class ActorAlreadyExistsError(ValueError, RayError):
    """Creating a named actor whose name is taken in its namespace (a ValueError, as in Ray).

    Args:
        error_message: The name and namespace, and what to do.
    """

    def __init__(self, error_message: str):
        super().__init__(error_message)
        self.error_message = error_message

    def __str__(self) -> str:
        return self.error_message


class ActorHandleNotFoundError(ValueError, RayError):
    """``ray.kill`` got a handle unknown to this cluster, e.g. one from before ``ray.shutdown()``.

    Args:
        error_message: Which handle, and what to do.
    """

    def __init__(self, error_message: str):
        super().__init__(error_message)
        self.error_message = error_message

    def __str__(self) -> str:
        return self.error_message


class UnserializableException(RayError):
    """A remote exception arrived but could not be unpickled here; carries its text instead.

    Args:
        original_stack_trace: The exception and traceback as printed where it was raised.
    """

    def __init__(self, original_stack_trace: str):
        super().__init__(original_stack_trace)
        self.original_stack_trace = original_stack_trace

    def __str__(self) -> str:
        return ("Failed to deserialize exception. Refer to https://docs.ray.io/en/latest/"
                "ray-core/objects/serialization.html#custom-serializers-for-exceptions for "
                f"more information.\nOriginal exception:\n{self.original_stack_trace}")


class RpcError(RayError):
    """A request to another raggio process failed: unreachable, timed out, or rejected.

    Args:
        message: What failed, with the peer's address.
        rpc_code: A machine-readable code, when the peer sent one.
    """

    def __init__(self, message: str, rpc_code: int | None = None):
        super().__init__(message, rpc_code)
        self.message = message
        self.rpc_code = rpc_code

    def __str__(self) -> str:
        return self.message


class AuthenticationError(RpcError):
    """A connection was refused because the cluster token was wrong or missing.

    Retrying with the same token cannot help; the message says where to get the
    right one. (In Ray this derives from RayError directly; see the module
    docstring.)

    Args:
        message: Which peer refused or was refused, and how to pass the token.
    """


class ActorClassInheritanceException(TypeError):
    """A class statement named an actor class (``@remote`` class) as a base.

    Raised where the subclass is defined, as Ray raises it (``ray.actor``). Inherit from
    the plain class instead and decorate the subclass.
    """


class ClusterConfigError(ValueError):
    """A cluster file (``raggio up cluster.yaml``, ``raggio start --autoscaling-config``) is
    not one raggio can run: a key it does not know, a value of the wrong kind, a missing
    one, or a combination the launcher cannot do.

    Raised by ``raggio/launcher/cluster_config.py`` before anything starts. The message
    is one paragraph: the file and line, the key's path, what was expected, and "did you
    mean" for a misspelt key. Ray raises a plain ``ValueError`` (or jsonschema's error);
    this is one, so code that catches those catches it.
    """


# Internal: raised and caught inside raggio; users see them only through the
# public errors above, or as an RpcError.


class ClusterLaunchError(RuntimeError):
    """A cluster launcher command (``raggio up``, ``down``, ``exec``...) cannot go on: the
    cluster is busy with another launcher, has no head, or a node failed. The message names
    the cluster or node and what to do."""


class ConnectionLost(RpcError):
    """The connection closed, or broke, while a call on it was in flight or waiting to be sent."""


class NodeUnreachableError(RayError):
    """The cluster launcher could not open an SSH connection to a node before its deadline.

    Raised by ``raggio.launcher.ssh.connect``. The message names ``user@host:port``, what
    went wrong in words (refused, timed out, no route, key refused or unreadable) and the
    fix; its only argument is that message.
    """


class NodeCommandError(RayError):
    """A command or file copy that the cluster launcher ran on a node over SSH failed.

    Raised by ``raggio.launcher.ssh.SshSession`` for a copy that failed, a command that
    ran past its deadline or lost its connection (a command's non-zero exit is returned,
    not raised). The message names the node and the cause; its only argument is that
    message.
    """


class ActorExitRequested(SystemExit):
    """Raised in a plain or threaded actor's method by ``exit_actor()`` (or
    ``__ray_terminate__``): the worker ends the actor on purpose once it reaches the
    executor. A ``SystemExit``, as Ray's, so ``except Exception`` in user code lets it pass.

    Args:
        cause: Why the actor ends, as its callers will read it (None: the executor says
            which method called ``exit_actor()``).
    """

    def __init__(self, cause: str | None = None):
        super().__init__(cause)
        self.cause = cause


def _join_nonempty(*parts: str | None) -> str:
    return "\n".join(part for part in parts if part)
