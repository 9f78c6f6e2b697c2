"""A worker process's entry: forked by the zygote, runs tasks until told to stop.

Redirects stdout/stderr to the node's log files (the log monitor forwards
them to drivers), applies the runtime env, starts a core worker that
registers with the node manager, then runs the task executor's main loop.
The runtime env the worker was started in is its tasks' default, as in Ray:
the tasks and actors they submit inherit it.
The worker exits when its node manager goes away.
"""

from __future__ import annotations

import os
import sys

from raggio.config import get_config
from raggio.core import context
from raggio.core.core_worker import WORKER, CoreWorker


def _redirect_output(log_dir: str, worker_id: str) -> None:
    base = os.path.join(log_dir, f"worker-{worker_id[:16]}-{os.getpid()}")
    devnull = os.open(os.devnull, os.O_RDONLY)
    if devnull != 0:
        os.dup2(devnull, 0)
        os.close(devnull)
    for fd, suffix in ((1, "out"), (2, "err")):
        target = os.open(f"{base}.{suffix}", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if target != fd:
            os.dup2(target, fd)
            os.close(target)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)


def _apply_runtime_env(prepared: dict) -> None:
    """Enter what the node set up: the working_dir as cwd, the virtual environment's
    site-packages, the working_dir and the py_modules first on sys.path (before what the
    zygote imported from; a module it already imported stays as it is), the env vars."""
    os.environ.update(prepared["env_vars"])
    if prepared["cwd"]:
        os.chdir(prepared["cwd"])
    sys.path[:0] = prepared["sys_path"]


def main(request: dict) -> None:
    _redirect_output(request["log_dir"], request["worker_id"])
    if request.get("prepared_env"):
        _apply_runtime_env(request["prepared_env"])
    core = CoreWorker(mode=WORKER, cfg=get_config(), gcs_address=request["gcs_address"],
                      node_address=request["node_address"], token=request["token"],
                      worker_id=bytes.fromhex(request["worker_id"]), node_ip=request["node_ip"],
                      runtime_env=request.get("runtime_env"))
    context.set_core(core)
    core.start(core.cfg.connect_timeout_s)
    core.node.close_callbacks.append(lambda _c: os._exit(0))
    core.executor.run_forever()
