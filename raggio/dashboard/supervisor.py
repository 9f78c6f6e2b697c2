"""The head's side of the dashboard: take its port, start its process, start it again.

The head binds the listening socket itself (``bind``), so that a port in use
is an error at once, naming the flag, and the URL is known before the
dashboard's process has imported anything; ``init()`` does not wait for it.
The process inherits the socket (``python -m raggio.dashboard --fd N``), runs
at a lower priority than the head and dies with it; if it exits, another
starts on the same socket (``raggio/supervised.py``). A driver's private head starts it on demand, when the first
client connects (``DashboardSupervisor.start``). No import of aiohttp here:
the head stays light.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import sys

from raggio.exceptions import RaySystemError
from raggio.supervised import Supervised

#: How many ports after the default ``init()`` tries when it is taken (Ray's figure).
PORT_SEARCH = 50


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


class DashboardSupervisor(Supervised):
    """Runs the dashboard's process on ``sock`` until ``stop()``."""

    sock: socket.socket  #: the listening socket, held here for the process's whole life
    url: str
    _on_demand: bool  #: start the process when a client connects, not at once

    def __init__(self, sock: socket.socket, *, gcs_address: str, session_dir: str,
                 node_ip: str = "127.0.0.1"):
        fd = sock.fileno()
        super().__init__("dashboard", [
            sys.executable, "-m", "raggio.dashboard", "--fd", str(fd),
            "--gcs-address", gcs_address, "--session-dir", session_dir,
            "--parent-pid", str(os.getpid())], session_dir, pass_fds=(fd,))
        self.sock = sock
        self.url = url_of(sock, node_ip)
        self._on_demand = False

    def start(self, *, on_demand: bool = False) -> None:
        """Start the process and watch it (on the running loop); returns at once.

        With ``on_demand`` the process starts when the first client connects (the
        connection waits in the socket's queue meanwhile), and again after an exit at the
        next one: a driver's private head (``init()``) pays for no dashboard that nobody
        opens, and its start-up (~0.5 s of CPU, most of it importing aiohttp) does not
        compete with the driver's first tasks.
        """
        self._on_demand = on_demand
        super().start()

    async def _before_start(self) -> None:
        """Return once a client waits on the socket (``on_demand``), leaving its connection
        queued there."""
        if not self._on_demand:
            return
        loop = asyncio.get_running_loop()
        waiting = loop.create_future()
        loop.add_reader(self.sock.fileno(), lambda: waiting.done() or waiting.set_result(None))
        try:
            await waiting
        finally:
            loop.remove_reader(self.sock.fileno())

    async def stop(self) -> None:
        """End the process (SIGTERM, then SIGKILL) and close the socket; no other starts."""
        await super().stop()
        self.sock.close()
