"""``raggio.util``'s names as Ray programs use them: ActorPool, custom serializers,
named-actor listing, the node's address, and the submodules reached as attributes."""

import io
import os
import threading

import pytest

import raggio as ray
from raggio.util import ActorPool


@ray.remote
class Doubler:
    def double(self, value):
        return 2 * value

    def slow_double(self, value):
        import time
        time.sleep(2)
        return 2 * value

    def fail(self, _value):
        raise ValueError("boom")


@pytest.fixture(scope="module")
def actors(ray_start_regular_shared):
    return [Doubler.remote(), Doubler.remote()]


def test_map_returns_results_in_order(actors):
    pool = ActorPool(actors)
    assert list(pool.map(lambda a, v: a.double.remote(v), range(6))) == [0, 2, 4, 6, 8, 10]


def test_map_unordered_returns_every_result(actors):
    pool = ActorPool(actors)
    assert sorted(pool.map_unordered(lambda a, v: a.double.remote(v), range(5))) == [
        0, 2, 4, 6, 8]


def test_submit_get_next_and_idle_actors(actors):
    pool = ActorPool(actors[:1])
    assert pool.has_free() and not pool.has_next()
    pool.submit(lambda a, v: a.double.remote(v), 1)
    pool.submit(lambda a, v: a.double.remote(v), 2)  # waits for the one actor
    assert not pool.has_free() and pool.pop_idle() is None
    assert pool.get_next() == 2
    assert pool.get_next() == 4
    with pytest.raises(StopIteration, match="No more results to get"):
        pool.get_next()
    assert pool.pop_idle() == actors[0]
    assert not pool.has_free()
    pool.push(actors[0])
    with pytest.raises(ValueError, match="already belongs to current ActorPool"):
        pool.push(actors[0])


def test_get_next_after_get_next_unordered_is_refused(actors):
    pool = ActorPool(actors)
    pool.submit(lambda a, v: a.slow_double.remote(v), 1)
    pool.submit(lambda a, v: a.double.remote(v), 2)
    assert pool.get_next_unordered() == 4  # the second call, taken out of order
    with pytest.raises(ValueError, match="not allowed to call get_next"):
        pool.get_next()
    assert pool.get_next_unordered() == 2


def test_a_timeout_raises_and_a_task_error_reaches_the_caller(actors):
    pool = ActorPool(actors[:1])
    pool.submit(lambda a, v: a.fail.remote(v), 0)
    with pytest.raises(ValueError, match="boom"):
        pool.get_next()
    assert pool.has_free()  # the actor is alive: it went back to the pool

    @ray.remote
    def slow():
        import time
        time.sleep(10)

    pool = ActorPool(actors[:1])
    pool.submit(lambda a, v: slow.remote(), 0)
    with pytest.raises(TimeoutError, match="Timed out waiting for result"):
        pool.get_next(timeout=0.1)
    with pytest.raises(TimeoutError, match="has been ignored"):
        pool.get_next(timeout=0.1, ignore_if_timedout=True)
    assert not pool.has_next() and pool.has_free()


def test_register_serializer_applies_to_what_this_process_sends(ray_start_regular_shared):
    class Point:  # local, so pickled by value: the workers cannot import this test module
        def __init__(self, x):
            self.x = x
            self.lock = threading.Lock()  # not picklable on its own

    with pytest.raises(TypeError, match="Could not serialize"):
        ray.put(Point(1))
    ray.util.register_serializer(Point, serializer=lambda p: p.x,
                                 deserializer=lambda x: Point(x * 10))
    try:
        assert ray.get(ray.put(Point(1))).x == 10

        @ray.remote
        def read(point):
            return point.x  # the worker has no registration: the deserializer travels

        assert ray.get(read.remote(Point(2))) == 20
    finally:
        ray.util.deregister_serializer(Point)
    ray.util.deregister_serializer(Point)  # a second time does nothing
    with pytest.raises(TypeError, match="Could not serialize"):
        ray.put(Point(1))


def test_list_named_actors(ray_start_regular_shared):
    first = Doubler.options(name="first").remote()
    other = Doubler.options(name="other", namespace="elsewhere").remote()
    ray.get([first.double.remote(1), other.double.remote(1)])
    assert "first" in ray.util.list_named_actors()
    assert "other" not in ray.util.list_named_actors()
    everywhere = ray.util.list_named_actors(all_namespaces=True)
    assert {"name": "other", "namespace": "elsewhere"} in everywhere
    ray.kill(first)
    ray.kill(other)


