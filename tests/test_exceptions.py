"""raggio.exceptions: Ray's class tree, messages, pickling, and RayTaskError's dual classes."""

import inspect
import pickle
import threading
import traceback

import cloudpickle
import pytest

from raggio import exceptions as exc

# Direct bases of every public class, as in Ray 2.60 (python/ray/exceptions.py),
# except AuthenticationError, which raggio puts under RpcError.
EXPECTED_BASES = {
    "RayError": (Exception,),
    "TaskCancelledError": (exc.RayError,),
    "RayTaskError": (exc.RayError,),
    "LocalRayletDiedError": (exc.RayError,),
    "WorkerCrashedError": (exc.RayError,),
    "RayActorError": (exc.RayError,),
    "ActorDiedError": (exc.RayActorError,),
    "ActorUnavailableError": (exc.RayActorError,),
    "RaySystemError": (exc.RayError,),
    "StreamingGeneratorReplayInconsistentError": (exc.RaySystemError,),
    "ObjectStoreFullError": (exc.RayError,),
    "OutOfDiskError": (exc.RayError,),
    "OutOfMemoryError": (exc.RayError,),
    "NodeDiedError": (exc.RayError,),
    "ObjectLostError": (exc.RayError,),
    "ObjectFetchTimedOutError": (exc.ObjectLostError,),
    "ReferenceCountingAssertionError": (exc.ObjectLostError, AssertionError),
    "OwnerDiedError": (exc.ObjectLostError,),
    "ObjectReconstructionFailedError": (exc.ObjectLostError,),
    "GetTimeoutError": (exc.RayError, TimeoutError),
    "PlasmaObjectNotAvailable": (exc.RayError,),
    "AsyncioActorExit": (exc.RayError,),
    "RuntimeEnvSetupError": (exc.RayError,),
    "TaskPlacementGroupRemoved": (exc.RayError,),
    "ActorPlacementGroupRemoved": (exc.RayError,),
    "PendingCallsLimitExceeded": (exc.RayError,),
    "TaskUnschedulableError": (exc.RayError,),
    "ActorUnschedulableError": (exc.RayError,),
    "ActorAlreadyExistsError": (ValueError, exc.RayError),
    "ActorHandleNotFoundError": (ValueError, exc.RayError),
    "UnserializableException": (exc.RayError,),
    "RpcError": (exc.RayError,),
    "AuthenticationError": (exc.RpcError,),
    "ConnectionLost": (exc.RpcError,),
    "NodeUnreachableError": (exc.RayError,),
    "NodeCommandError": (exc.RayError,),
    "ActorExitRequested": (SystemExit,),
}


def make_task_error(cause: BaseException, function_name: str = "compute", **kwargs):
    try:
        raise cause
    except BaseException as raised:
        return exc.RayTaskError(function_name, traceback.format_exc(), raised,
                                ip="10.0.0.7", **kwargs)


