"""Generator tasks and actor methods, as a Ray user meets them.

Streaming (``ObjectRefGenerator``, the default for generator functions): refs come as
the worker yields; errors mid-stream; cancellation; worker death and retries;
backpressure. Dynamic (``DynamicObjectRefGenerator``) and ``num_returns=N`` generators.
What the tasks run refers only to the standard library or names defined in the test
(workers cannot import this module).
"""

import asyncio
import os
import time

import pytest

import raggio as ray
from raggio.test_utils import wait_until


def test_a_generator_task_streams_its_values(ray_start_regular_shared):
    @ray.remote
    def gen(n):
        for i in range(n):
            yield i * 10

    refs = gen.remote(4)
    assert isinstance(refs, ray.ObjectRefGenerator)
    assert [ray.get(ref) for ref in refs] == [0, 10, 20, 30]
    with pytest.raises(StopIteration):
        next(refs)
    assert refs.is_finished()
    assert ray.get(refs.completed()) is None


def test_refs_arrive_before_the_task_ends(ray_start_regular_shared, tmp_path):
    release = tmp_path / "release"

    @ray.remote
    def gen(path):
        import time
        yield "first"
        while not os.path.exists(path):
            time.sleep(0.01)
        yield "second"

    refs = gen.remote(str(release))
    assert ray.get(next(refs)) == "first"  # while the task still waits for the file
    assert not refs.is_finished()
    assert refs._next_sync(timeout_s=0.05).is_nil()
    release.write_text("")
    assert ray.get(next(refs)) == "second"
    assert list(refs) == []


def test_large_values_are_streamed_through_the_store(ray_start_regular_shared):
    np = pytest.importorskip("numpy")

    @ray.remote
    def gen():
        for i in range(3):
            yield np.full(200_000, i, dtype=np.int64)

    values = [ray.get(ref) for ref in gen.remote()]
    assert [int(v[0]) for v in values] == [0, 1, 2]
    assert all(v.shape == (200_000,) for v in values)


def test_async_iteration_and_wait(ray_start_regular_shared):
    @ray.remote
    def gen():
        yield 1
        yield 2

    async def consume():
        return [await ref async for ref in gen.remote()]

    assert asyncio.run(consume()) == [1, 2]
    refs = gen.remote()
    ready, not_ready = ray.wait([refs], timeout=30)
    assert ready == [refs] and not_ready == []
    assert ray.get(next(refs)) == 1
    assert ray.get(refs) is refs  # as Ray: get passes a generator through


def test_a_generator_cannot_be_passed_to_a_task(ray_start_regular_shared):
    @ray.remote
    def gen():
        yield 1

    @ray.remote
    def take(x):
        return x

    refs = gen.remote()
    with pytest.raises(TypeError, match="generator"):
        take.remote(refs)


def test_generator_tasks_show_in_the_task_list(ray_start_regular_shared):
    from raggio.util.state import list_tasks

    @ray.remote
    def listed_generator():
        yield 1

    assert [ray.get(ref) for ref in listed_generator.remote()] == [1]
    wait_until(lambda: any(t["name"] == "listed_generator" and t["state"] == "FINISHED"
                           for t in list_tasks()), what="the generator task, FINISHED")


def test_actor_generator_methods_stream(ray_start_regular_shared):
    @ray.remote
    class Source:
        def __init__(self):
            self.calls = 0

        def numbers(self, n):
            self.calls += 1
            for i in range(n):
                yield i

        @ray.method(num_returns=2)
        def pair(self):
            yield "a"
            yield "b"

        def count(self):
            return self.calls

    source = Source.remote()
    gen = source.numbers.remote(3)
    assert isinstance(gen, ray.ObjectRefGenerator)
    assert [ray.get(ref) for ref in gen] == [0, 1, 2]
    assert ray.get(list(source.pair.remote())) == ["a", "b"]
    assert ray.get(source.count.remote()) == 1
    streamed = source.numbers.options(num_returns="streaming").remote(2)
    assert [ray.get(ref) for ref in streamed] == [0, 1]
    dynamic = ray.get(source.numbers.options(num_returns="dynamic").remote(2))
    assert [ray.get(ref) for ref in dynamic] == [0, 1]


def test_async_actor_async_generators(ray_start_regular_shared):
    @ray.remote
    class Ticker:
        async def ticks(self, n):
            for i in range(n):
                await asyncio.sleep(0)
                yield f"tick {i}"

        def plain(self, n):
            yield from range(n)

    ticker = Ticker.remote()
    assert [ray.get(ref) for ref in ticker.ticks.remote(3)] == ["tick 0", "tick 1", "tick 2"]
    assert [ray.get(ref) for ref in ticker.plain.remote(2)] == [0, 1]

    async def consume():
        return [await ref async for ref in ticker.ticks.remote(2)]

    assert asyncio.run(consume()) == ["tick 0", "tick 1"]


