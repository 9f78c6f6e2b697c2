"""The object store as a Ray user meets it: memory comes back, spilling, a full store,
the RAM its arena holds in /dev/shm.

Tasks rebuild ``pattern()`` inline: as on Ray, workers cannot import a test
module, so they cannot call its functions by name.
"""

import gc
import os
import time

import numpy as np
import pytest

import raggio as ray
from raggio.test_utils import wait_until
from raggio.core import context

MiB = 1024**2

SMALL_STORE = [{"object_store_memory": 50 * MiB}]
#: A store whose node allocates at most 32 MiB ahead of its objects and gives pages back
#: after 1 s without a new object.
WINDOWED_STORE = [{"object_store_memory": 300 * MiB, "_system_config": {
    "object_store_prefault_bytes": 32 * MiB, "object_store_release_after_s": 1.0}}]


def store_used_bytes():
    # TODO(#2): read this through the public state API once raggio has one;
    # until then ask the node manager directly, as `raggio status` would.
    stats = context.get_core().request("node", "get_node_stats")
    return stats["object_store"]["used_bytes"]


def arena_held_bytes():
    """The RAM the node's arena file holds in /dev/shm, mapped or not (what `du` shows)."""
    return os.stat(context.get_core().node_info["arena_path"]).st_blocks * 512


def pattern(i, size_bytes=20 * MiB):
    """A distinct array per ``i``, so a mixed-up object cannot compare equal."""
    return np.arange(size_bytes // 8, dtype=np.float64) * (i + 1) + i


def test_store_memory_is_released_when_refs_go(ray_start_regular):
    baseline = store_used_bytes()
    refs = [ray.put(pattern(i, 10 * MiB)) for i in range(3)]
    wait_until(lambda: store_used_bytes() >= baseline + 30 * MiB, what="the puts to be counted")

    @ray.remote
    def make(i):
        return np.arange(10 * MiB // 8, dtype=np.float64) * (i + 1) + i  # pattern(i, 10 MiB)

    result = make.remote(7)
    value = ray.get(result)
    assert np.array_equal(value, pattern(7, 10 * MiB))
    wait_until(lambda: store_used_bytes() >= baseline + 40 * MiB,
               what="the task result to be in the store")

    del refs, result, value
    gc.collect()
    wait_until(lambda: store_used_bytes() < baseline + 1 * MiB,
               what=f"used bytes to fall back to ~{baseline} (now {store_used_bytes()})")


def test_get_result_outlives_its_ref(ray_start_regular):
    # A zero-copy array from get() stays valid after its ref is dropped, even
    # while new objects are written into the store.
    ref = ray.put(pattern(1, 10 * MiB))
    value = ray.get(ref)
    del ref
    gc.collect()
    others = [ray.put(pattern(i, 10 * MiB)) for i in range(2, 8)]
    assert np.array_equal(value, pattern(1, 10 * MiB))
    assert np.array_equal(ray.get(others[-1]), pattern(7, 10 * MiB))


@pytest.mark.parametrize("ray_start_regular", SMALL_STORE, indirect=True)
def test_objects_spill_and_restore(ray_start_regular):
    # 100 MiB of live objects in a 50 MiB store: some must go to disk and come back.
    refs = [ray.put(pattern(i)) for i in range(5)]
    for i, ref in enumerate(refs):
        value = ray.get(ref, timeout=60)
        assert np.array_equal(value, pattern(i)), f"object {i} came back different"
        del value
    for i in reversed(range(5)):
        value = ray.get(refs[i], timeout=60)
        assert np.array_equal(value, pattern(i)), f"object {i} came back different"
        del value

    @ray.remote
    def checksum(a):
        return float(a.sum())

    assert ray.get(checksum.remote(refs[0]), timeout=60) == float(pattern(0).sum())


@pytest.mark.parametrize("ray_start_regular", SMALL_STORE, indirect=True)
def test_task_results_spill_and_restore(ray_start_regular):
    @ray.remote
    def make(i):
        return np.arange(20 * MiB // 8, dtype=np.float64) * (i + 1) + i  # pattern(i)

    refs = [make.remote(i) for i in range(5)]
    ray.wait(refs, num_returns=5, timeout=60)
    for i, ref in enumerate(refs):
        value = ray.get(ref, timeout=60)
        assert np.array_equal(value, pattern(i)), f"result {i} came back different"
        del value


@pytest.mark.parametrize("ray_start_regular", SMALL_STORE, indirect=True)
def test_object_larger_than_store_raises(ray_start_regular):
    with pytest.raises(ray.exceptions.ObjectStoreFullError):
        ray.put(np.zeros(60 * MiB, dtype=np.uint8))
    # The store still works afterwards.
    assert np.array_equal(ray.get(ray.put(pattern(3))), pattern(3))


def test_an_idle_node_holds_almost_no_arena_memory(shutdown_only):
    ray.init(num_cpus=1)  # the default store: 30% of this machine's memory

    @ray.remote
    def one():
        return 1

    assert ray.get(one.remote()) == 1
    time.sleep(1)  # time for the node's background work, were it to allocate ahead
    assert arena_held_bytes() < 64 * MiB


@pytest.mark.parametrize("ray_start_regular", WINDOWED_STORE, indirect=True)
def test_puts_larger_than_the_prefault_window_fill_the_store_and_spill(ray_start_regular):
    # 6 x 80 MiB in a row into a 300 MiB store: each object is larger than what the node
    # allocates ahead, the store fills up, and the oldest go to disk.
    refs = [ray.put(pattern(i, 80 * MiB)) for i in range(6)]
    for i, ref in enumerate(refs):
        assert np.array_equal(ray.get(ref, timeout=60), pattern(i, 80 * MiB)), \
            f"object {i} came back different"
    assert arena_held_bytes() <= 300 * MiB + 64 * MiB


@pytest.mark.parametrize("ray_start_regular", WINDOWED_STORE, indirect=True)
def test_arena_memory_comes_back_after_a_burst(ray_start_regular):
    refs = [ray.put(pattern(i, 40 * MiB)) for i in range(6)]
    assert arena_held_bytes() >= 240 * MiB
    kept = ray.get(refs[1])  # pins the second object: the pages below its end stay
    del refs
    gc.collect()
    wait_until(lambda: arena_held_bytes() <= 96 * MiB, timeout_s=30,
               what="the pages above the kept object to be given back")
    assert np.array_equal(kept, pattern(1, 40 * MiB))
    del kept
    wait_until(lambda: arena_held_bytes() < 16 * MiB, timeout_s=30,
               what="the rest of the arena's pages to be given back")
    # Pages given back are written anew, and read back as written.
    refs = [ray.put(pattern(i, 40 * MiB)) for i in range(6, 12)]
    for i, ref in zip(range(6, 12), refs):
        assert np.array_equal(ray.get(ref, timeout=60), pattern(i, 40 * MiB))