SAMPLES = {
    exc.RayError: lambda: exc.RayError("something failed"),
    exc.TaskCancelledError: lambda: exc.TaskCancelledError("ab12", "by ray.cancel"),
    exc.RayTaskError: lambda: make_task_error(ValueError("bad input")),
    exc.LocalRayletDiedError: exc.LocalRayletDiedError,
    exc.WorkerCrashedError: exc.WorkerCrashedError,
    exc.RayActorError: lambda: exc.RayActorError("a1", "actor broke", True, True),
    exc.ActorDiedError: lambda: exc.ActorDiedError("its process exited", actor_id="a1"),
    exc.ActorUnavailableError: lambda: exc.ActorUnavailableError("restarting", "a1"),
    exc.RaySystemError: lambda: exc.RaySystemError("node manager killed", "tb"),
    exc.StreamingGeneratorReplayInconsistentError: lambda: (
        exc.StreamingGeneratorReplayInconsistentError("yielded 2 values, where its first run "
                                                      "yielded 3")),
    exc.ObjectStoreFullError: lambda: exc.ObjectStoreFullError("no room for 5 GiB"),
    exc.OutOfDiskError: lambda: exc.OutOfDiskError("disk full"),
    exc.OutOfMemoryError: lambda: exc.OutOfMemoryError("worker 12 killed at 95% memory"),
    exc.NodeDiedError: lambda: exc.NodeDiedError("node n1 missed 5 health checks"),
    exc.ObjectLostError: lambda: exc.ObjectLostError("ff01", "10.0.0.2:4000", "f.py:3"),
    exc.ObjectFetchTimedOutError: lambda: exc.ObjectFetchTimedOutError("ff02"),
    exc.ReferenceCountingAssertionError: lambda: exc.ReferenceCountingAssertionError("ff03"),
    exc.OwnerDiedError: lambda: exc.OwnerDiedError("ff04", "10.0.0.2:4000"),
    exc.ObjectReconstructionFailedError: lambda: exc.ObjectReconstructionFailedError(
        "ff05", exc.ObjectReconstructionFailedError.LINEAGE_EVICTED),
    exc.GetTimeoutError: lambda: exc.GetTimeoutError("Get timed out: some object(s) not ready."),
    exc.PlasmaObjectNotAvailable: exc.PlasmaObjectNotAvailable,
    exc.AsyncioActorExit: exc.AsyncioActorExit,
    exc.RuntimeEnvSetupError: lambda: exc.RuntimeEnvSetupError("pip failed"),
    exc.TaskPlacementGroupRemoved: exc.TaskPlacementGroupRemoved,
    exc.ActorPlacementGroupRemoved: exc.ActorPlacementGroupRemoved,
    exc.PendingCallsLimitExceeded: lambda: exc.PendingCallsLimitExceeded("too many calls"),
    exc.TaskUnschedulableError: lambda: exc.TaskUnschedulableError("node n1 is dead"),
    exc.ActorUnschedulableError: lambda: exc.ActorUnschedulableError("node n1 is dead"),
    exc.ActorAlreadyExistsError: lambda: exc.ActorAlreadyExistsError("name 'x' is taken"),
    exc.ActorHandleNotFoundError: lambda: exc.ActorHandleNotFoundError("unknown handle"),
    exc.UnserializableException: lambda: exc.UnserializableException("Traceback ...\nE: x"),
    exc.RpcError: lambda: exc.RpcError("Could not reach 10.0.0.5:6379", 14),
    exc.AuthenticationError: lambda: exc.AuthenticationError("wrong cluster token"),
    exc.ConnectionLost: lambda: exc.ConnectionLost("Connection to gcs lost"),
    exc.NodeUnreachableError: lambda: exc.NodeUnreachableError(
        "Could not connect to root@10.0.0.5:22 over SSH for 30 s: connection refused."),
    exc.NodeCommandError: lambda: exc.NodeCommandError(
        "Copying ./app to root@10.0.0.5:~/app over SFTP failed: permission denied"),
    exc.ClusterConfigError: lambda: exc.ClusterConfigError(
        "cluster.yaml:3: `provider.head_ip` is missing: add it."),
    exc.ClusterLaunchError: lambda: exc.ClusterLaunchError(
        "Cluster 'demo' has no head: start it with `raggio up cluster.yaml`."),
    exc.ActorExitRequested: lambda: exc.ActorExitRequested("exit_actor() was called"),
    exc.ActorClassInheritanceException: lambda: exc.ActorClassInheritanceException(
        "Inheriting from actor classes is not currently supported."),
}

#: Not RayErrors: raised at class definition, as Ray's ``ray.actor`` raises it (a TypeError);
#: and the cluster launcher's (a bad cluster file is a ValueError, as Ray's; a command that
#: cannot go on, a RuntimeError).
DEFINITION_ERRORS = {"ActorClassInheritanceException": (TypeError,),
                     "ClusterConfigError": (ValueError,),
                     "ClusterLaunchError": (RuntimeError,)}


def module_exception_classes():
    return {cls for _, cls in inspect.getmembers(exc, inspect.isclass)
            if issubclass(cls, BaseException) and cls.__module__ == exc.__name__}


def test_every_class_is_listed():
    assert ({cls.__name__ for cls in module_exception_classes()}
            == set(EXPECTED_BASES) | set(DEFINITION_ERRORS))
    assert module_exception_classes() == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(EXPECTED_BASES))
def test_hierarchy_matches_ray(name):
    cls = getattr(exc, name)
    assert cls.__bases__ == EXPECTED_BASES[name]
    if name == "ActorExitRequested":  # internal: a SystemExit that unwinds an actor's method
        return
    assert issubclass(cls, exc.RayError) and issubclass(cls, Exception)


@pytest.mark.parametrize("name", sorted(DEFINITION_ERRORS))
def test_definition_errors_are_not_ray_errors(name):
    cls = getattr(exc, name)
    assert cls.__bases__ == DEFINITION_ERRORS[name]
    assert not issubclass(cls, exc.RayError)


def test_get_timeout_error_is_a_timeout_error():
    with pytest.raises(TimeoutError, match="timed out"):
        raise exc.GetTimeoutError("Get timed out: some object(s) not ready.")


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps], ids=["pickle", "cloudpickle"])
@pytest.mark.parametrize("cls", sorted(SAMPLES, key=lambda cls: cls.__name__),
                         ids=lambda cls: cls.__name__)
def test_round_trips_through_pickle(cls, dumps):
    original = SAMPLES[cls]()
    copy = pickle.loads(dumps(original))
    assert type(copy) is cls
    assert str(copy) == str(original)
    assert comparable(copy.args) == comparable(original.args)
    assert comparable(vars(copy)) == comparable(vars(original))


