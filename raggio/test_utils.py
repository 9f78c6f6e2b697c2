"""Helpers for tests of raggio programs (Ray keeps these in ``ray._private.test_utils``).

Waiting is for a condition with a deadline, never for a fixed time.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from typing import Callable

import psutil

#: How long a test's ``raggio`` command may run (a safety net: they take about a second).
CLI_TIMEOUT_S = 120
_SCRIPT = os.path.join(os.path.dirname(sys.executable), "raggio")
#: The ``raggio`` command as a user runs it: the installed script, else ``python -m raggio``.
RAGGIO = [_SCRIPT] if os.path.exists(_SCRIPT) else [sys.executable, "-m", "raggio"]


def run_cli(temp_dir, *args: str, env: dict | None = None,
            timeout: float = CLI_TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run ``raggio ARGS`` on ``temp_dir`` (``env_for``), its output captured."""
    return subprocess.run(RAGGIO + list(args), capture_output=True, text=True,
                          env=env or env_for(temp_dir), timeout=timeout)


def missing_package_error(name: str) -> str:
    """A regex of what the installer of a runtime env's ``pip`` (uv where it is installed,
    else pip) says of a requirement it finds nowhere."""
    return (f"No matching distribution found for {name}"  # pip
            f"|Because {name} was not found")  # uv


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive(proc: psutil.Process) -> bool:
    """Whether the process runs (a zombie does not)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def daemons(temp_dir, *modules: str) -> list[psutil.Process]:
    """The running processes of ``modules`` (default: ``raggio.head`` and
    ``raggio.node.main``) started with ``--temp-dir temp_dir``, as ``raggio start`` starts
    them."""
    modules = modules or ("raggio.head", "raggio.node.main")
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if (any(module in cmdline for module in modules)
                and any(flag == "--temp-dir" and value == str(temp_dir)
                        for flag, value in zip(cmdline, cmdline[1:])) and alive(proc)):
            found.append(proc)
    return found


def env_for(temp_dir) -> dict:
    """The environment for a raggio program a test starts (a driver, ``raggio start``): this
    process's, without its ``RAGGIO_*`` settings and ``RAY_ADDRESS``, on ``temp_dir``, so
    that it finds the test's cluster and no other."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RAGGIO_") and k != "RAY_ADDRESS"}
    env["RAGGIO_TEMP_DIR"] = str(temp_dir)
    return env


def wait_until(condition: Callable[[], object], timeout_s: float = 30.0,
               what: str = "condition", interval_s: float = 0.05):
    """Poll ``condition`` until it returns something true, and return that; raise
    AssertionError naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


def wait_for_condition(condition_predictor: Callable[..., object], timeout: float = 10,
                       retry_interval_ms: float = 100, **kwargs) -> None:
    """Ray's name and signature for ``wait_until``."""
    wait_until(lambda: condition_predictor(**kwargs), timeout_s=timeout,
               what=getattr(condition_predictor, "__name__", "condition"),
               interval_s=retry_interval_ms / 1000)


class Gate:
    """A latch for tests that hold tasks back: make it an actor with ``raggio.remote(Gate)``
    and ``max_concurrency`` > 1; ``wait()`` returns "opened" once ``open()`` was called."""

    def __init__(self):
        self._event = threading.Event()

    def wait(self) -> str:
        self._event.wait()
        return "opened"

    def open(self) -> None:
        self._event.set()