def test_a_task_consumes_a_generator_it_started(ray_start_regular_shared):
    @ray.remote
    def gen(n):
        yield from range(n)

    @ray.remote
    def total(n):
        return sum(ray.get(ref) for ref in gen.remote(n))

    assert ray.get(total.remote(5)) == 10


def test_an_error_mid_stream_comes_after_the_values(ray_start_regular_shared):
    @ray.remote(max_retries=0)
    def gen():
        yield 1
        yield 2
        raise ValueError("broken stream")

    refs = gen.remote()
    first, second = next(refs), next(refs)
    failed = next(refs)
    with pytest.raises(ValueError, match="broken stream") as info:
        ray.get(failed)
    assert isinstance(info.value, ray.exceptions.RayTaskError)
    with pytest.raises(StopIteration):
        next(refs)
    assert refs.is_finished()
    assert ray.get([first, second]) == [1, 2]  # what came before stays valid
    with pytest.raises(ray.exceptions.RayTaskError):
        ray.get(refs.completed())


def test_a_generator_that_yields_the_wrong_count_for_num_returns(ray_start_regular_shared):
    @ray.remote(num_returns=3)
    def gen():
        yield 1
        yield 2

    refs = gen.remote()
    with pytest.raises(ValueError, match="num_returns=3"):
        ray.get(refs[0])


def test_a_function_that_does_not_yield_with_streaming(ray_start_regular_shared):
    @ray.remote(num_returns="streaming")
    def not_a_generator():
        return 1

    refs = not_a_generator.remote()
    with pytest.raises(TypeError, match="not a generator"):
        ray.get(next(refs))


def test_cancelling_a_running_stream(ray_start_regular_shared):
    @ray.remote
    def gen():
        import time
        yield "started"
        time.sleep(60)
        yield "never"

    refs = gen.remote()
    assert ray.get(next(refs)) == "started"
    ray.cancel(refs)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(next(refs))
    with pytest.raises(StopIteration):
        next(refs)


def test_cancelling_an_async_actor_stream(ray_start_regular_shared):
    @ray.remote
    class Slow:
        async def gen(self):
            yield "started"
            await asyncio.sleep(60)
            yield "never"

    slow = Slow.remote()
    refs = slow.gen.remote()
    assert ray.get(next(refs)) == "started"
    ray.cancel(refs)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(next(refs))
    assert list(refs) == []


def test_a_worker_dying_mid_stream_fails_the_rest(ray_start_regular_shared, tmp_path):
    got_first = tmp_path / "got-first"

    @ray.remote(max_retries=0)
    def gen(path):
        import time
        yield "before"
        while not os.path.exists(path):  # die once the first value has arrived
            time.sleep(0.01)
        os._exit(1)

    refs = gen.remote(str(got_first))
    assert ray.get(next(refs)) == "before"
    got_first.write_text("")
    with pytest.raises(ray.exceptions.WorkerCrashedError):
        ray.get(next(refs))
    with pytest.raises(StopIteration):
        next(refs)


def test_a_retried_stream_skips_what_was_reported(ray_start_regular_shared, tmp_path):
    marker = str(tmp_path / "died-once")

    @ray.remote(max_retries=1)
    def gen(path):
        yield 0
        yield 1
        if not os.path.exists(path):
            open(path, "w").close()
            os._exit(1)
        yield 2

    assert [ray.get(ref) for ref in gen.remote(marker)] == [0, 1, 2]


def test_a_stream_retried_on_an_application_error(ray_start_regular_shared, tmp_path):
    marker = str(tmp_path / "failed-once")

    @ray.remote(max_retries=1, retry_exceptions=True)
    def gen(path):
        yield "a"
        if not os.path.exists(path):
            open(path, "w").close()
            raise RuntimeError("first attempt fails")
        yield "b"

    assert [ray.get(ref) for ref in gen.remote(marker)] == ["a", "b"]


def test_dynamic_generators_return_one_ref_to_their_refs(ray_start_regular_shared):
    @ray.remote(num_returns="dynamic")
    def gen(n):
        for i in range(n):
            yield i * i

    ref = gen.remote(4)
    assert isinstance(ref, ray.ObjectRef)
    dynamic = ray.get(ref)
    assert isinstance(dynamic, ray.DynamicObjectRefGenerator)
    assert len(dynamic) == 4
    assert [ray.get(item) for item in dynamic] == [0, 1, 4, 9]


def test_dynamic_generator_refs_can_be_passed_to_tasks(ray_start_regular_shared):
    np = pytest.importorskip("numpy")

    @ray.remote(num_returns="dynamic")
    def gen():
        yield np.ones(200_000)
        yield "small"

    @ray.remote
    def describe(value):
        return type(value).__name__

    refs = list(ray.get(gen.remote()))
    assert ray.get([describe.remote(r) for r in refs]) == ["ndarray", "str"]


def test_a_dynamic_generator_that_raises(ray_start_regular_shared):
    """As Ray: the values it yielded, then a ref to its error."""
    @ray.remote(num_returns="dynamic", max_retries=0)
    def gen():
        yield 1
        raise KeyError("no more")

    first, error = ray.get(gen.remote())
    assert ray.get(first) == 1
    with pytest.raises(KeyError):
        ray.get(error)


