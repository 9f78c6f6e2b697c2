"""ray:// clients: remote drivers through the head's client server (raggio/client/).

One head for the module, with a client server on a free port and a short reconnect
grace period; each client is a process of its own (as on another machine), except
where the test itself is the client.
"""

import json
import os
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

import raggio as ray
from raggio import cluster_file
from raggio.autoscaler.sdk import request_resources
from raggio.common.autoscaler_status import RESOURCE_REQUEST_KEY
from raggio.core import context
from raggio.exceptions import ConnectionLost
from raggio.launch import wait_ready
from raggio.util.state import list_jobs, list_objects
from raggio.node_spec import NodeSpec

GRACE_S = 2.0


@pytest.fixture(scope="module")
def head(module_daemons):
    spec = NodeSpec(head=True, tied=True, num_cpus=2, port=0, ray_client_server_port=0,
                    object_store_memory=400 * 2**20,
                    config={"client_reconnect_grace_s": GRACE_S})
    process = spec.start_process()
    ready = wait_ready(process, 30, "head")
    module_daemons.append(psutil.Process(process.pid))
    cluster_file.remember_token(ready["ray_client_address"], ready["token"])
    cluster_file.remember_token(ready["gcs_address"], ready["token"])
    yield dict(ready, address="ray://" + ready["ray_client_address"], process=process)
    process.stdin.close()
    process.wait(timeout=30)
    process.stdout.close()


def _env(head, **more) -> dict:
    return {**os.environ, "RAGGIO_AUTH_TOKEN": head["token"], **more}


def _run_client(head, script: str, *, env: dict | None = None, timeout_s: float = 90,
                cwd: str | None = None):
    """Run ``script`` (with ``ADDRESS`` defined) as a client process; its result."""
    code = f"ADDRESS = {head['address']!r}\n" + textwrap.dedent(script)
    return subprocess.run([sys.executable, "-c", code], env=env or _env(head), cwd=cwd,
                          capture_output=True, text=True, timeout=timeout_s)


def _object_ids(head) -> set[str]:
    """The objects of the cluster, as the state API lists them."""
    return {row.object_id for row in list_objects(address=head["gcs_address"])}


