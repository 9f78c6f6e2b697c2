"""The ready-line handshake between raggio's daemons and whoever starts them.

A head or node process prints one JSON line on stdout once it is serving
(``print_ready``); the starter (``init()``'s private head, ``Cluster``,
``raggio start``) waits for that line with a deadline (``wait_ready``) and
learns the addresses from it. Neither side needs to poll a port. A process
that cannot start prints ``{"error": message}`` instead (``print_error``), so
the starter's error says why (a port in use, a bad storage URL) wherever the
process's stderr went.
``die_with_parent`` ties a started process's life to its starter's.
"""

from __future__ import annotations

import ctypes
import json
import os
import selectors
import signal
import subprocess
import sys
import time

from raggio.exceptions import RaySystemError


def print_ready(info: dict) -> None:
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.flush()


def print_error(message: str) -> None:
    """Say on the ready channel why this process could not start."""
    print_ready({"error": message})


def wait_ready(process: subprocess.Popen, timeout_s: float, what: str) -> dict:
    """The process's ready line; on exit, an error line or timeout, kill it and raise
    RaySystemError (with the process's reason when it gave one)."""
    deadline = time.monotonic() + timeout_s
    reason = None
    try:
        # A selector, not select.select: a driver may hold more than 1024 descriptors.
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if selector.select(0.1):
                    line = process.stdout.readline()
                    if line:
                        ready = json.loads(line)
                        if "error" not in ready:
                            return ready
                        reason = ready["error"]
                        break
                if process.poll() is not None:
                    break
    except BaseException:
        process.kill()  # never leave it running behind an error (or Ctrl-C) here
        process.wait()
        raise
    if process.poll() is None:
        process.kill()
    process.wait()
    if reason is not None:
        raise RaySystemError(f"The {what} did not start: {reason}")
    raise RaySystemError(
        f"The {what} did not start (exit code {process.returncode}"
        + (f", no ready line within {timeout_s:g} s" if process.returncode == -9 else "")
        + "); its error is above or in its log.")


PR_SET_PDEATHSIG = 1  #: prctl's option (linux/prctl.h)


def die_with_parent(parent: int | None = None) -> None:
    """Ask Linux to kill this process when its parent exits (no-op elsewhere): a zygote
    and its workers with their node manager, a dashboard with its head. ``parent``: the
    pid the starter had, for a process that calls this after a slow start-up, by which
    time the parent may have died already (and this process been adopted)."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid() if parent is None else parent
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(0)