@pytest.mark.parametrize("yielded", [2, 3, 4])
def test_a_generator_with_a_number_of_returns(ray_start_regular_shared, yielded):
    """As Ray: its first values are the returns; too few is an error, more are dropped."""
    @ray.remote(max_retries=0)
    def gen(n):
        yield from range(n)

    refs = gen.options(num_returns=3).remote(yielded)
    if yielded < 3:
        with pytest.raises(ValueError):
            ray.get(refs)
    else:
        assert ray.get(refs) == [0, 1, 2]
    assert ray.get(gen.options(num_returns=1).remote(1)) == 0


def test_a_generator_with_a_number_of_returns_that_raises(ray_start_regular_shared):
    @ray.remote(max_retries=0)
    def gen():
        yield "first"
        raise KeyError("no more")

    first, second, third = gen.options(num_returns=3).remote()
    assert ray.get(first) == "first"
    for ref in (second, third):
        with pytest.raises(KeyError):
            ray.get(ref)


def _read_progress(path) -> int:
    return int(path.read_text() or -1) if path.exists() else -1


@pytest.mark.parametrize("runner", ["task", "actor", "async actor"])
def test_backpressure_pauses_the_worker(ray_start_regular_shared, tmp_path, runner):
    progress = tmp_path / "progress"

    def numbers(path):
        for i in range(5):
            with open(path, "w") as f:
                f.write(str(i))
            yield i

    @ray.remote
    class Source:
        def numbers(self, path):
            yield from numbers(path)

    @ray.remote
    class AsyncSource:
        async def numbers(self, path):
            for value in numbers(path):
                yield value

    method = {"task": lambda: ray.remote(numbers), "actor": lambda: Source.remote().numbers,
              "async actor": lambda: AsyncSource.remote().numbers}[runner]()
    refs = method.options(_generator_backpressure_num_objects=2).remote(str(progress))
    wait_until(lambda: _read_progress(progress) == 1, what="two items yielded")
    # A negative condition has nothing to wait for: give the worker a moment in which it
    # would have gone on, and check that it stayed paused with two items unconsumed.
    time.sleep(0.3)
    assert _read_progress(progress) == 1
    assert ray.get(next(refs)) == 0
    wait_until(lambda: _read_progress(progress) == 2, what="a third item once one was taken")
    assert [ray.get(ref) for ref in refs] == [1, 2, 3, 4]


def test_dropping_a_generator_frees_the_values_not_taken(ray_start_regular_shared):
    from raggio.util.state import list_objects

    @ray.remote
    def gen():
        for i in range(3):
            yield str(i) * 200_000  # in the store

    refs = gen.remote()
    ray.get(refs.completed())
    task_hex = refs.completed().hex()[:48]
    kept = next(refs)

    completion_hex = refs.completed().hex()

    def items_alive():
        return sorted(o["object_id"] for o in list_objects()
                      if o["object_id"][:48] == task_hex and o["object_id"] != completion_hex)

    assert len(items_alive()) == 3
    del refs
    wait_until(lambda: items_alive() == [kept.hex()], what="the items not taken to be freed")
    assert ray.get(kept) == "0" * 200_000


def test_wait_and_next_ready_on_a_generator_still_running(ray_start_regular_shared, tmp_path):
    release = tmp_path / "release"

    @ray.remote
    def gen(path):
        import time
        while not os.path.exists(path):
            time.sleep(0.01)
        yield "late"

    refs = gen.remote(str(release))
    other = ray.put("ready")
    assert not refs.next_ready()
    ready, not_ready = ray.wait([refs, other], num_returns=2, timeout=0.2)
    assert ready == [other] and not_ready == [refs]
    release.write_text("")
    ready, _ = ray.wait([refs], timeout=30)
    assert ready == [refs] and refs.next_ready()
    assert ray.get(next(refs)) == "late"


def test_an_actor_dying_mid_stream_fails_the_rest(ray_start_regular_shared):
    @ray.remote
    class Doomed:
        def gen(self):
            import time
            yield "before"
            time.sleep(60)

    doomed = Doomed.remote()
    refs = doomed.gen.remote()
    assert ray.get(next(refs)) == "before"
    ray.kill(doomed)
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(next(refs))
    with pytest.raises(StopIteration):
        next(refs)


def test_threaded_actors_stream_several_calls_at_once(ray_start_regular_shared):
    @ray.remote(max_concurrency=2)
    class Relay:
        def __init__(self):
            import threading
            self.both_started = threading.Barrier(2, timeout=30)

        def gen(self, name):
            yield f"{name} 0"
            self.both_started.wait()  # only passes if the two calls run at once
            yield f"{name} 1"

    relay = Relay.remote()
    first, second = relay.gen.remote("a"), relay.gen.remote("b")
    assert ray.get([next(first), next(second)]) == ["a 0", "b 0"]
    assert [ray.get(r) for r in first] + [ray.get(r) for r in second] == ["a 1", "b 1"]
