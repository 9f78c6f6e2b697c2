"""The node's Prometheus endpoint: ``GET http://<node ip>:<metrics_export_port>/metrics``.

Every node manager serves one, as every Ray node's metrics agent does, with
Ray's family and label names (``ray_node_*``, ``ray_object_store_*``,
``ray_resources``, ``ray_component_*``; on the head also the control store's
``ray_cluster_active_nodes``, ``ray_tasks``, ``ray_actors``, jobs) and
raggio's own under ``raggio_``, plus the applications' metrics
(``raggio.util.metrics``, ``node/app_metrics.py``) as ``ray_<name>``.

The endpoint asks for the cluster token, as every raggio port does:
``Authorization: Bearer <token>`` (Prometheus: ``authorization:
credentials_file: <session>/token``); anything else gets 401.

Nothing is measured until someone asks: the node binds the port when it
starts (so that it is in the node's info, and a port in use fails the start),
and the first connection starts a thread that imports prometheus_client
(~0.1 s, which the node's start-up does not pay) and serves the socket with
its WSGI app. Each scrape reads the node's state on the node's event loop
(``NodeManager.metrics_snapshot``: one hop, so that nothing is read while the
loop changes it) and measures the machine and the node's processes with
psutil in the server's thread.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import logging
import socket
import threading
import time
from typing import Awaitable, Callable

import psutil

logger = logging.getLogger(__name__)

#: How long a scrape waits for the node's event loop.
SNAPSHOT_TIMEOUT_S = 5.0
#: The shortest interval CPU use and network speed are measured over.
MIN_INTERVAL_S = 1.0


def bind(host: str, port: int) -> socket.socket:
    """The endpoint's listening socket.

    Raises:
        ValueError: the port is taken (the message names ``--metrics-export-port``).
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ValueError(
                f"The metrics port {host}:{port} is already in use. Pass "
                "--metrics-export-port=<a free port>, or leave it out to take any free "
                "one.") from None
        raise ValueError(f"The metrics endpoint cannot listen on {host}:{port}: "
                         f"{exc.strerror or exc}.") from None
    sock.listen(16)
    return sock


class MetricsEndpoint:
    """See the module docstring. ``start()`` on the node's loop; ``close()`` to stop.

    ``snapshot`` is a coroutine function run on that loop for each scrape; it returns
    ``NodeManager.metrics_snapshot``'s dict.
    """

    def __init__(self, host: str, port: int, token: str, labels: dict,
                 snapshot: Callable[[], Awaitable[dict]]):
        self._host, self._port = host, port
        self._token = token
        self.labels = labels  #: ip, SessionName, NodeId
        self._snapshot = snapshot
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server = None  #: the WSGI server, once someone connected
        self.usage = UsageSampler()

    @property
    def port(self) -> int:
        return self._sock.getsockname()[1] if self._sock is not None else 0

    def start(self) -> None:
        """Bind the port; serve it from the first connection on.

        Raises:
            ValueError: the port is taken.
        """
        self._sock = bind(self._host, self._port)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._sock.fileno(), self._first_connection)

    def _first_connection(self) -> None:
        self._loop.remove_reader(self._sock.fileno())
        threading.Thread(target=self._serve, name="metrics-endpoint", daemon=True).start()

    def close(self) -> None:
        if self._sock is None:
            return
        if self._server is not None:
            self._server.shutdown()  # returns once serve_forever has
            self._server.server_close()
        else:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
        self._sock = None

    # -- the server's thread --

    def _serve(self) -> None:
        from prometheus_client import CollectorRegistry, make_wsgi_app
        from prometheus_client.exposition import ThreadingWSGIServer
        from wsgiref.simple_server import WSGIRequestHandler

        from raggio.node.metric_families import NodeCollector

        class QuietHandler(WSGIRequestHandler):
            def log_message(self, *args):  # scrapes every few seconds: not worth a log line
                pass

        registry = CollectorRegistry(auto_describe=False)
        registry.register(NodeCollector(self))
        server = ThreadingWSGIServer(("", 0), QuietHandler, bind_and_activate=False)
        server.socket.close()
        server.socket = self._sock  # the port the node bound and recorded
        server.server_address = self._sock.getsockname()[:2]
        server.server_name, server.server_port = self._host, self.port
        server.setup_environ()
        server.set_app(self._authenticated(make_wsgi_app(registry)))
        self._server = server
        server.serve_forever(poll_interval=0.5)

    def _authenticated(self, app):
        expected = f"Bearer {self._token}".encode()

        def check(environ, start_response):
            given = environ.get("HTTP_AUTHORIZATION", "").encode()
            if hmac.compare_digest(given, expected):
                return app(environ, start_response)
            start_response("401 Unauthorized", [("Content-Type", "text/plain"),
                                                ("WWW-Authenticate", 'Bearer realm="raggio"')])
            return [b"raggio's metrics ask for the cluster token: send 'Authorization: Bearer "
                    b"<token>' (the token is in the head's session directory, file 'token'; "
                    b"Prometheus: authorization: {credentials_file: <that file>}).\n"]
        return check

    def read_node(self) -> dict:
        """The node's state, read on its loop (called from the server's thread)."""
        future = asyncio.run_coroutine_threadsafe(self._snapshot(), self._loop)
        return future.result(SNAPSHOT_TIMEOUT_S)


