"""What the head does for monitoring: Grafana's files, and the Prometheus a config asks for.

``raggio/head.py`` builds a ``HeadMonitoring`` before its ready line (a bad
``--monitoring-config``, a missing Prometheus or a taken port then fails the
start, with the reason), calls ``start`` after it, and ``close`` when it exits.
``start`` writes Grafana's files (``grafana.py``) and, when the config enables
Prometheus, launches it (``prometheus.py``) in a thread, so that nothing waits
for it; ``close`` stops that Prometheus. A head killed with SIGKILL leaves it
running: ``raggio metrics shutdown-prometheus`` stops it then.
"""

from __future__ import annotations

import asyncio
import logging

from raggio.exceptions import RaySystemError
from raggio.monitoring import grafana, monitoring_config, prometheus

logger = logging.getLogger(__name__)

#: How the user sets Prometheus's port, in error messages.
PORT_HINT = "`monitoring_config: {prometheus: {port: PORT}}`"


class HeadMonitoring:
    """See the module docstring. ``start()`` once, ``await close()`` at the end."""

    session_dir: str
    config: monitoring_config.MonitoringConfig
    _task: asyncio.Task | None  #: ``_run``, awaited by ``close()``
    _launched: prometheus.PrometheusProcess | None  #: the Prometheus this head started

    def __init__(self, session_dir: str, config_path: str = ""):
        """Read and check ``config_path`` (none: no Prometheus) and, if it enables
        Prometheus, that it can run: the binary is there and the port free.

        Raises:
            ValueError: the config file is unreadable or wrong.
            RaySystemError: Prometheus is not installed or its port is taken.
        """
        self.session_dir = session_dir
        self.config = (monitoring_config.load(config_path) if config_path
                       else monitoring_config.MonitoringConfig())
        self._task = None
        self._launched = None
        if self.config.prometheus_enabled:
            prometheus.find_binary()
            if self.config.prometheus_port:
                prometheus.pick_port(prometheus.DEFAULT_HOST, self.config.prometheus_port,
                                     port_hint=PORT_HINT)

    def start(self) -> None:
        """Start writing Grafana's files and, if asked, launching Prometheus, in a task
        that ``close()`` awaits; returns at once."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        # Both in a thread: the files are disk I/O, and Prometheus takes ~1 s to get ready.
        url = None
        if self.config.prometheus_enabled and self.config.prometheus_port:
            url = f"http://{prometheus.DEFAULT_HOST}:{self.config.prometheus_port}"
        await asyncio.to_thread(self._write_grafana, url)
        if not self.config.prometheus_enabled:
            return
        try:
            self._launched = await asyncio.to_thread(
                prometheus.launch, self.session_dir, port=self.config.prometheus_port,
                port_hint=PORT_HINT)
        except (RaySystemError, OSError) as exc:
            logger.error("monitoring_config: Prometheus did not start: %s",
                         getattr(exc, "client_exc", exc))
            return
        logger.info("Prometheus (pid %d) is ready at %s", self._launched.pid,
                    self._launched.url)
        if not self.config.prometheus_port:  # a free port: Grafana's datasource learns it now
            await asyncio.to_thread(self._write_grafana, self._launched.url)

    def _write_grafana(self, prometheus_url: str | None) -> None:
        try:
            grafana.write(self.session_dir, prometheus_url)
        except OSError as exc:  # the cluster runs as well without them
            logger.warning("could not write Grafana's files: %s", exc)

    async def close(self) -> None:
        """Stop the Prometheus this head started, if it still runs (not one that someone
        launched for the session after stopping it). A launch under way is waited for: the
        launching thread cannot be cancelled, and would leave its Prometheus running."""
        if self._task is None:
            return
        await asyncio.shield(self._task)
        if self._launched is not None and prometheus.running(self.session_dir) == self._launched:
            await asyncio.to_thread(prometheus.stop, self.session_dir)
