"""Tasks, objects and the driver API, as a Ray user meets them.

All tests but the driver-script ones share one two-CPU cluster; the scripts
(implicit init, a job-wide runtime_env) run as their own Python programs,
each starting and ending its own private cluster.
"""

import asyncio
import dataclasses
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import raggio as ray
from raggio.test_utils import wait_until

MiB = 1024**2


@dataclasses.dataclass
class Point:
    """Used by the driver only: workers cannot import a test module (nor can Ray's)."""

    x: int
    y: int


@ray.remote
def echo(*args, **kwargs):
    return args, kwargs


@ray.remote
def add(a, b=10, *, c=100):
    return a + b + c


@ray.remote
def wait_for_file(path, timeout_s=60.0):
    """Block until ``path`` exists (the test releases it); return its name."""
    deadline = time.monotonic() + timeout_s
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.01)
    return os.path.basename(path)



# -- arguments and returns --


def test_args_and_kwargs(ray_start_regular_shared):
    assert ray.get(add.remote(1)) == 111
    assert ray.get(add.remote(1, 2)) == 103
    assert ray.get(add.remote(1, c=3)) == 14
    assert ray.get(add.remote(a=1, b=2, c=3)) == 6
    assert ray.get(echo.remote(1, "two", [3], k={"v": None})) == ((1, "two", [3]), {"k": {"v": None}})


def test_get_list_keeps_order(ray_start_regular_shared):
    refs = [add.remote(i, 0, c=0) for i in range(20)]
    assert ray.get(refs) == list(range(20))


def test_user_defined_class_crosses_to_workers(ray_start_regular_shared):
    # Defined here, not at module level: as on Ray, workers cannot import a
    # test module, so what they run must travel by value.
    @dataclasses.dataclass
    class Vector:
        x: int
        y: int

    @ray.remote
    def move(v):
        return Vector(v.x + 1, v.y + 1)

    moved = ray.get(move.remote(Vector(1, 2)))
    assert moved == Vector(2, 3) and type(moved) is Vector


def test_num_returns(ray_start_regular_shared):
    @ray.remote(num_returns=3)
    def three():
        return 1, "b", [3]

    refs = three.remote()
    assert isinstance(refs, list) and len(refs) == 3
    assert all(isinstance(r, ray.ObjectRef) for r in refs)
    assert ray.get(refs) == [1, "b", [3]]

    @ray.remote
    def pair():
        return "x", "y"

    x, y = pair.options(num_returns=2).remote()
    assert ray.get(y) == "y"
    assert ray.get(x) == "x"


def test_nested_tasks(ray_start_regular_shared):
    # Three levels on two CPUs: a worker blocked in get() must lend its CPU.
    @ray.remote
    def leaf(i):
        return i * i

    @ray.remote
    def middle(n):
        return sum(ray.get([leaf.remote(i) for i in range(n)]))

    @ray.remote
    def top(n):
        return ray.get(middle.remote(n)) + 1

    assert ray.get(top.remote(5), timeout=60) == 0 + 1 + 4 + 9 + 16 + 1


def test_ref_arguments_are_resolved(ray_start_regular_shared):
    @ray.remote
    def describe(value, other=None):
        return type(value).__name__, value, other

    stored = ray.put({"a": 1})
    assert ray.get(describe.remote(stored)) == ("dict", {"a": 1}, None)
    computed = add.remote(1, 1, c=1)
    assert ray.get(describe.remote(computed, other=stored)) == ("int", 3, {"a": 1})


def test_refs_nested_in_containers_stay_refs(ray_start_regular_shared):
    @ray.remote
    def inspect(items, mapping):
        return ([type(r).__name__ for r in items], ray.get(items),
                type(mapping["ref"]).__name__, ray.get(mapping["ref"]))

    refs = [ray.put(1), add.remote(1, 1, c=0)]
    names, values, map_type, map_value = ray.get(inspect.remote(refs, {"ref": ray.put("v")}))
    assert names == ["ObjectRef", "ObjectRef"]
    assert values == [1, 2]
    assert (map_type, map_value) == ("ObjectRef", "v")