class UsageSampler:
    """The machine's CPU use and network speed and the node's processes' CPU use and memory,
    each rate measured over at least ``MIN_INTERVAL_S``: a dashboard and a Prometheus that
    scrape a moment apart read the same rates, not one over a few milliseconds. Scrapes run
    in threads of their own, one at a time here."""

    def __init__(self):
        self._lock = threading.Lock()
        self._at = float("-inf")  #: when the rates were last measured
        self._cpu = 0.0
        self._network: tuple[int, int] | None = None  #: bytes sent, received at ``_at``
        self._speeds = (0.0, 0.0)
        #: pid -> [its Process (cpu_percent measures from its previous call), CPU percent]
        self._processes: dict[int, list] = {}

    def sample(self, pids: dict[int, str]) -> dict:
        """``{"cpu": percent, "network": (sent, received, send/s, receive/s), "processes":
        [(component, pid, rss MB, CPU percent)]}`` for the processes alive of ``pids``
        (pid -> component name)."""
        with self._lock:
            now = time.monotonic()
            network = psutil.net_io_counters()
            fresh = now - self._at >= MIN_INTERVAL_S
            if fresh:
                if self._network is not None:
                    elapsed = now - self._at
                    self._speeds = tuple(max(new - old, 0) / elapsed for new, old in zip(
                        (network.bytes_sent, network.bytes_recv), self._network))
                self._at, self._network = now, (network.bytes_sent, network.bytes_recv)
                self._cpu = psutil.cpu_percent()  # since the previous fresh sample
            return {"cpu": self._cpu, "processes": self._processes_usage(pids, fresh),
                    "network": (network.bytes_sent, network.bytes_recv, *self._speeds)}

    def _processes_usage(self, pids: dict[int, str], fresh: bool) -> list:
        for pid in [pid for pid in self._processes if pid not in pids]:
            del self._processes[pid]
        rows = []
        for pid, component in pids.items():
            entry = self._processes.get(pid)
            try:
                if entry is None:  # its first sample starts the interval the next measures
                    entry = self._processes[pid] = [psutil.Process(pid), 0.0]
                    entry[0].cpu_percent()
                elif fresh:
                    entry[1] = entry[0].cpu_percent()
                rows.append((component, pid, entry[0].memory_info().rss / 2**20, entry[1]))
            except psutil.Error:  # it exited since the node listed it
                self._processes.pop(pid, None)
        return rows
