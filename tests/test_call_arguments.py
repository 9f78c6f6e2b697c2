"""Arguments are bound to the signature at ``.remote()``, as in Ray.

A call that does not fit the function, the actor's constructor or the actor
method raises Python's own TypeError in the caller, before anything is
submitted; a call that fits runs.
"""

import pytest

import raggio as ray


@ray.remote
def two(a, b):
    return a + b


@ray.remote
def mixed(a, b=1, *rest, c, d=2, **extra):
    return a, b, rest, c, d, extra


@ray.remote
def positional_only(a, /, b):
    return a, b


@ray.remote
class Counter:
    def __init__(self, start, *, step=1):
        self.value = start
        self.step = step

    def add(self, times):
        self.value += self.step * times
        return self.value

    def read(self):
        return self.value

    @staticmethod
    def double(x):
        return 2 * x

    @classmethod
    def name(cls, suffix=""):
        return cls.__name__ + suffix


@ray.remote
class NoInit:
    def ping(self):
        return "pong"


@pytest.mark.parametrize("args, kwargs, message", [
    ((1,), {}, "missing a required argument: 'b'"),
    ((1, 2, 3), {}, "too many positional arguments"),
    ((1, 2), {"c": 3}, "got an unexpected keyword argument 'c'"),
    ((1, 2), {"a": 3}, "multiple values for argument 'a'"),
])
def test_task_with_wrong_arguments_raises_at_submission(ray_start_regular_shared, args, kwargs,
                                                         message):
    with pytest.raises(TypeError) as info:
        two.remote(*args, **kwargs)
    assert str(info.value) == message


def test_task_arguments_that_fit_run(ray_start_regular_shared):
    assert ray.get(two.remote(1, b=2)) == 3
    assert ray.get(two.remote(a=1, b=2)) == 3
    assert ray.get(mixed.remote(1, 2, 3, c=4, e=5)) == (1, 2, (3,), 4, 2, {"e": 5})
    assert ray.get(positional_only.remote(1, b=2)) == (1, 2)


def test_keyword_only_and_positional_only_parameters(ray_start_regular_shared):
    with pytest.raises(TypeError, match="missing a required argument: 'c'"):
        mixed.remote(1)
    with pytest.raises(TypeError, match="positional only, but was passed as a keyword"):
        positional_only.remote(a=1, b=2)


def test_actor_constructor_arguments_are_checked(ray_start_regular_shared):
    with pytest.raises(TypeError, match="missing a required argument: 'start'"):
        Counter.remote()
    with pytest.raises(TypeError, match="too many positional arguments"):
        Counter.remote(1, 2)
    with pytest.raises(TypeError, match="too many positional arguments"):
        NoInit.remote(1)
    counter = Counter.remote(10, step=2)
    assert ray.get(counter.add.remote(1)) == 12


def test_actor_method_arguments_are_checked(ray_start_regular_shared):
    counter = Counter.remote(0)
    with pytest.raises(TypeError, match="missing a required argument: 'times'"):
        counter.add.remote()
    with pytest.raises(TypeError, match="too many positional arguments"):
        counter.read.remote(1)
    with pytest.raises(TypeError, match="got an unexpected keyword argument 'n'"):
        counter.add.options(num_returns=1).remote(1, n=1)
    assert ray.get(counter.add.remote(times=3)) == 3
    assert ray.get(counter.double.remote(4)) == 8  # no self to skip on a static method
    assert ray.get(counter.name.remote("!")) == "Counter!"
    with pytest.raises(TypeError, match="too many positional arguments"):
        counter.double.remote(1, 2)
    # The call that failed at submission never reached the actor.
    assert ray.get(counter.read.remote()) == 3


def test_handles_passed_to_tasks_check_arguments_too(ray_start_regular_shared):
    @ray.remote
    def misuse(handle):
        try:
            handle.add.remote(1, 2)
        except TypeError as exc:
            return str(exc)
        return "submitted"

    counter = Counter.remote(0)
    assert ray.get(misuse.remote(counter)) == "too many positional arguments"


def test_a_method_without_self_is_refused_at_decoration(ray_start_regular_shared):
    class Broken:
        def no_self():
            pass

    with pytest.raises(ValueError, match="Methods must take a 'self' argument"):
        ray.remote(Broken)