def test_node_ip_address_and_submodules_as_attributes(ray_start_regular_shared):
    assert ray.util.get_node_ip_address() == ray.nodes()[0]["NodeManagerAddress"]
    assert ray.util.state.list_actors is not None
    from raggio.util.placement_group import VALID_PLACEMENT_GROUP_STRATEGIES
    assert VALID_PLACEMENT_GROUP_STRATEGIES == {"PACK", "SPREAD", "STRICT_PACK",
                                                "STRICT_SPREAD"}


def test_as_completed_and_map_unordered(ray_start_regular_shared):
    @ray.remote
    def square(x):
        return x * x

    refs = [square.remote(i) for i in range(7)]
    assert sorted(ray.util.as_completed(refs, chunk_size=3)) == [i * i for i in range(7)]
    assert set(ray.util.as_completed(refs, yield_obj_refs=True)) == set(refs)
    assert sorted(ray.util.map_unordered(square, range(7), backpressure_size=2,
                                         chunk_size=1)) == [i * i for i in range(7)]
    with pytest.raises(ValueError, match="chunk_size"):
        list(ray.util.as_completed(refs, num_returns=2))
    with pytest.raises(ValueError, match="backpressure_size must be positive"):
        list(ray.util.map_unordered(square, [1], backpressure_size=0))


def test_get_node_instance_id_is_what_the_launcher_set(ray_start_regular_shared):
    @ray.remote(runtime_env={"env_vars": {"RAY_CLOUD_INSTANCE_ID": "i-0abc"}})
    def instance_id():
        return ray.util.get_node_instance_id()

    assert ray.get(instance_id.remote()) == "i-0abc"
    assert ray.util.get_node_instance_id() == os.environ.get("RAY_CLOUD_INSTANCE_ID", "")


def test_log_once_is_true_once_per_key():
    from raggio.util.debug import reset_log_once
    assert ray.util.log_once("test_util:first") is True
    assert ray.util.log_once("test_util:first") is False
    assert ray.util.log_once("test_util:second") is True
    reset_log_once("test_util:first")
    assert ray.util.log_once("test_util:first") is True


def test_inspect_serializability_names_the_part_that_does_not_pickle():
    lock = threading.Lock()

    def uses_a_lock():
        with lock:
            return 1

    report = io.StringIO()
    serializable, failures = ray.util.inspect_serializability(uses_a_lock, name="uses_a_lock",
                                                              print_file=report)
    assert serializable is False
    (failure,) = failures
    assert failure.obj is lock and failure.path == ("uses_a_lock", "lock")
    assert "FAIL serialization" in report.getvalue() and "lock" in report.getvalue()

    class Holder:
        def __init__(self):
            self.name = "holder"
            self.guard = lock

        def method(self):
            return self.name

    _, failures = ray.util.inspect_serializability(Holder(), print_file=io.StringIO())
    assert [f.path for f in failures] == [("guard",)]  # not the bound method
    assert ray.util.inspect_serializability(lambda: 1, print_file=io.StringIO()) == (True, set())


def test_annotations_mark_and_document_an_api():
    from raggio.util.annotations import (AnnotationType, Deprecated, DeveloperAPI, PublicAPI,
                                         RayDeprecationWarning)

    @PublicAPI(stability="beta")
    def beta():
        """Do something."""

    @DeveloperAPI
    class Low:
        """A low-level thing."""

    @Deprecated(message="Use beta() instead.", warning=True)
    def old():
        return "old"

    assert beta._annotated_type is AnnotationType.PUBLIC_API
    assert "This API is in beta" in beta.__doc__
    assert Low._annotated_type is AnnotationType.DEVELOPER_API
    assert "DeveloperAPI" in Low.__doc__
    assert PublicAPI(beta) is beta
    with pytest.warns(RayDeprecationWarning, match="Use beta"):
        assert old() == "old"
    assert "DEPRECATED" in old.__doc__
    with pytest.raises(ValueError, match="stability"):
        PublicAPI(stability="gamma")


def test_deprecated_accelerator_names_warn():
    from raggio.util import accelerators
    from raggio.util.annotations import RayDeprecationWarning
    with pytest.warns(RayDeprecationWarning, match="use NVIDIA_A100"):
        assert accelerators.NVIDIA_TESLA_A100 == accelerators.NVIDIA_A100 == "A100"