def comparable(values):
    """``values`` with exceptions, which compare by identity, replaced by their type and text."""
    if isinstance(values, dict):
        return {key: comparable(value) for key, value in values.items()}
    if isinstance(values, tuple):
        return tuple(comparable(value) for value in values)
    if isinstance(values, BaseException):
        return type(values), str(values)
    return values


def test_task_error_text_shows_the_task_and_the_remote_traceback():
    error = make_task_error(ValueError("bad input"), pid=4321)
    text = str(error)
    first_line, _, rest = text.partition("\n")
    assert first_line == "ray::compute() (pid=4321, ip=10.0.0.7)"
    assert "Traceback (most recent call last)" not in text
    assert 'in make_task_error' in rest
    assert text.endswith("ValueError: bad input")


def test_task_error_text_names_the_actor():
    error = exc.RayTaskError("Counter.incr", "ValueError: x", ValueError("x"), pid=7,
                             actor_repr="Counter(3)", actor_id="a1b2")
    assert str(error).splitlines() == [
        "ray::Counter.incr() (pid=7, actor_id=a1b2, repr=Counter(3))", "ValueError: x"]


def test_task_error_hides_raggio_execution_frames():
    traceback_str = (
        "Traceback (most recent call last):\n"
        '  File "/site-packages/raggio/core/worker.py", line 10, in execute_task\n'
        "    result = function(*args)\n"
        "             ^^^^^^^^^^^^^^^\n"
        '  File "/home/me/job.py", line 3, in compute\n'
        "    raise ValueError('bad input')\n"
        "ValueError: bad input\n")
    text = str(exc.RayTaskError("compute", traceback_str, ValueError("bad input"), pid=1))
    assert text.splitlines() == [
        "ray::compute() (pid=1)",
        '  File "/home/me/job.py", line 3, in compute',
        "    raise ValueError('bad input')",
        "ValueError: bad input"]


def test_task_error_text_drops_position_markers_and_names_classes_by_their_ray_path():
    traceback_str = (
        "Traceback (most recent call last):\n"
        '  File "/home/me/job.py", line 3, in compute\n'
        "    return ray.get(inner.remote())\n"
        "           ^^^^^^^^^^^^^^^^^^^^^^^\n"
        "raggio.exceptions.RayTaskError(ZeroDivisionError): ray::inner() (pid=2)\n"
        '  File "/home/me/job.py", line 7, in inner\n'
        "    return 1 / 0\n"
        "           ~~^~~\n"
        "ZeroDivisionError: division by zero\n")
    text = str(exc.RayTaskError("compute", traceback_str, ZeroDivisionError(), pid=1))
    assert text.splitlines() == [
        "ray::compute() (pid=1)",
        '  File "/home/me/job.py", line 3, in compute',
        "    return ray.get(inner.remote())",
        "ray.exceptions.RayTaskError(ZeroDivisionError): ray::inner() (pid=2)",
        '  File "/home/me/job.py", line 7, in inner',
        "    return 1 / 0",
        "ZeroDivisionError: division by zero"]


def test_failed_dependency_text_shows_the_argument_error_under_the_task():
    inner = make_task_error(ValueError("bad input"), pid=2)
    text = str(exc.RayTaskError("outer", exc.failed_dependency_traceback(inner), inner.cause,
                                pid=1))
    lines = text.splitlines()
    assert lines[:3] == [
        "ray::outer() (pid=1)",
        "  At least one of the input arguments for this task could not be computed:",
        "ray.exceptions.RayTaskError: ray::compute() (pid=2, ip=10.0.0.7)"]
    assert lines[-1] == "ValueError: bad input"


def test_instanceof_cause_is_caught_as_either_type():
    error = make_task_error(ValueError("bad input"))
    dual = error.as_instanceof_cause()
    assert isinstance(dual, exc.RayTaskError) and isinstance(dual, ValueError)
    assert type(dual).__name__ == "RayTaskError(ValueError)"
    assert str(dual) == str(error)
    assert dual.args == ("bad input",)
    assert isinstance(dual.cause, ValueError) and str(dual.cause) == "bad input"
    with pytest.raises(ValueError):
        raise dual
    with pytest.raises(exc.RayTaskError):
        raise dual


def test_dual_class_is_made_once_per_cause_type():
    first = make_task_error(KeyError("a")).as_instanceof_cause()
    second = make_task_error(KeyError("b")).as_instanceof_cause()
    assert type(first) is type(second)
    assert first.args == ("a",) and second.args == ("b",)


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps], ids=["pickle", "cloudpickle"])
def test_dual_instance_round_trips_through_pickle(dumps):
    dual = make_task_error(ValueError("bad input"), pid=99).as_instanceof_cause()
    copy = pickle.loads(dumps(dual))
    assert type(copy) is type(dual)
    assert isinstance(copy, ValueError) and isinstance(copy, exc.RayTaskError)
    assert str(copy) == str(dual)
    assert "ray::compute() (pid=99, ip=10.0.0.7)" in str(copy)
    assert "ValueError: bad input" in str(copy)
    assert copy.function_name == "compute" and copy.pid == 99
    assert str(copy.cause) == "bad input"