def test_task_returns_a_ref(ray_start_regular_shared):
    @ray.remote
    def make():
        return ray.put(np.arange(10))

    inner = ray.get(make.remote())
    assert isinstance(inner, ray.ObjectRef)
    assert np.array_equal(ray.get(inner), np.arange(10))


def test_options(ray_start_regular_shared):
    @ray.remote(num_cpus=1)
    def whoami():
        return "ok"

    assert ray.get(whoami.options(num_cpus=0.5, name="renamed").remote()) == "ok"
    assert ray.get(whoami.options(num_cpus=0).remote()) == "ok"
    assert ray.get(whoami.remote()) == "ok"  # options() left the original alone
    with pytest.raises(ValueError):
        whoami.options(not_an_option=1)


def test_calling_remote_function_directly_raises(ray_start_regular_shared):
    with pytest.raises(TypeError, match=r"\.remote\(\)"):
        add(1)


def test_get_of_a_non_ref_raises(ray_start_regular_shared):
    with pytest.raises((TypeError, ValueError)):
        ray.get(1)
    with pytest.raises((TypeError, ValueError)):
        ray.get([ray.put(1), "not a ref"])


# -- objects --


@pytest.mark.parametrize("value", [
    None, 0, -1.5, "text", b"\x00bytes", [1, [2, [3]]], (1, "a"), {"k": {1, 2}},
    Point(3, 4), np.arange(12).reshape(3, 4), b"x" * (200 * 1024), list(range(50_000)),
], ids=lambda v: type(v).__name__)
def test_put_get_round_trip(ray_start_regular_shared, value):
    out = ray.get(ray.put(value))
    if isinstance(value, np.ndarray):
        assert np.array_equal(out, value) and out.dtype == value.dtype
    else:
        assert out == value and type(out) is type(value)


