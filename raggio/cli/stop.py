"""``raggio stop``: end every raggio process this machine runs, and clean up after them.

Finds raggio's processes by their command lines (heads, node managers,
zygotes, dashboards) and titles (``raggio::`` workers), for the current user only; asks
them to stop (SIGTERM), waits up to the grace period, then kills what is
left (at once with ``--force``). Then removes the arenas in /dev/shm, the
node sockets and the current-cluster file. The current cluster's Prometheus
(``raggio metrics launch-prometheus``) is stopped first, by its recorded pid.
"""

from __future__ import annotations

import glob
import os
import signal
import time

import click
import psutil

from raggio import cluster_file
from raggio.monitoring import prometheus

_MODULES = ("raggio.head", "raggio.node.main", "raggio.node.zygote", "raggio.dashboard",
            "raggio.autoscaler.monitor")


def raggio_processes() -> list[psutil.Process]:
    me, user = os.getpid(), psutil.Process().username()
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "username"]):
        try:
            cmdline = proc.info["cmdline"] or []
            if proc.pid == me or proc.info["username"] != user:
                continue
            if (cmdline and cmdline[0].startswith("raggio::")) or any(
                    module in cmdline for module in _MODULES):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def describe(proc: psutil.Process) -> str:
    try:
        cmdline = proc.cmdline()
    except psutil.Error:
        return f"pid {proc.pid}"
    if cmdline and cmdline[0].startswith("raggio::"):
        return f"{cmdline[0]} (pid {proc.pid})"
    module = next((m for m in _MODULES if m in cmdline), "raggio")
    return f"{module} (pid {proc.pid})"


def stop(force: bool, grace_period_s: float, temp_dir: str) -> None:
    _stop_prometheus(temp_dir)
    processes = raggio_processes()
    if not processes:
        click.echo("Did not find any active raggio processes.")
        _clean_up(temp_dir)
        return
    names = {proc.pid: describe(proc) for proc in processes}
    # Heads and node managers first: they end their own zygotes and workers and remove their
    # arenas; whatever is left after the grace period is killed.
    managers = [p for p in processes if "raggio.head" in names[p.pid]
                or "raggio.node.main" in names[p.pid]]
    for proc in (processes if force else managers):
        try:
            proc.send_signal(signal.SIGKILL if force else signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _wait_gone(managers, 0 if force else grace_period_s)
    alive = _wait_gone(processes, 0 if force else 1.0)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
    for pid in sorted(names):
        click.echo(f"Stopped {names[pid]}")
    killed = (f" ({', '.join(names[p.pid] for p in alive)} only with SIGKILL, after the grace "
              "period)" if alive and not force else "")
    click.echo(f"Stopped all {len(processes)} raggio processes{killed}.")
    _clean_up(temp_dir)


def _stop_prometheus(temp_dir: str) -> None:
    """The Prometheus that `raggio metrics launch-prometheus` (or the head's
    monitoring_config) started for the current cluster: not a raggio process, so it is
    found by the pid its session recorded."""
    info = cluster_file.read(temp_dir)
    if info is not None and info.get("session_dir"):
        stopped = prometheus.stop(info["session_dir"])
        if stopped is not None:
            click.echo(f"Stopped Prometheus (pid {stopped.pid})")


def _wait_gone(processes: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Poll every 20 ms (psutil.wait_procs backs off to seconds); return the survivors."""
    deadline = time.monotonic() + timeout_s
    alive = list(processes)
    while alive:
        alive = [p for p in alive if _running(p)]
        if not alive or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    return alive


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _clean_up(temp_dir: str) -> None:
    removed = 0
    for path in glob.glob("/dev/shm/raggio-*.arena") + glob.glob(
            os.path.join(temp_dir, "session_*", "node-*.sock")):
        try:
            os.unlink(path)
            removed += 1
        except OSError:
            pass
    info = cluster_file.read(temp_dir)
    if info is not None:
        cluster_file.remove(temp_dir, info.get("gcs_address", ""))
    for suffix in ("", "-wal", "-shm"):  # a stopped cluster has ended: start the next one empty
        try:
            os.unlink(cluster_file.default_store_path(temp_dir) + suffix)
        except FileNotFoundError:
            pass
    if removed:
        click.echo(f"Removed {removed} leftover arena and socket files.")