class QuotaError(Exception):
    def __init__(self, user, limit):
        super().__init__(user, limit)
        self.user = user
        self.limit = limit


def test_dual_instance_reads_the_cause_attributes():
    dual = make_task_error(QuotaError("ann", 3)).as_instanceof_cause()
    assert isinstance(dual, QuotaError)
    assert (dual.user, dual.limit) == ("ann", 3)
    copy = pickle.loads(pickle.dumps(dual))
    assert (copy.user, copy.limit) == ("ann", 3)
    with pytest.raises(AttributeError):
        dual.no_such_attribute


class FinalError(Exception):
    def __init_subclass__(cls, **kwargs):
        raise TypeError("FinalError cannot be subclassed")


class KeywordOnlyError(Exception):
    def __new__(cls, *, code):
        return super().__new__(cls)

    def __init__(self, *, code):
        super().__init__()
        self.code = code


@pytest.mark.parametrize("cause", [FinalError("x"), KeywordOnlyError(code=3)],
                         ids=["unsubclassable", "new-rejects-args"])
def test_cause_that_cannot_be_combined_falls_back_to_the_task_error(cause):
    error = make_task_error(cause)
    assert error.as_instanceof_cause() is error
    assert error.cause is cause


def test_cause_that_is_a_base_of_task_error_needs_no_dual():
    error = make_task_error(Exception("plain"))
    assert error.as_instanceof_cause() is error


def test_nested_task_error_is_caught_as_the_innermost_user_exception():
    inner = make_task_error(ValueError("deep"), function_name="inner").as_instanceof_cause()
    outer = make_task_error(inner, function_name="outer")
    dual = outer.as_instanceof_cause()
    assert isinstance(dual, ValueError)
    assert str(dual).startswith("ray::outer()")
    assert pickle.loads(pickle.dumps(dual)).cause.function_name == "inner"


class LockHolderError(Exception):
    def __init__(self):
        super().__init__("holds a lock")
        self.lock = threading.Lock()


def test_unpicklable_cause_is_replaced_by_its_text():
    error = make_task_error(LockHolderError())
    assert type(error.cause) is exc.RayError
    assert "LockHolderError isn't serializable" in str(error.cause)
    assert "holds a lock" in str(error.cause)
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error)


def test_actor_died_error_messages():
    assert str(exc.ActorDiedError()) == exc.ActorDiedError.BASE_ERROR_MSG
    died = exc.ActorDiedError("The actor was killed by ray.kill().", actor_id="a1")
    assert str(died).splitlines() == [
        exc.ActorDiedError.BASE_ERROR_MSG, "\tactor_id: a1", "The actor was killed by ray.kill()."]
    assert not died.actor_init_failed and died.actor_id == "a1"
    init_error = make_task_error(ValueError("bad arg"), function_name="Counter.__init__",
                                 actor_id="a2")
    from_init = exc.ActorDiedError.from_task_error(init_error)
    assert from_init.actor_init_failed and from_init.actor_id == "a2"
    assert "raised in its creation task" in str(from_init) and "bad arg" in str(from_init)
    assert isinstance(from_init, exc.RayActorError)


def test_messages_name_what_failed():
    assert "ff04" in str(exc.OwnerDiedError("ff04")) and "owner has exited" in str(
        exc.OwnerDiedError("ff04"))
    assert str(exc.ObjectLostError("ff01")).startswith("Failed to retrieve object ff01.")
    assert "session_latest/logs" in str(exc.WorkerCrashedError())
    assert str(exc.WorkerCrashedError()).startswith(
        "The worker died unexpectedly while executing this task.")
    assert str(exc.TaskCancelledError("t1")) == "Task: t1 was cancelled."
    assert str(exc.TaskCancelledError()) == "This task or one of its dependencies was cancelled."
    assert str(exc.ObjectStoreFullError("no room")).startswith("no room\nThe local object store")
    assert str(exc.ObjectStoreFullError()).startswith("The local object store")
    assert "[OBJECT_UNRECONSTRUCTABLE_MAX_ATTEMPTS_EXCEEDED]" in str(
        exc.ObjectReconstructionFailedError(
            "ff05", exc.ObjectReconstructionFailedError.MAX_ATTEMPTS_EXCEEDED))
    assert str(exc.ActorUnavailableError("restarting", "a1")).startswith(
        "The actor a1 is unavailable: restarting.")
