"""Fixtures with the names Ray's conftest uses, and the leak checks every test gets.

``ray_start_regular`` (per test), ``ray_start_regular_shared`` (per module) and
``shutdown_only`` behave as in Ray's ``python/ray/tests/conftest.py``: the first
two call ``init()`` with this file's defaults updated by ``request.param`` (a
dict of ``init`` keyword arguments, given with ``indirect=True``) and yield what
``init()`` returned; ``shutdown_only`` yields None; all three call ``shutdown()``
at the end. ``ray_start_cluster`` yields a ``raggio.cluster_utils.Cluster`` of
real node processes and ends with ``shutdown()`` then ``cluster.shutdown()``.
So Ray's own test files can run here later.

Every test also gets ``check_leaks`` (autouse): it fails the test at teardown
if a process the test started (a private head, its zygote, workers, a driver
script run in a subprocess) is still running a few seconds after the cluster
shut down, or if an object-store arena (``/dev/shm/raggio-*``) made by such a
process is left behind. Processes are found by polling this process's
descendants while the test runs, so a worker that outlives its parents and is
re-parented to init still counts. This is the idea of ``check_process_leak``
and ``clean()`` in distributed's ``utils_test.py``.
"""

from __future__ import annotations

import os
import re
import threading
import time
from contextlib import contextmanager

import psutil
import pytest

import raggio as ray
from raggio.cluster_utils import Cluster
from raggio.config import get_config

# The test process reads its configuration now, from the environment the suite started with:
# get_config() keeps what it first read, so a test that changes RAGGIO_* for the programs it
# starts (monkeypatch.setenv) must not become the one whose settings every later test's
# init() keeps.
get_config()

#: Ray's fixtures start a one-CPU node with a 150 MB store; two CPUs here, so
#: that a task and a nested task or a blocker and a probe can run side by side.
DEFAULT_INIT_KWARGS = {"num_cpus": 2, "object_store_memory": 150 * 1024**2}

SHM_DIR = "/dev/shm"
#: Arena files are named raggio-session_<date>_<time>_<head pid>-<node tag>.arena.
_ARENA_PID = re.compile(r"^raggio-.*_(\d+)-[^-]*$")
#: How long processes and arenas get to go away after shutdown().
LEAK_GRACE_S = 5.0
_POLL_PERIOD_S = 0.1

#: The processes (head and everything under it) of the module-scoped shared
#: cluster while one is up; tests running beside it may not be blamed for them.
_shared_cluster_procs: list[psutil.Process] = []

#: Daemons (``raggio start``) that a module's fixtures own and stop at the module's end;
#: see ``module_daemons``.
_module_daemons: list[psutil.Process] = []


@contextmanager
def _ray_start(**kwargs):
    init_kwargs = dict(DEFAULT_INIT_KWARGS)
    init_kwargs.update(kwargs)
    address_info = ray.init(**init_kwargs)
    try:
        yield address_info
    finally:
        ray.shutdown()


@pytest.fixture
def ray_start_regular(request):
    """A fresh single-node cluster for one test; ``request.param`` overrides init kwargs."""
    param = getattr(request, "param", {})
    with _ray_start(**param) as address_info:
        yield address_info


@pytest.fixture(scope="module")
def ray_start_regular_shared(request):
    """One single-node cluster shared by the tests of a module."""
    param = getattr(request, "param", {})
    shm_before = _arenas()
    watch = _DescendantWatch()
    with watch:
        with _ray_start(**param) as address_info:
            started = [p for key, p in _descendants().items() if key not in watch.before]
            _shared_cluster_procs[:] = started
            try:
                yield address_info
            finally:
                _shared_cluster_procs.clear()
    problems = _wait_leaks_gone(watch, shm_before, excused=[])
    if problems:
        pytest.fail("The shared cluster leaked after shutdown():\n" + "\n".join(problems))


@pytest.fixture
def ray_start_cluster(request):
    """A ``Cluster`` of real node processes for one test, as Ray's fixture.

    Without ``request.param`` it has no node yet: the test calls ``add_node`` (the
    first node is the head) and ``init(address=cluster.address)``. A ``request.param``
    dict is the head's arguments (``Cluster(initialize_head=True,
    head_node_args=param)``); with Ray's keys ``num_nodes`` (and ``do_init``, true by
    default then) it starts that many nodes with the other keys (over Ray's defaults,
    one CPU and a 150 MB store) and connects the driver, as Ray's fixture does.
    """
    param = dict(getattr(request, "param", None) or {})
    if "num_nodes" in param:
        num_nodes = param.pop("num_nodes")
        do_init = param.pop("do_init", num_nodes > 0)
        namespace = param.pop("namespace", None)
        node_args = {"num_cpus": 1, "object_store_memory": 150 * 1024**2, **param}
        cluster = Cluster()
        try:
            for _ in range(num_nodes):
                cluster.add_node(**node_args)
            if do_init:
                ray.init(address=cluster.address, namespace=namespace)
        except BaseException:
            ray.shutdown()
            cluster.shutdown()
            raise
    else:
        cluster = Cluster(initialize_head=bool(param), head_node_args=param or None)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.fixture(scope="module")
