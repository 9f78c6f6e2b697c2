"""What ``get`` raises when tasks fail: how soon, and the error's text, as in Ray.

The expected texts follow Ray's ``python/ray/tests/test_traceback.py``: the header
``ray::<task>() (pid=..., ip=...)`` where Python prints ``Traceback (most recent call
last):``, the user's frames with their source lines and nothing of raggio's, the chained
and dependency layouts. ``scrub`` blanks what changes from run to run, as Ray's test does.
"""

import re

import pytest

import raggio as ray
from raggio import test_utils
from raggio.exceptions import (RayActorError, RayTaskError, TaskCancelledError,
                               UnserializableException)


def scrub(text):
    text = re.sub(r"pid=[0-9]+,", "pid=XXX,", text.strip("\n"))
    text = re.sub(r"ip=[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+", "ip=YYY", text)
    text = re.sub(r"actor_id=[0-9a-f]+", "actor_id=AAA", text)
    text = re.sub(r"repr=.*\)", "repr=ZZZ)", text)
    text = re.sub(r"line [0-9]+,", "line ZZ,", text)
    return re.sub(r'"[^"]*"', '"FILE"', text)


# -- get raises as soon as one of its refs failed --


Gate = ray.remote(test_utils.Gate)


def test_get_of_a_list_raises_while_others_still_run(ray_start_regular):
    gate = Gate.options(max_concurrency=2).remote()
    hanging = gate.wait.remote()

    @ray.remote
    def fails():
        raise ValueError("failed early")

    with pytest.raises(ValueError, match="failed early"):
        ray.get([hanging, fails.remote(), hanging])
    gate.open.remote()
    ray.get(hanging)


def test_get_raises_an_error_that_was_ready_before_the_call(ray_start_regular):
    gate = Gate.options(max_concurrency=2).remote()
    hanging = gate.wait.remote()

    @ray.remote
    def fails():
        raise KeyError("ready error")

    failed = fails.remote()
    with pytest.raises(KeyError):
        ray.get(failed)
    with pytest.raises(KeyError):
        ray.get([hanging, failed])
    gate.open.remote()


def test_get_of_a_borrowed_failed_ref_does_not_wait_for_the_others(ray_start_regular):
    gate = Gate.options(max_concurrency=2).remote()

    @ray.remote
    def fails():
        raise ValueError("inner failure")

    @ray.remote
    def get_both(refs):
        try:
            ray.get(refs)
        except ValueError as error:
            return str(error).splitlines()[-1]

    hanging = gate.wait.remote()
    assert ray.get(get_both.remote([hanging, fails.remote()])) == "ValueError: inner failure"
    gate.open.remote()


def test_get_timeout_still_applies_without_errors(ray_start_regular):
    gate = Gate.remote()
    with pytest.raises(ray.exceptions.GetTimeoutError):
        ray.get([gate.wait.remote()], timeout=0.2)
    gate.open.remote()


# -- the error's text --


def test_task_error_text(ray_start_regular):
    def fail_with(value):
        raise ValueError(value)

    @ray.remote
    def f():
        c = 3 + 4
        return fail_with(c)

    with pytest.raises(ValueError) as info:
        ray.get(f.remote())
    assert scrub(str(info.value)) == """ray::f() (pid=XXX, ip=YYY)
  File "FILE", line ZZ, in f
    return fail_with(c)
  File "FILE", line ZZ, in fail_with
    raise ValueError(value)
ValueError: 7"""


def test_actor_method_error_text_names_the_actor(ray_start_regular):
    def fail_with(value):
        raise ValueError(value)

    @ray.remote
    class A:
        def f(self):
            return fail_with(7)

        def __repr__(self):
            return "A(seven)"

    a = A.remote()
    with pytest.raises(ValueError) as info:
        ray.get(a.f.remote())
    first_line = str(info.value).splitlines()[0]
    assert first_line.endswith(f"actor_id={a._actor_id.hex()}, repr=A(seven))")
    assert scrub(str(info.value)) == """ray::A.f() (pid=XXX, ip=YYY, actor_id=AAA, repr=ZZZ)
  File "FILE", line ZZ, in f
    return fail_with(7)
  File "FILE", line ZZ, in fail_with
    raise ValueError(value)
ValueError: 7"""


