"""What ``raggio up`` and ``down`` show while they work: one row per node.

On a terminal, a live table (rich's ``Live``) with each node's status, the
command it is running, the time it has taken and its log file; otherwise
(piped, CI) one plain line per change, so a log reads as a story.
"""

from __future__ import annotations

import dataclasses
import time

import click
from rich.console import Console
from rich.live import Live
from rich.table import Table

from raggio.launcher.node_provider import STATUS_UP_TO_DATE, STATUS_UPDATE_FAILED

_STYLES = {STATUS_UP_TO_DATE: "green", STATUS_UPDATE_FAILED: "bold red"}


@dataclasses.dataclass
class _Row:
    name: str
    ip: str
    log_path: str
    status: str = "pending"
    detail: str = ""
    started: float = dataclasses.field(default_factory=time.monotonic)
    ended: float | None = None


class Progress:
    """Rows of nodes; ``update`` changes one; use as a context manager around the work."""

    def __init__(self, title: str, logs_dir: str) -> None:
        self.title = title
        self.logs_dir = logs_dir
        self.console = Console(stderr=False)
        self.rows: dict[str, _Row] = {}
        self._live: Live | None = None

    def __enter__(self) -> "Progress":
        click.echo(f"Each node's commands and output go to {self.logs_dir}/<node>-<address>.log")
        if self.console.is_terminal:
            self._live = Live(self._table(), console=self.console, refresh_per_second=8,
                              transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._live is not None:
            self._live.update(self._table())
            self._live.__exit__(*exc_info)

    def add(self, name: str, ip: str, log_path: str) -> None:
        self.rows[name] = _Row(name, ip, log_path)
        self._changed(self.rows[name])

    def update(self, name: str, status: str, detail: str) -> None:
        """``status`` empty: the node's status stays and only its detail (a command) changes."""
        row = self.rows[name]
        if status:
            row.status = status
            final = status in (STATUS_UP_TO_DATE, STATUS_UPDATE_FAILED)
            row.ended = time.monotonic() if final else None
        row.detail = detail
        self._changed(row, plain=bool(status) or bool(detail))

    def _changed(self, row: _Row, plain: bool = True) -> None:
        if self._live is not None:
            self._live.update(self._table())
        elif plain:
            detail = f": {row.detail}" if row.detail else ""
            click.echo(f"  [{row.name} {row.ip}] {row.status}{detail}")

    def _table(self) -> Table:
        table = Table(title=self.title, title_justify="left", expand=False)
        for column in ("node", "address", "status", "time", "doing"):
            table.add_column(column, no_wrap=True, overflow="ellipsis")
        now = time.monotonic()
        for row in self.rows.values():
            took = (row.ended or now) - row.started
            table.add_row(row.name.split("-", 1)[0], row.ip,
                          f"[{_STYLES.get(row.status, 'yellow')}]{row.status}", f"{took:.1f}s",
                          row.detail)
        return table
