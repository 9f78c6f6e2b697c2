"""The user's class stays visible through its actor class, as in Ray's test_actor.py.

Class and static attributes (inherited ones too), class and static methods,
the methods' names, docs and signatures on the actor class and on a handle,
``dir()`` for autocompletion, and Ray's errors for calling an actor class or
subclassing one.
"""

import inspect

import pytest

import raggio as ray
from raggio.actor import ActorClassInheritanceException


def test_actor_classes_cannot_be_called_or_subclassed():
    class NonActorBase:
        def __init__(self):
            pass

    @ray.remote
    class ActorBase(NonActorBase):  # inheriting from a plain class is fine
        def __init__(self):
            pass

    with pytest.raises(TypeError, match="Actors cannot be instantiated directly. Instead of "
                                        r"'ActorBase\(\)', use 'ActorBase.remote\(\)'."):
        ActorBase()
    with pytest.raises(ActorClassInheritanceException,
                       match="Inheriting from actor classes is not currently supported."):
        class Derived(ActorBase):
            def __init__(self):
                pass
    assert issubclass(ActorClassInheritanceException, TypeError)
    assert isinstance(ActorBase, ray.actor.ActorClass)


def test_the_user_class_shows_through_the_actor_class():
    class Grandparent:
        GRANDPARENT = 2

        @staticmethod
        def grandparent_static():
            return 1

    @ray.remote
    class Foo(Grandparent):
        """Foo's doc."""
        X = 3

        def __init__(self, x=0):
            self.x = x

        @classmethod
        def factory(cls, x):
            return cls(x)

        def get_x(self):
            return self.x

        def method_one(self, a: int, b: str = "b", *, c=None) -> None:
            """Method one's doc."""

        def __eq__(self, other):  # for the user's objects; the actor class stays hashable
            return True

    assert (Foo.X, Foo.GRANDPARENT, Foo.grandparent_static()) == (3, 2, 1)
    assert Foo.__name__ == "Foo" and Foo.__doc__ == "Foo's doc."
    # A class method that calls cls(...) makes a plain local object, as in Ray.
    assert Foo.factory(1).get_x() == 1
    assert Foo.method_one.__name__ == "method_one"
    assert Foo.method_one.__doc__ == "Method one's doc."
    # Read through the actor class object, as in Ray, the method comes bound (no self).
    assert str(inspect.signature(Foo.method_one)) == "(a: int, b: str = 'b', *, c=None) -> None"
    assert {Foo, Foo.options(num_cpus=0)} and Foo.options(name="x").X == 3
    assert {name for name in dir(Foo) if not name.startswith("_")} == {
        "GRANDPARENT", "X", "bind", "factory", "get_x", "grandparent_static", "method_one",
        "options", "remote"}


def test_class_and_static_attributes_inside_the_actor(ray_start_regular_shared):
    class Grandparent:
        GRANDPARENT = 2

        @staticmethod
        def grandparent_static():
            assert Grandparent.GRANDPARENT == 2
            return 1

    class Parent1(Grandparent):
        PARENT1 = 6

        @staticmethod
        def parent1_static():
            assert Parent1.PARENT1 == 6
            return 2

    class Parent2:
        PARENT2 = 7

    @ray.remote
    class TestActor(Parent1, Parent2):
        X = 3

        @classmethod
        def f(cls):
            assert TestActor.GRANDPARENT == 2
            assert TestActor.PARENT1 == 6
            assert TestActor.PARENT2 == 7
            assert TestActor.X == 3
            return 4

        @staticmethod
        def s():
            return TestActor.grandparent_static() + TestActor.parent1_static()

        def g(self):
            assert TestActor.GRANDPARENT == 2
            assert TestActor.PARENT1 == 6
            assert TestActor.PARENT2 == 7
            assert TestActor.X == 3
            return TestActor.f() + TestActor.s()

    actor = TestActor.remote()
    assert ray.get(actor.g.remote()) == 7
    assert ray.get(actor.s.remote()) == 3  # static and class methods are actor methods too
    assert ray.get(actor.f.remote()) == 4


def test_handles_show_the_methods(ray_start_regular_shared):
    @ray.remote
    class Foo:
        def method_one(self, a, b=1, *rest, c="x", **extra) -> None:
            """Method one's doc."""

        def _private(self):
            pass

    handle = Foo.remote()
    assert [name for name in dir(handle) if not name.startswith("_")] == ["method_one"]
    assert {name for name in dir(handle.method_one) if not name.startswith("_")} == {
        "options", "remote"}
    method = handle.method_one
    assert method.__name__ == "method_one"
    assert repr(method) == "ActorMethod(Foo.method_one)"
    assert method.__doc__ == "Method one's doc."
    assert str(inspect.signature(method)) == "(a, b=1, *rest, c='x', **extra)"
    with pytest.raises(TypeError, match="Actor methods cannot be called directly"):
        method()

    @ray.remote
    def through_a_task(handle):  # a handle that crossed processes knows the same
        method = handle.method_one
        return method.__name__, method.__doc__, str(inspect.signature(method))

    assert ray.get(through_a_task.remote(handle)) == (
        "method_one", "Method one's doc.", "(a, b=1, *rest, c='x', **extra)")


def test_method_decorator_arguments():
    with pytest.raises(AssertionError, match="Unexpected keyword argument to @ray.method: "
                                             "'num_cpus'"):
        ray.method(num_cpus=1)
    with pytest.raises(AssertionError, match="The @ray.method decorator must be applied using "
                                             "no arguments or at least one of the arguments"):
        ray.method()
    with pytest.raises(ValueError, match="The keyword 'num_returns' only accepts None"):
        ray.method(num_returns=-1)

    @ray.remote
    class Foo:
        @ray.method  # bare, as Ray allows
        def plain(self):
            pass

    assert Foo.plain.__name__ == "plain"
