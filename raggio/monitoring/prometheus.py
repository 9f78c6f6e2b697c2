"""A local Prometheus for a session: its config, launching it, stopping it.

``raggio metrics launch-prometheus`` (``cli/metrics.py``) and a head whose
``monitoring_config`` enables Prometheus (``head_monitoring.py``) call
``launch``; ``raggio metrics shutdown-prometheus`` and that head's exit call
``stop``. Everything lives in the session's ``metrics/prometheus/`` beside the
service discovery file the control store keeps (``gcs/metrics_discovery.py``):
the generated ``prometheus.yml`` (one scrape job over that file, every 5 s,
with the cluster token as a Bearer credential, since every raggio port wants
it), the data directory, and ``prometheus.pid``, which names the one process
``stop`` may end. The binary is Debian's ``prometheus`` package's (any
``prometheus`` on PATH); raggio downloads nothing.

Not owned here: the node endpoints Prometheus scrapes, and which session the
CLI means (``cli/metrics.py`` finds the machine's current cluster).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import socket
import subprocess
import time

import psutil

from raggio.common import process_identity
from raggio.exceptions import RaySystemError
from raggio.common.prometheus_files import JOB_LABEL, prometheus_dir, service_discovery_path

#: Prometheus's own default port (Ray's `ray metrics launch-prometheus` uses it too).
DEFAULT_PORT = 9090
#: Prometheus listens on loopback unless told otherwise: its UI and API have no login.
DEFAULT_HOST = "127.0.0.1"
#: How often each node is scraped: the resolution of the dashboard's history too.
SCRAPE_INTERVAL_S = 5
#: How long a new Prometheus gets to answer ``/-/ready`` (it replays its write-ahead log
#: first: well under a second for a session's data).
READY_TIMEOUT_S = 30.0
#: How long a stopped Prometheus gets to exit after SIGTERM (it flushes its head block)
#: before SIGKILL.
STOP_TIMEOUT_S = 15.0
CONFIG_FILE = "prometheus.yml"
PID_FILE = "prometheus.pid"
INSTALL_HINT = ("Install Debian's package `prometheus` (apt-get install prometheus), or put a "
                "Prometheus binary named `prometheus` on PATH.")


@dataclasses.dataclass(frozen=True)
class PrometheusProcess:
    """A Prometheus that ``launch`` started, as its pid file records it."""

    pid: int
    create_time: float  #: psutil's, so that a reused pid is never taken for it
    url: str  #: "http://HOST:PORT"


def find_binary() -> str:
    """The ``prometheus`` binary to run.

    Raises:
        RaySystemError: none is installed; the message names the package.
    """
    path = shutil.which("prometheus")  # Debian's package puts it in /usr/bin
    if path is None:
        raise RaySystemError(f"Prometheus is not installed: no `prometheus` on PATH. "
                             f"{INSTALL_HINT}")
    return path


def config(session_dir: str) -> dict:
    """The Prometheus configuration of a session: one job, scraping the nodes that the
    service discovery file lists, with the cluster token."""
    return {
        "global": {"scrape_interval": f"{SCRAPE_INTERVAL_S}s",
                   "evaluation_interval": f"{SCRAPE_INTERVAL_S}s"},
        "scrape_configs": [{
            "job_name": JOB_LABEL,
            "file_sd_configs": [{"files": [service_discovery_path(session_dir)]}],
            "authorization": {"type": "Bearer",
                              "credentials_file": os.path.join(session_dir, "token")},
        }],
    }


def write_config(session_dir: str) -> str:
    """Write ``prometheus.yml`` into the session's Prometheus directory; return its path."""
    import yaml  # here, not at the top: the head imports this module and rarely needs it

    path = os.path.join(prometheus_dir(session_dir), CONFIG_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("# Written by raggio for this session; `raggio metrics launch-prometheus`\n"
                "# runs Prometheus with it. The targets are in the file file_sd_configs names.\n")
        yaml.safe_dump(config(session_dir), f, sort_keys=False)
    return path


def running(session_dir: str) -> PrometheusProcess | None:
    """The session's Prometheus if its pid file names a process that still runs."""
    record = _recorded(session_dir)
    return record if record is not None and _process(record) is not None else None


def _recorded(session_dir: str) -> PrometheusProcess | None:
    try:
        with open(os.path.join(prometheus_dir(session_dir), PID_FILE)) as f:
            return PrometheusProcess(**json.load(f))
    except (OSError, ValueError, TypeError):
        return None


def _process(record: PrometheusProcess) -> psutil.Process | None:
    """The process ``record`` names, if it still runs (not a later one with its pid)."""
    return process_identity.find(record.pid, record.create_time)


def pick_port(host: str, port: int, *, port_hint: str) -> int:
    """``port`` if it is free on ``host`` (0: a free one).

    Raises:
        RaySystemError: the port is taken, or ``host`` is not this machine's; the message
            shows ``port_hint``, how the user sets the port.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As Prometheus binds (Go sets SO_REUSEADDR): a closed connection's TIME_WAIT
        # does not make the port look taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise RaySystemError(_port_in_use(host, port, port_hint)) from None
            raise RaySystemError(f"Prometheus cannot listen on {host}:{port}: "
                                 f"{exc.strerror or exc}.") from None
        return sock.getsockname()[1]


def _port_in_use(host: str, port: int, port_hint: str) -> str:
    return (f"Prometheus cannot listen on {host}:{port}: the port is in use (another "
            f"Prometheus, or another program, has it). Choose a free one with {port_hint} "
            "(0 picks one).")


def launch(session_dir: str, *, port: int = DEFAULT_PORT, host: str = DEFAULT_HOST,
           port_hint: str = "--port=PORT") -> PrometheusProcess:
    """Start Prometheus for the session in the background; return once it is ready.

    It runs in a session of its own (a terminal's Ctrl-C does not reach it) and outlives
    the caller; ``stop`` ends it. Its output goes to ``<session>/logs/prometheus.log``.

    Args:
        session_dir: The cluster's session directory, on the head's machine.
        port: Where Prometheus listens (0: any free port).
        host: Its address (loopback by default: its UI has no login).
        port_hint: How the user sets ``port`` (``--port=PORT``), for error messages.

    Raises:
        RaySystemError: Prometheus already runs for this session, is not installed, its
            port is taken, or it exited or did not get ready (with its last log line).
    """
    already = running(session_dir)
    if already is not None:
        raise RaySystemError(
            f"Prometheus already runs for this session at {already.url} (pid {already.pid}). "
            "Stop it first with `raggio metrics shutdown-prometheus`.")
    binary = find_binary()
    port = pick_port(host, port, port_hint=port_hint)
    config_path = write_config(session_dir)
    log_dir = os.path.join(session_dir, "logs")
    os.makedirs(log_dir, exist_ok=True)
    log_path = os.path.join(log_dir, "prometheus.log")
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            [binary, f"--config.file={config_path}",
             f"--storage.tsdb.path={os.path.join(prometheus_dir(session_dir), 'data')}",
             f"--web.listen-address={address}"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    record = PrometheusProcess(popen.pid, process_identity.start_time(popen.pid),
                               f"http://{address}")
    _write_pid_file(session_dir, record)
    try:
        _wait_ready(popen, host, port, log_path, port_hint)
    except BaseException:
        stop(session_dir)
        raise
    return record


def _write_pid_file(session_dir: str, record: PrometheusProcess) -> None:
    path = os.path.join(prometheus_dir(session_dir), PID_FILE)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(dataclasses.asdict(record), f)
    os.replace(tmp, path)


def _wait_ready(popen: subprocess.Popen, host: str, port: int, log_path: str,
                port_hint: str) -> None:
    """Return once Prometheus answers ``/-/ready`` with 200; raise if it exits first."""
    import http.client  # here: only a launch needs it, and the head imports this module

    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            reason = _last_log_line(log_path)
            if "address already in use" in reason:
                raise RaySystemError(_port_in_use(host, port, port_hint))
            raise RaySystemError(f"Prometheus exited at start (code {popen.returncode}): "
                                 f"{reason}\n(full log: {log_path})")
        conn = http.client.HTTPConnection(host, port, timeout=1.0)
        try:
            conn.request("GET", "/-/ready")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass  # not listening yet
        finally:
            conn.close()
        time.sleep(0.1)
    raise RaySystemError(f"Prometheus did not get ready within {READY_TIMEOUT_S:g} s "
                         f"(last log line: {_last_log_line(log_path)}; full log: {log_path}).")


def _last_log_line(log_path: str) -> str:
    try:
        with open(log_path, "rb") as f:  # its end: the log keeps every launch's output
            f.seek(max(0, os.fstat(f.fileno()).st_size - 8192))
            tail = f.read().decode(errors="replace")
    except OSError:
        return "no log"
    lines = [line.strip() for line in tail.splitlines()[-20:] if line.strip()]
    errors = [line for line in lines if "level=error" in line]
    return (errors or lines or ["no log"])[-1]


def stop(session_dir: str, timeout_s: float = STOP_TIMEOUT_S) -> PrometheusProcess | None:
    """End the session's Prometheus (the process its pid file names, nothing else) and wait
    for it; return it, or None when none ran. SIGTERM, then SIGKILL after ``timeout_s``."""
    record = _recorded(session_dir)
    process = None if record is None else _process(record)
    if process is not None:
        try:
            process.terminate()
            process.wait(timeout_s)
        except psutil.TimeoutExpired:
            process.kill()
            process.wait(timeout_s)
        except psutil.NoSuchProcess:
            pass
    try:
        os.unlink(os.path.join(prometheus_dir(session_dir), PID_FILE))
    except FileNotFoundError:
        pass
    return record if process is not None else None
