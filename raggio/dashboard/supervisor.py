"""The head's side of the dashboard: take its port, start its process, start it again.

The head binds the listening socket itself (``bind``), so that a port in use
is an error at once, naming the flag, and the URL is known before the
dashboard's process has imported anything; ``init()`` does not wait for it.
The process inherits the socket (``python -m raggio.dashboard --fd N``); if it
exits, the supervisor starts another on the same socket after a pause that
grows with each quick exit. No import of aiohttp here: the head stays light.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import time

from raggio.exceptions import RaySystemError

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8265
#: How many ports after the default ``init()`` tries when it is taken (Ray's figure).
PORT_SEARCH = 50
#: Pauses before starting the dashboard again: doubled after each exit within a minute.
RESTART_DELAY_S, MAX_RESTART_DELAY_S = 0.5, 30.0


class DashboardPortInUse(RaySystemError):
    """The dashboard's port is taken; the message names the flag to change."""


def bind(host: str, port: int, *, search: bool) -> socket.socket:
    """A listening socket on ``host:port``; with ``search``, on the first free port of the
    ``PORT_SEARCH`` after it when it is taken (``init()``'s private cluster, as Ray).

    Raises:
        DashboardPortInUse: the port (every one tried) is taken.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    candidates = range(port, port + PORT_SEARCH + 1) if search and port else (port,)
    for candidate in candidates:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, candidate))
        except OSError as exc:
            sock.close()
            last_error = exc
            continue
        sock.listen(128)
        sock.set_inheritable(True)
        return sock
    tried = f"ports {port}-{port + PORT_SEARCH}" if len(candidates) > 1 else f"port {port}"
    raise DashboardPortInUse(
        f"The dashboard cannot listen on {host}, {tried}: {last_error.strerror}. Another "
        "cluster's dashboard (or another program) has it. Pass --dashboard-port=<free port> "
        "(0 picks one), or --include-dashboard=false to start without a dashboard "
        "(init(dashboard_port=..., include_dashboard=False) in a script).")


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


class DashboardSupervisor:
    """Runs the dashboard's process on ``sock`` until ``stop()``."""

    def __init__(self, sock: socket.socket, *, gcs_address: str, session_dir: str):
        self.sock = sock
        self.url = url_of(sock)
        self._gcs_address = gcs_address
        self._session_dir = session_dir
        self._process: subprocess.Popen | None = None
        self._task: asyncio.Task | None = None
        self._stopping = False

    def start(self) -> None:
        """Start the process and watch it (on the running loop); returns at once."""
        self._task = asyncio.get_running_loop().create_task(self._keep_running())

    def _spawn(self) -> subprocess.Popen:
        log_dir = os.path.join(self._session_dir, "logs")
        os.makedirs(log_dir, exist_ok=True)
        with open(os.path.join(log_dir, "dashboard.log"), "ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "raggio.dashboard", "--fd", str(self.sock.fileno()),
                 "--gcs-address", self._gcs_address, "--session-dir", self._session_dir,
                 "--parent-pid", str(os.getpid())],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                pass_fds=(self.sock.fileno(),))

    async def _keep_running(self) -> None:
        delay_s = RESTART_DELAY_S
        while not self._stopping:
            started = time.monotonic()
            self._process = self._spawn()
            while self._process.poll() is None:
                await asyncio.sleep(0.5)
            if self._stopping:
                return
            quick = time.monotonic() - started < 60
            delay_s = min(delay_s * 2, MAX_RESTART_DELAY_S) if quick else RESTART_DELAY_S
            logger.warning("the dashboard exited with code %s; starting it again in %.1f s "
                           "(its log: %s/logs/dashboard.log)", self._process.returncode,
                           delay_s, self._session_dir)
            await asyncio.sleep(delay_s)

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            for _ in range(50):
                if process.poll() is not None:
                    break
                await asyncio.sleep(0.05)
            else:
                process.kill()
                process.wait()
        self.sock.close()