def _wait_for(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def test_a_client_runs_tasks_and_actors_and_moves_large_objects(head):
    result = _run_client(head, """
        import numpy as np
        import raggio as ray
        ray.init(ADDRESS, namespace="shared")

        @ray.remote
        def double(x):
            print("doubling", x)
            return x * 2

        @ray.remote
        class Counter:
            def __init__(self, start):
                self.value = start
            def add(self, n):
                self.value += n
                return self.value

        assert ray.get(double.remote(21)) == 42
        assert ray.get([double.options(num_cpus=1).remote(i) for i in range(3)]) == [0, 2, 4]
        counter = Counter.options(name="counter").remote(10)
        assert ray.get(counter.add.remote(1)) == 11
        assert ray.get(ray.get_actor("counter").add.remote(1)) == 12
        Counter.options(name="kept", lifetime="detached").remote(0)

        big = np.arange(50 * 2**20 // 8, dtype=np.float64)  # 50 MB
        ref = ray.put(big)
        assert np.array_equal(ray.get(ref), big)
        assert ray.get(double.remote(ref))[-1] == big[-1] * 2  # a ref as an argument
        ready, not_ready = ray.wait([ref, double.remote(1)], num_returns=2, timeout=30)
        assert len(ready) == 2 and not not_ready
        assert ray.cluster_resources()["CPU"] == 2
        assert len(ray.nodes()) == 1
        assert ray.get_runtime_context().namespace == "shared"
        print("client done")
        ray.shutdown()
    """)
    assert result.returncode == 0, result.stderr
    assert "client done" in result.stdout
    assert "doubling 21" in result.stdout  # the worker's output, printed on the client
    # The detached actor outlives its client; the other one went with it.
    check = _run_client(head, """
        import raggio as ray
        ray.init(ADDRESS, namespace="shared")
        assert ray.get(ray.get_actor("kept").add.remote(5)) == 5
        print(sorted(ray.util.list_named_actors()))
        ray.kill(ray.get_actor("kept"))
    """)
    assert check.returncode == 0, check.stderr
    assert "['kept']" in check.stdout


def test_errors_options_cancel_and_the_jobs_runtime_env_reach_the_client(head):
    result = _run_client(head, """
        import asyncio, os, time
        import pytest
        import raggio as ray
        from raggio.exceptions import GetTimeoutError, TaskCancelledError
        ray.init(ADDRESS, runtime_env={"env_vars": {"FROM_CLIENT": "yes"}})

        class MyError(Exception):  # defined in the client's __main__ only
            pass

        @ray.remote
        def fail():
            raise MyError("boom")

        @ray.remote
        def env():
            return os.environ.get("FROM_CLIENT")

        @ray.remote(num_returns=2)
        def pair():
            return 1, 2

        @ray.remote
        def sleep(seconds):
            time.sleep(seconds)

        @ray.remote
        def wrap(value):
            return [ray.put(value)]  # a ref inside a value

        @ray.remote
        class Box:
            def __init__(self):
                self.items = []
            def add(self, item):
                self.items.append(item)
                return len(self.items)

        @ray.remote
        def fill(box, n):  # an actor handle as an argument
            return ray.get([box.add.remote(i) for i in range(n)])[-1]

        with pytest.raises(MyError, match="boom"):
            ray.get(fail.remote())
        assert ray.get(env.remote()) == "yes"
        assert ray.get(list(pair.remote())) == [1, 2]
        [inner] = ray.get(wrap.remote("inside"))
        assert ray.get(inner) == "inside"
        box = Box.remote()
        assert ray.get(fill.remote(box, 3)) == 3
        assert ray.get(box.add.remote("x")) == 4
        from raggio.util.placement_group import placement_group, remove_placement_group
        from raggio.util.scheduling_strategies import PlacementGroupSchedulingStrategy
        group = placement_group([{"CPU": 1}])
        assert ray.get(group.ready(), timeout=30) == group
        in_group = PlacementGroupSchedulingStrategy(group)
        assert ray.get(env.options(scheduling_strategy=in_group).remote()) == "yes"
        remove_placement_group(group)
        slow = sleep.remote(60)
        with pytest.raises(GetTimeoutError):
            ray.get(slow, timeout=0.2)
        ray.cancel(slow)
        with pytest.raises(TaskCancelledError):
            ray.get(slow, timeout=30)

        async def awaited():
            return await env.remote()
        assert asyncio.run(asyncio.wait_for(awaited(), 30)) == "yes"
        print("client done")
    """)
    assert result.returncode == 0, result.stderr
    assert "client done" in result.stdout


def test_a_clients_local_working_dir_and_py_modules_are_packed_on_the_client(head, tmp_path):
    # Relative paths, from the client's folder: the head's processes run elsewhere, so
    # only a client that packs them itself finds them (as on another machine).
    for folder, module in (("job_dir", "job_mod"), ("actor_dir", "actor_mod"),
                           ("extra/extra_pkg", "__init__")):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / f"{module}.py").write_text(f"WHERE = {folder!r}\n")
    (tmp_path / "job_dir" / "big.bin").write_bytes(os.urandom(2**20))  # left out below
    result = _run_client(head, """
        import os
        import pytest
        import raggio as ray
        ray.init(ADDRESS, runtime_env={"working_dir": "job_dir", "excludes": ["*.bin"]})

        @ray.remote
        def job_module():
            import job_mod
            return job_mod.WHERE, sorted(os.listdir("."))

        @ray.remote
        class Reader:
            def modules(self):
                import actor_mod, extra_pkg
                return actor_mod.WHERE, extra_pkg.WHERE

        assert ray.get(job_module.remote()) == ("job_dir", ["job_mod.py"])
        env = {"working_dir": "actor_dir", "py_modules": ["extra/extra_pkg"]}
        reader = Reader.options(runtime_env=env).remote()
        assert ray.get(reader.modules.remote()) == ("actor_dir", "extra/extra_pkg")
        from raggio.core import context
        with pytest.raises(ValueError, match="not a runtime env package URI"):
            context.get_core().call("put_package", {"uri": "jobs/x", "data": b"not mine"})
        print("client done")
    """, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "client done" in result.stdout


def test_generator_tasks_stream_to_the_client(head):
    result = _run_client(head, """
        import asyncio
        import pytest
        import raggio as ray
        ray.init(ADDRESS)

        @ray.remote
        def count(n, fail_at=None):
            for i in range(n):
                if i == fail_at:
                    raise ValueError(f"failed at {i}")
                yield i

        @ray.remote(num_returns="dynamic")
        def squares(n):
            for i in range(n):
                yield i * i

        @ray.remote
        class Source:
            def items(self, n):
                for i in range(n):
                    yield f"item {i}"

        gen = count.remote(3)
        assert isinstance(gen, ray.ObjectRefGenerator)
        done = gen.completed()
        assert ray.wait([done, gen], num_returns=2, timeout=30)[0] == [done, gen]
        assert [ray.get(ref) for ref in gen] == [0, 1, 2]
        assert gen.is_finished() and ray.get(gen.completed()) is None
        failing = count.remote(5, fail_at=2)
        assert [ray.get(next(failing)) for _ in range(2)] == [0, 1]
        with pytest.raises(ValueError, match="failed at 2"):
            ray.get(next(failing))
        with pytest.raises(StopIteration):
            next(failing)
        assert [ray.get(ref) for ref in ray.get(squares.remote(4))] == [0, 1, 4, 9]
        source = Source.remote()

        async def consume():
            return [await ref async for ref in source.items.remote(2)]
        assert asyncio.run(consume()) == ["item 0", "item 1"]
        print("client done")
    """)
    assert result.returncode == 0, result.stderr
    assert "client done" in result.stdout
    assert "Exception ignored" not in result.stderr, result.stderr


def test_a_killed_client_is_freed_after_the_grace_period(head):
    client = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        import raggio as ray
        ray.init({head['address']!r}, namespace="victim")

        @ray.remote
        class Holder:
            def ping(self):
                return "pong"

        holder = Holder.options(name="holder").remote()
        ray.get(holder.ping.remote())
        ref = ray.put(b"x" * 2**20)
        print(ref.hex(), flush=True)
        sys.stdin.read()
    """)], env=_env(head), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        object_id = client.stdout.readline().strip()
        assert object_id in _object_ids(head)
        client.kill()
        killed_at = time.time()
    finally:
        client.wait()
        client.stdin.close()
        client.stdout.close()
    # Another client watches the actor the killed one held: it stays through the grace
    # period (the client might come back), then goes with the session.
    check = _run_client(head, f"""
        import time
        import raggio as ray
        ray.init(ADDRESS, namespace="victim")
        while ray.util.list_named_actors() == ["holder"] and time.time() < {killed_at} + 30:
            time.sleep(0.05)
        print("named actors", ray.util.list_named_actors())
        print("gone after", time.time() - {killed_at})
    """)
    assert check.returncode == 0, check.stderr
    assert "named actors []" in check.stdout
    gone_after_s = float(check.stdout.split("gone after")[1])
    assert gone_after_s >= GRACE_S * 0.9  # it waited for the client to come back
    _wait_for(lambda: object_id not in _object_ids(head), 10, "the client's object to go")


def test_a_client_that_reconnects_in_time_keeps_its_session(head, shutdown_only, capfd):
    ray.init(head["address"])
    ref = ray.put({"kept": True})
    core = context.get_core()
    core.loop.call_soon_threadsafe(core._conn.close)  # the network drops
    _wait_for(lambda: core._conn.is_closed, 5, "the connection to close")
    assert ray.get(ref) == {"kept": True}  # reconnected, same session, same object

    @ray.remote
    def slow():
        time.sleep(2)
        print("printed while the client was away")
        return "late"

    late = slow.remote()
    ray.get(ray.put(None))  # the task is submitted
    core.loop.call_soon_threadsafe(core.loop.call_later, 0.5, core._conn.close)
    assert ray.get(late, timeout=30) == "late"  # the get cut off is made again
    _wait_for(lambda: "printed while the client was away" in capfd.readouterr().out, 10,
              "the task's output")


def test_a_client_away_past_the_grace_period_is_told_its_session_ended(head, shutdown_only):
    ray.init(head["address"])
    ref = ray.put("gone")
    core = context.get_core()
    job_id = ray.get_runtime_context().get_job_id()
    assert any(job.job_id == job_id for job in list_jobs())  # the state API, through ray://
    core.loop.call_soon_threadsafe(core._conn.close)
    _wait_for(lambda: [job.status for job in list_jobs(address=head["gcs_address"])
                       if job.job_id == job_id] != ["RUNNING"], GRACE_S + 15,
              "the session's driver to exit")
    with pytest.raises(ConnectionLost, match="session ended while it was away"):
        ray.get(ref)


def test_request_resources_reaches_the_autoscaler_through_ray_client(head, shutdown_only):
    ray.init(head["address"])

    def standing() -> list:
        return json.loads(context.get_core().request("gcs", "kv_get", RESOURCE_REQUEST_KEY))

    request_resources(num_cpus=2, bundles=[{"GPU": 1}])
    assert standing() == [{"CPU": 1}, {"CPU": 1}, {"GPU": 1}]
    request_resources()
    assert standing() == []


def test_a_wrong_token_and_other_versions_are_refused(head):
    wrong = _run_client(head, """
        import raggio as ray
        ray.init(ADDRESS)
    """, env=_env(head, RAGGIO_AUTH_TOKEN="not-the-token"))
    assert wrong.returncode != 0
    assert "AuthenticationError" in wrong.stderr and "token" in wrong.stderr
    mismatch = _run_client(head, """
        import raggio as ray
        from raggio.client import protocol
        real = protocol.versions
        protocol.versions = lambda: dict(real(), python_version="3.99")
        ray.init(ADDRESS)
    """)
    assert mismatch.returncode != 0
    python = "%d.%d" % sys.version_info[:2]
    assert "Version mismatch" in mismatch.stderr
    assert "Python 3.99" in mismatch.stderr and f"Python {python}" in mismatch.stderr


def test_a_client_can_neither_read_nor_free_another_clients_objects(head, shutdown_only):
    owner = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        import raggio as ray
        ray.init({head['address']!r})
        ref = ray.put("secret")
        print(ref.hex(), flush=True)
        sys.stdin.readline()
        print(ray.get(ref), flush=True)
    """)], env=_env(head), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        object_id = bytes.fromhex(owner.stdout.readline().strip())
        ray.init(head["address"])
        stolen = ray.ObjectRef(object_id)
        with pytest.raises(ValueError, match="not known to this ray:// client session"):
            ray.get(stolen, timeout=10)
        with pytest.raises(ValueError, match="not known to this ray:// client session"):
            ray.cancel(stolen)
        del stolen  # releasing it in this client's session frees nothing of the owner's
        ray.get(ray.put("flush"))  # the release went out before this reply came
        owner.stdin.write("go\n")
        owner.stdin.flush()
        assert owner.stdout.readline().strip() == "secret"
    finally:
        owner.stdin.close()
        owner.wait(timeout=30)
        owner.stdout.close()
