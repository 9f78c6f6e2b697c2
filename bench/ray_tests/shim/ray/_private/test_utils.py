"""``ray._private.test_utils``: the test helpers Ray's test files import, on raggio's public API.

Only the helpers the fetched test files use are here. Those that read Ray's internals (the
GCS error pubsub behind ``get_error_message``) raise ``InternalRayAPI`` instead of faking.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import psutil

import ray
from ray._modules import InternalRayAPI


def client_test_enabled() -> bool:
    """Whether the run goes through Ray Client: never here."""
    return False


def wait_for_condition(condition_predictor, timeout: float = 10, retry_interval_ms: float = 100,
                       raise_exceptions: bool = False, **kwargs) -> None:
    """Poll ``condition_predictor(**kwargs)`` until true; RuntimeError after ``timeout`` s.

    An exception from the predictor counts as false (as in Ray) unless
    ``raise_exceptions``; the last one is named in the timeout message.
    """
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            if condition_predictor(**kwargs):
                return
        except Exception as exc:  # noqa: BLE001 - the predictor may fail until it holds
            if raise_exceptions:
                raise
            last_error = exc
        time.sleep(retry_interval_ms / 1000)
    message = f"The condition wasn't met before the timeout ({timeout} s) expired."
    if last_error is not None:
        message += f" Last exception: {last_error!r}"
    raise RuntimeError(message)


def wait_for_pid_to_exit(pid: int, timeout: float = 20) -> None:
    """Wait until process ``pid`` is gone (or a zombie); RuntimeError after ``timeout`` s."""
    def gone() -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
    wait_for_condition(gone, timeout=timeout)


@ray.remote(num_cpus=0)
class SignalActor:
    """An actor that ``wait()`` calls block on until ``send()``."""

    def __init__(self):
        self._event = asyncio.Event()
        self._num_waiters = 0

    def send(self, clear: bool = False) -> None:
        self._event.set()
        if clear:
            self._event.clear()

    async def wait(self, should_wait: bool = True) -> None:
        if not should_wait:
            return
        self._num_waiters += 1
        try:
            await self._event.wait()
        finally:
            self._num_waiters -= 1

    def cur_num_waiters(self) -> int:
        return self._num_waiters


def run_string_as_driver(driver_script: str, env: dict | None = None,
                         encode: str = "utf-8") -> str:
    """Run ``driver_script`` in a new Python process; return its output (stdout and stderr).

    Raises:
        subprocess.CalledProcessError: the script exited non-zero (output attached).
    """
    process = subprocess.run([sys.executable, "-"], input=driver_script.encode(encode),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    output = process.stdout.decode(encode)
    if process.returncode:
        print(output)
        raise subprocess.CalledProcessError(process.returncode, process.args, output)
    return output


def kill_actor_and_wait_for_failure(actor, timeout: float = 10,
                                    retry_interval_ms: float = 100) -> None:
    """``ray.kill(actor)``, then wait until the state API lists the actor as DEAD."""
    from ray.util import state

    actor_id = actor._actor_id.hex()
    ray.kill(actor)

    def dead() -> bool:
        row = state.get_actor(actor_id)
        row_state = row.get("state") if isinstance(row, dict) else getattr(row, "state", None)
        return row_state == "DEAD"
    wait_for_condition(dead, timeout=timeout, retry_interval_ms=retry_interval_ms)


def generate_system_config_map(**system_config) -> dict:
    """Fixture parameters that pass ``system_config`` as ``_system_config``."""
    return {"_system_config": system_config}


def get_other_nodes(cluster, exclude_head: bool = False) -> list:
    """The cluster's nodes other than the one this driver runs on (and the head, if asked)."""
    driver_node_id = ray.get_runtime_context().get_node_id()
    return [node for node in cluster.list_all_nodes()
            if node.unique_id != driver_node_id and not (exclude_head and node.is_head)]


def init_error_pubsub():
    """Ray's GCS error pubsub subscriber: internal."""
    raise InternalRayAPI("internal: init_error_pubsub subscribes to Ray's GCS error pubsub")


def get_error_message(subscriber, num: int, error_type=None, timeout: float = 20):
    """Errors pushed to the driver through Ray's GCS error pubsub: internal."""
    raise InternalRayAPI("internal: get_error_message reads Ray's GCS error pubsub")