def test_large_array_put_get_is_equal_and_read_only(ray_start_regular_shared):
    array = np.random.default_rng(0).random(5 * MiB // 8 * 8)  # 40 MiB of float64
    ref = ray.put(array)
    out = ray.get(ref)
    assert out.shape == array.shape and out.dtype == array.dtype
    assert np.array_equal(out, array)
    assert not out.flags.writeable
    with pytest.raises(ValueError):
        out[0] = 1.0
    # A second get and a task see the same value.
    assert np.array_equal(ray.get(ref), array)

    @ray.remote
    def total(a):
        return float(a.sum()), a.flags.writeable

    assert ray.get(total.remote(ref)) == (float(array.sum()), False)


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_arrays_big_enough_for_the_parallel_copy_arrive_intact(ray_start_regular_shared, layout):
    # Above 64 MiB a put is copied by several threads: each part must land in its place.
    base = np.random.default_rng(1).integers(0, 2**62, size=(9, 1_000_003), dtype=np.int64)
    array = {"C": base, "F": np.asfortranarray(base), "strided": base[:, ::2]}[layout]
    assert np.array_equal(ray.get(ray.put(array)), array)


def test_large_task_result(ray_start_regular_shared):
    @ray.remote
    def big(n, fill):
        return np.full(n, fill, dtype=np.int32)

    n = 20 * MiB // 4
    out = ray.get(big.remote(n, 7))
    assert out.shape == (n,) and out.dtype == np.int32
    assert int(out.min()) == int(out.max()) == 7

    @ray.remote
    def blob():
        return b"\x01" * (8 * MiB)

    assert ray.get(blob.remote()) == b"\x01" * (8 * MiB)


# -- waiting --


def test_wait_num_returns_and_timeout(ray_start_regular_shared, tmp_path):
    release = str(tmp_path / "release")
    slow = wait_for_file.remote(release)
    try:
        fast = [add.remote(i, 0, c=0) for i in range(2)]
        ready, not_ready = ray.wait(fast + [slow], num_returns=2, timeout=60)
        assert sorted(ready, key=fast.index) == fast and not_ready == [slow]

        ready, not_ready = ray.wait([slow] + fast, num_returns=3, timeout=0.5)
        assert set(ready) == set(fast) and not_ready == [slow]

        ready, not_ready = ray.wait([slow], timeout=0)
        assert ready == [] and not_ready == [slow]
    finally:
        open(release, "w").close()
    ready, not_ready = ray.wait([slow], num_returns=1, timeout=60)
    assert ready == [slow] and not_ready == []
    assert ray.get(slow) == "release"


def test_get_timeout(ray_start_regular_shared, tmp_path):
    release = str(tmp_path / "release")
    slow = wait_for_file.remote(release)
    try:
        with pytest.raises(ray.exceptions.GetTimeoutError):
            ray.get(slow, timeout=0.2)
        with pytest.raises(TimeoutError):
            ray.get([slow], timeout=0)
    finally:
        open(release, "w").close()
    assert ray.get(slow, timeout=60) == "release"


def test_await_ref_and_future(ray_start_regular_shared):
    async def main():
        one = await add.remote(1, 0, c=0)
        many = await asyncio.gather(*[add.remote(i, 0, c=0) for i in range(5)])
        return one, many

    assert asyncio.run(main()) == (1, [0, 1, 2, 3, 4])
    assert add.remote(2, 0, c=0).future().result(timeout=60) == 2


def test_as_future_and_object_id(ray_start_regular_shared):
    async def main():
        future = add.remote(3, 0, c=0).as_future()
        assert isinstance(future, asyncio.Future)
        return await future

    assert asyncio.run(main()) == 3
    assert ray.ObjectID is ray.ObjectRef  # Ray's old name for the class
    assert ray.ObjectRef.nil().is_nil() and not ray.ObjectRef.from_random().is_nil()
    ref = ray.put(5)
    assert ray.get(ray.ObjectID(ref.binary(), ref.owner_address())) == 5


# -- the driver's view of the cluster --


def test_task_runtime_env_env_vars(ray_start_regular_shared):
    @ray.remote
    def read_env(name):
        return os.environ.get(name)

    env = {"env_vars": {"RAGGIO_TEST_GREETING": "ciao"}}
    assert ray.get(read_env.options(runtime_env=env).remote("RAGGIO_TEST_GREETING")) == "ciao"
    # Workers are not shared across runtime envs: a plain task does not see it.
    assert ray.get(read_env.remote("RAGGIO_TEST_GREETING")) is None


def test_runtime_context_ids(ray_start_regular_shared):
    driver = ray.get_runtime_context()
    job_id, node_id = driver.get_job_id(), driver.get_node_id()
    assert isinstance(job_id, str) and job_id
    assert node_id == ray.nodes()[0]["NodeID"]

    @ray.remote
    def ids():
        ctx = ray.get_runtime_context()
        return (ctx.get_job_id(), ctx.get_node_id(), ctx.get_worker_id(), ctx.get_task_id(),
                ctx.get_actor_id())

    first, second = ray.get([ids.remote(), ids.remote()])
    for task_job, task_node, worker_id, task_id, actor_id in (first, second):
        assert task_job == job_id
        assert task_node == node_id
        assert isinstance(worker_id, str) and worker_id != driver.get_worker_id()
        assert isinstance(task_id, str) and task_id
        assert actor_id is None
    assert first[3] != second[3]


def test_cluster_and_available_resources(ray_start_regular_shared, tmp_path):
    # A private cluster binds to loopback (Ray would report the machine's IP here).
    node_resource = "node:127.0.0.1"
    total = ray.cluster_resources()
    for key in ("CPU", "memory", "object_store_memory", node_resource):
        assert key in total, f"{key} missing from cluster_resources(): {total}"
    assert total["CPU"] == 2.0
    assert total["object_store_memory"] == pytest.approx(150 * MiB, rel=0.01)

    wait_until(lambda: ray.available_resources().get("CPU") == 2.0, what="both CPUs free")
    available = ray.available_resources()
    for key in ("memory", "object_store_memory", node_resource):
        assert key in available, f"{key} missing from available_resources(): {available}"

    release = str(tmp_path / "release")
    slow = wait_for_file.remote(release)
    try:
        wait_until(lambda: ray.available_resources().get("CPU") == 1.0,
                   what="a running task to hold one CPU")
    finally:
        open(release, "w").close()
    ray.get(slow)
    wait_until(lambda: ray.available_resources().get("CPU") == 2.0, what="the CPU back")

    nodes = ray.nodes()
    assert len(nodes) == 1
    assert nodes[0]["Alive"] and nodes[0]["NodeManagerAddress"] == "127.0.0.1"
    assert nodes[0]["Resources"]["CPU"] == 2.0


# -- whole driver programs --


def run_script(source: str, tmp_path, timeout_s: float = 90) -> str:
    """Run ``source`` as a fresh Python program; return its stdout. It has its own temp dir:
    its ``init()`` would otherwise join a cluster this test process runs, as in Ray."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    env = dict(os.environ, RAGGIO_TEMP_DIR=str(tmp_path / "raggio"))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=timeout_s, cwd=str(tmp_path), env=env)
    assert done.returncode == 0, (
        f"script failed with exit code {done.returncode}\n--- stdout\n{done.stdout}"
        f"\n--- stderr\n{done.stderr}")
    return done.stdout


def test_remote_before_init_starts_a_cluster(tmp_path):
    # The script never calls init() or shutdown(): the first remote() starts
    # a private cluster and interpreter exit stops it (the leak check sees to it).
    out = run_script("""
        import raggio as ray

        @ray.remote
        def square(x):
            return x * x

        print("initialized before:", ray.is_initialized())
        print("result:", ray.get(square.remote(7)))
        print("initialized after:", ray.is_initialized())
    """, tmp_path)
    assert "initialized before: False" in out
    assert "result: 49" in out
    assert "initialized after: True" in out


def test_job_runtime_env_env_vars(tmp_path):
    out = run_script("""
        import os
        import raggio as ray

        ray.init(num_cpus=1, object_store_memory=100 * 1024**2,
                 runtime_env={"env_vars": {"RAGGIO_TEST_JOB_VAR": "job-wide"}})

        @ray.remote
        def read():
            return os.environ.get("RAGGIO_TEST_JOB_VAR")

        @ray.remote
        class Reader:
            def read(self):
                return os.environ.get("RAGGIO_TEST_JOB_VAR")

        print("task:", ray.get(read.remote()))
        print("actor:", ray.get(Reader.remote().read.remote()))
        ray.shutdown()
    """, tmp_path)
    assert "task: job-wide" in out
    assert "actor: job-wide" in out


def test_underscore_remote_and_zero_returns(ray_start_regular_shared):
    @ray.remote
    def f(n, k=0):
        return list(range(n + k))

    @ray.remote
    class Echo:
        def __init__(self, prefix):
            self.prefix = prefix

        def say(self, word):
            return self.prefix + word

    assert f._remote(args=[0], num_returns=0) is None  # as in Ray: nothing to return
    assert f.options(num_returns=0).remote(0) is None
    first, second = f._remote(args=[1], kwargs={"k": 1}, num_returns=2)
    assert ray.get([first, second]) == [0, 1]
    echo = Echo._remote(args=["> "], num_cpus=0)
    assert ray.get(echo.say._remote(args=["hi"])) == "> hi"


def test_small_things_ray_programs_rely_on(ray_start_regular_shared):
    assert ray.wait([]) == ([], [])  # nothing to wait for
    with pytest.raises(ValueError, match="async def"):
        @ray.remote
        async def not_a_task():
            pass

    seen = []
    ref = ray.put("value")
    ref._on_completed(seen.append)
    wait_until(lambda: seen == ["value"], what="the completion callback")



def test_init_returns_ray_address_keys(ray_start_regular_shared):
    info = ray_start_regular_shared
    assert info["redis_address"] == info["address"] == info["gcs_address"]
    assert info["node_ip_address"] == "127.0.0.1"