def test_actor_init_error_text(ray_start_regular):
    def fail_with(value):
        raise ValueError(value)

    @ray.remote
    class A:
        def __init__(self):
            fail_with(3)

        def ping(self):
            pass

    a = A.remote()
    with pytest.raises(RayActorError) as info:
        ray.get(a.ping.remote())
    assert scrub(str(info.value)) == (
        "The actor died because of an error raised in its creation task, "
        """ray::A.__init__() (pid=XXX, ip=YYY, actor_id=AAA, repr=ZZZ)
  File "FILE", line ZZ, in __init__
    fail_with(3)
  File "FILE", line ZZ, in fail_with
    raise ValueError(value)
ValueError: 3""")


def test_error_raised_by_a_get_inside_a_task_shows_both_tasks(ray_start_regular):
    @ray.remote
    def bar():
        return 1 / 0

    @ray.remote
    def foo():
        return ray.get(bar.remote())

    with pytest.raises(ZeroDivisionError) as info:
        ray.get(foo.remote())
    assert isinstance(info.value, RayTaskError)
    assert scrub(str(info.value)) == """ray::foo() (pid=XXX, ip=YYY)
  File "FILE", line ZZ, in foo
    return ray.get(bar.remote())
ray.exceptions.RayTaskError(ZeroDivisionError): ray::bar() (pid=XXX, ip=YYY)
  File "FILE", line ZZ, in bar
    return 1 / 0
ZeroDivisionError: division by zero"""


def test_failed_argument_layout(ray_start_regular):
    @ray.remote
    def f(a, b):
        pass

    @ray.remote
    def a(d):
        pass

    @ray.remote
    def b():
        raise ValueError("b failed")

    with pytest.raises(ValueError) as info:
        ray.get(f.remote(a.remote(b.remote()), b.remote()))
    assert scrub(str(info.value)) == """ray::f() (pid=XXX, ip=YYY)
  At least one of the input arguments for this task could not be computed:
ray.exceptions.RayTaskError: ray::a() (pid=XXX, ip=YYY)
  At least one of the input arguments for this task could not be computed:
ray.exceptions.RayTaskError: ray::b() (pid=XXX, ip=YYY)
  File "FILE", line ZZ, in b
    raise ValueError("FILE")
ValueError: b failed"""


def test_explicitly_chained_exception_shows_both_parts(ray_start_regular):
    @ray.remote
    def f():
        try:
            {}["key"]
        except KeyError as error:
            raise ValueError("lookup failed") from error

    with pytest.raises(ValueError) as info:
        ray.get(f.remote())
    assert scrub(str(info.value)) == """ray::f() (pid=XXX, ip=YYY)
  File "FILE", line ZZ, in f
    {}["FILE"]
KeyError: 'key'

The above exception was the direct cause of the following exception:

ray::f() (pid=XXX, ip=YYY)
  File "FILE", line ZZ, in f
    raise ValueError("FILE") from error
ValueError: lookup failed"""


# -- exceptions that cannot become a RayTaskError(<type>) or cannot be unpickled --


def test_exception_that_cannot_be_unpickled_arrives_as_its_text(ray_start_regular):
    class NoPickleError(OSError):
        def __init__(self, arg):
            pass

    @ray.remote
    def f():
        raise NoPickleError("asdf")

    with pytest.raises(UnserializableException) as info:
        ray.get(f.remote())
    lines = scrub(str(info.value)).splitlines()
    assert lines[:3] == [
        "Failed to deserialize exception. Refer to https://docs.ray.io/en/latest/ray-core/"
        "objects/serialization.html#custom-serializers-for-exceptions for more information.",
        "Original exception:",
        "ray.exceptions.RayTaskError: ray::f() (pid=XXX, ip=YYY)"]
    assert lines[-1].endswith("NoPickleError")


def test_exception_whose_class_cannot_be_subclassed_is_a_task_error(ray_start_regular):
    @ray.remote
    def g():
        class FinalError(Exception):
            def __init_subclass__(cls, **kwargs):
                raise TypeError("FinalError cannot be subclassed")

        raise FinalError("cannot combine")

    with pytest.raises(RayTaskError) as info:
        ray.get(g.remote())
    assert type(info.value) is RayTaskError
    assert str(info.value).endswith("FinalError: cannot combine")


def test_cancelled_argument_cancels_the_task(ray_start_regular):
    gate = Gate.remote()

    @ray.remote
    def wait_for(refs):
        return ray.get(refs[0])

    @ray.remote
    def use(x):
        return x

    first = wait_for.remote([gate.wait.remote()])
    second = use.remote(first)
    ray.cancel(first)
    for ref in (first, second):
        with pytest.raises(TaskCancelledError):
            ray.get(ref)
    gate.open.remote()
