"""The head's side of the dashboard: take its port, start its process, start it again.

The head binds the listening socket itself (``bind``), so that a port in use
is an error at once, naming the flag, and the URL is known before the
dashboard's process has imported anything; ``init()`` does not wait for it.
The process inherits the socket (``python -m raggio.dashboard --fd N``), runs
at a lower priority than the head and dies with it; if it exits, the
supervisor starts another on the same socket after a pause that grows with
each quick exit. A driver's private head starts it on demand, when the first
client connects (``DashboardSupervisor.start``). No import of aiohttp here:
the head stays light.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import subprocess
import sys
import time

from raggio.exceptions import RaySystemError

logger = logging.getLogger(__name__)

#: How many ports after the default ``init()`` tries when it is taken (Ray's figure).
PORT_SEARCH = 50
#: Pauses before starting the dashboard again: doubled after each exit within a minute.
RESTART_DELAY_S, MAX_RESTART_DELAY_S = 0.5, 30.0
#: How long a stopped dashboard gets to exit after SIGTERM before SIGKILL.
STOP_TIMEOUT_S = 2.5
#: How much lower than the head the dashboard runs (``nice``): it is a view, never on a
#: task's path.
NICENESS = 5


def bind(host: str, port: int, *, search: bool) -> socket.socket:
    """A listening socket on ``host:port``; with ``search``, on the first free port of the
    ``PORT_SEARCH`` after it when it is taken (``init()``'s private cluster, as Ray).

    Raises:
        RaySystemError: the port (every one tried) is taken; the message names the flag.
        RaySystemError: ``host`` is not an address of this machine.
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
            if exc.errno != errno.EADDRINUSE:
                raise RaySystemError(
                    f"The dashboard cannot listen on {host}:{candidate}: {exc.strerror or exc}. "
                    "Pass --dashboard-host=<an address of this machine> (127.0.0.1: this "
                    "machine only; 0.0.0.0: every interface).") from None
            continue
        sock.listen(128)
        sock.set_inheritable(True)
        return sock
    tried = f"ports {port}-{port + PORT_SEARCH}" if len(candidates) > 1 else f"port {port}"
    raise RaySystemError(
        f"The dashboard cannot listen on {host}, {tried}: address already in use. Another "
        "cluster's dashboard (or another program) has it. Pass --dashboard-port=<free port> "
        "(0 picks one), or --include-dashboard=false to start without a dashboard "
        "(init(dashboard_port=..., include_dashboard=False) in a script).")


def url_of(sock: socket.socket, node_ip: str = "127.0.0.1") -> str:
    """The dashboard's URL; on a wildcard address (0.0.0.0), at the head's own address, which
    this machine and others can reach (as Ray's ``webui_url``)."""
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = node_ip
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class DashboardSupervisor:
    """Runs the dashboard's process on ``sock`` until ``stop()``."""

    sock: socket.socket  #: the listening socket, held here for the process's whole life
    url: str
    _process: asyncio.subprocess.Process | None  #: the current process (or the last one)
    _task: asyncio.Task | None  #: ``_keep_running``, cancelled and awaited by ``stop()``
    _on_demand: bool  #: start the process when a client connects, not at once

    def __init__(self, sock: socket.socket, *, gcs_address: str, session_dir: str,
                 node_ip: str = "127.0.0.1"):
        self.sock = sock
        self.url = url_of(sock, node_ip)
        self._gcs_address = gcs_address
        self._session_dir = session_dir
        self._process = None
        self._task = None
        self._on_demand = False

    def start(self, *, on_demand: bool = False) -> None:
        """Start the process and watch it (on the running loop); returns at once.

        With ``on_demand`` the process starts when the first client connects (the
        connection waits in the socket's queue meanwhile), and again after an exit at the
        next one: a driver's private head (``init()``) pays for no dashboard that nobody
        opens, and its start-up (~0.5 s of CPU, most of it importing aiohttp) does not
        compete with the driver's first tasks.
        """
        if self._task is None:
            self._on_demand = on_demand
            self._task = asyncio.get_running_loop().create_task(self._keep_running())

    def pid(self) -> int | None:
        """The dashboard's process, while it runs."""
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    async def _wait_for_a_client(self) -> None:
        """Return once a client waits on the socket, leaving its connection queued there."""
        loop = asyncio.get_running_loop()
        waiting = loop.create_future()
        loop.add_reader(self.sock.fileno(), lambda: waiting.done() or waiting.set_result(None))
        try:
            await waiting
        finally:
            loop.remove_reader(self.sock.fileno())

    async def _spawn(self) -> asyncio.subprocess.Process:
        log_dir = os.path.join(self._session_dir, "logs")
        os.makedirs(log_dir, exist_ok=True)
        fd = self.sock.fileno()
        with open(os.path.join(log_dir, "dashboard.log"), "ab") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "raggio.dashboard", "--fd", str(fd),
                "--gcs-address", self._gcs_address, "--session-dir", self._session_dir,
                "--parent-pid", str(os.getpid()),
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(fd,))
        # Set here, before the process has imported anything: its start-up (~0.5 s of CPU,
        # most of it aiohttp's import) then yields to the cluster's work on a small machine.
        try:
            os.setpriority(os.PRIO_PROCESS, process.pid,
                           min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICENESS))
        except OSError:
            pass  # it exited already; _keep_running sees it
        return process

    async def _keep_running(self) -> None:
        delay_s = RESTART_DELAY_S
        while True:
            if self._on_demand:
                await self._wait_for_a_client()
            started = time.monotonic()
            self._process = await self._spawn()
            returncode = await self._process.wait()
            quick = time.monotonic() - started < 60
            delay_s = min(delay_s * 2, MAX_RESTART_DELAY_S) if quick else RESTART_DELAY_S
            logger.warning("the dashboard exited with code %s; it starts again in %.1f s%s "
                           "(its log: %s/logs/dashboard.log)", returncode, delay_s,
                           " or at the next request after that" if self._on_demand else "",
                           self._session_dir)
            await asyncio.sleep(delay_s)

    async def stop(self) -> None:
        """End the process (SIGTERM, then SIGKILL after ``STOP_TIMEOUT_S``) and close the
        socket; the supervisor starts no other."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])
        process = self._process
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()
        self.sock.close()
