"""Helpers for tests of raggio programs (Ray keeps these in ``ray._private.test_utils``).

Waiting is for a condition with a deadline, never for a fixed time.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Callable


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
