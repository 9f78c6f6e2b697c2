"""``raggio.util.queue.Queue``: an actor-held FIFO shared by drivers, tasks and actors."""

import asyncio

import pytest

import raggio as ray
from raggio.util.queue import Empty, Full, Queue


def test_put_get_in_order_across_tasks(ray_start_regular_shared):
    queue = Queue()
    assert queue.empty() and queue.qsize() == 0 and len(queue) == 0

    @ray.remote
    def produce(q, n):
        for i in range(n):
            q.put(i)

    ray.get(produce.remote(queue, 5))
    assert queue.size() == 5
    assert [queue.get() for _ in range(5)] == [0, 1, 2, 3, 4]
    queue.shutdown()


def test_bounded_queue_nowait_and_timeouts(ray_start_regular_shared):
    queue = Queue(maxsize=2)
    queue.put_nowait(1)
    queue.put(2, block=False)
    assert queue.full()
    with pytest.raises(Full):
        queue.put_nowait(3)
    with pytest.raises(Full):
        queue.put(3, timeout=0.1)
    assert queue.get_nowait() == 1
    assert queue.get(block=False) == 2
    with pytest.raises(Empty):
        queue.get_nowait()
    with pytest.raises(Empty):
        queue.get(timeout=0.1)
    with pytest.raises(ValueError, match="non-negative"):
        queue.get(timeout=-1)
    queue.shutdown(force=True)
    assert queue.actor is None


def test_batches_are_all_or_nothing(ray_start_regular_shared):
    queue = Queue(maxsize=3)
    with pytest.raises(Full, match="Cannot add 4 items"):
        queue.put_nowait_batch([1, 2, 3, 4])
    queue.put_nowait_batch([1, 2])
    with pytest.raises(Empty, match="Cannot get 3 items"):
        queue.get_nowait_batch(3)
    assert queue.get_nowait_batch(2) == [1, 2]
    with pytest.raises(TypeError):
        queue.put_nowait_batch(5)
    with pytest.raises(ValueError):
        queue.get_nowait_batch(-1)
    queue.shutdown()


def test_a_blocked_get_returns_once_an_item_comes(ray_start_regular_shared):
    queue = Queue(actor_options={"num_cpus": 0})

    @ray.remote
    def consume(q):
        return q.get(timeout=30)

    ref = consume.remote(queue)
    queue.put("late")
    assert ray.get(ref) == "late"

    async def roundtrip():
        await queue.put_async("async")
        return await queue.get_async()

    assert asyncio.run(roundtrip()) == "async"
    queue.shutdown()