def module_daemons():
    """A list for the daemons (``raggio start``) a module's fixtures keep across its tests.

    Such daemons run outside this process's tree once ``raggio start`` returns, but a
    test that starts one sees it for a moment as a descendant. Append the daemon's
    ``psutil.Process`` here and ``check_leaks`` blames no test for it or for what runs
    under it; the module must stop it itself (``raggio stop``) at its end.
    """
    yield _module_daemons
    _module_daemons.clear()


@pytest.fixture
def shutdown_only():
    """For tests that call ``init()`` themselves; shuts raggio down afterwards."""
    yield None
    ray.shutdown()


@pytest.fixture(autouse=True)
def check_leaks(request):
    """Fail the test if it left processes or /dev/shm arenas behind."""
    shm_before = _arenas()
    watch = _DescendantWatch()
    with watch:
        yield
        shared_up = bool(_shared_cluster_procs)
        left_initialized = not shared_up and ray.is_initialized()
        if left_initialized:
            ray.shutdown()
    excused = (list(_shared_cluster_procs) if shared_up else []) + list(_module_daemons)
    problems = _wait_leaks_gone(watch, shm_before, excused=excused)
    if left_initialized:
        problems.insert(0, "the test left raggio initialized (call shutdown() or use the "
                           "shutdown_only fixture)")
    if problems:
        pytest.fail("Leaked by this test:\n" + "\n".join(problems))


# -- leak-check machinery --


def _key(proc: psutil.Process) -> tuple[int, float]:
    try:
        return proc.pid, proc.create_time()
    except psutil.Error:
        return proc.pid, 0.0


def _descendants() -> dict[tuple[int, float], psutil.Process]:
    try:
        return {_key(p): p for p in psutil.Process().children(recursive=True)}
    except psutil.Error:
        return {}


class _DescendantWatch:
    """Records every descendant process seen between enter and exit."""

    def __init__(self):
        self.before = _descendants()
        self.seen: dict[tuple[int, float], psutil.Process] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leak-watch", daemon=True)

    def _poll(self) -> None:
        for key, proc in _descendants().items():
            if key not in self.before:
                self.seen.setdefault(key, proc)

    def _run(self) -> None:
        while not self._stop.wait(_POLL_PERIOD_S):
            self._poll()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._poll()
        self._stop.set()
        self._thread.join()


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _under(proc: psutil.Process, roots: list[psutil.Process]) -> bool:
    """Whether ``proc`` is one of ``roots`` or runs below one of them now."""
    root_keys = {_key(r) for r in roots}
    try:
        chain = [proc] + proc.parents()
    except psutil.Error:
        return False
    return any(_key(p) in root_keys for p in chain)


def _arenas() -> set[str]:
    try:
        return {name for name in os.listdir(SHM_DIR) if name.startswith("raggio-")}
    except OSError:
        return set()


def _describe(proc: psutil.Process) -> str:
    try:
        return f"process {proc.pid} ({' '.join(proc.cmdline())[:200]}, {proc.status()})"
    except psutil.Error:
        return f"process {proc.pid}"


def _session_names(procs: list[psutil.Process]) -> set[str]:
    """The session names of the running processes started with ``--session-dir`` (daemons)."""
    names = set()
    for proc in procs:
        try:
            cmdline = proc.cmdline() if _alive(proc) else []
        except psutil.Error:
            continue
        for flag, value in zip(cmdline, cmdline[1:]):
            if flag == "--session-dir":
                names.add(os.path.basename(value.rstrip("/")))
    return names


def _wait_leaks_gone(watch: _DescendantWatch, shm_before: set[str],
                     excused: list[psutil.Process]) -> list[str]:
    """Wait up to LEAK_GRACE_S for the test's processes and arenas to go; describe the rest.

    What is still there at the deadline is ended (processes by pid, arenas by
    name), so one leaking test does not make the next ones fail too.
    """
    our_pids = {pid for pid, _ in watch.seen}
    excused_sessions = _session_names(excused)
    deadline = time.monotonic() + LEAK_GRACE_S
    while True:
        procs = [p for p in watch.seen.values() if _alive(p) and not _under(p, excused)]
        arenas = []
        for name in _arenas() - shm_before:
            match = _ARENA_PID.match(name)
            if any(name.startswith(f"raggio-{session}-") for session in excused_sessions):
                continue
            if match is None or int(match.group(1)) in our_pids:
                arenas.append(name)
        if (not procs and not arenas) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    problems = [_describe(p) for p in procs]
    problems += [f"arena {os.path.join(SHM_DIR, name)}" for name in sorted(arenas)]
    for proc in procs:
        try:
            proc.kill()
        except psutil.Error:
            pass
    for name in arenas:
        try:
            os.unlink(os.path.join(SHM_DIR, name))
        except OSError:
            pass
    return problems
