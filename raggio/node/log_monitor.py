"""The log monitor: worker output on this node, forwarded to drivers.

Every worker writes its stdout and stderr to ``worker-<id>-<pid>.out/.err``
in the session's log directory. Before each task a worker prints marker
lines (``:job_id:<n>`` and ``:task_name:<name>``); this monitor reads new
lines every poll period, strips the markers, and sends each driver the lines
of its own job, tagged with the task name, pid and node ip, so the driver
can print ``(name pid=..., ip=...) line``.

It also rotates the directory's logs by size, as Ray does: a worker, node or
control store log past ``max_bytes`` is copied to ``<name>.1`` (older copies
shift up to ``<name>.<backup_count>``) and truncated in place. The writers
opened their files with O_APPEND, so they go on writing at the new end; a
worker's log is rotated just after the monitor has read it to the end.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil

from raggio.common.log_marks import JOB_MARK, TASK_MARK

logger = logging.getLogger(__name__)

_FILE = re.compile(r"worker-[0-9a-f]+-(\d+)\.(out|err)$")
#: The other logs that are rotated: the daemons' output (head.err, node.err...).
_DAEMON_LOG = re.compile(r"[a-z_]+\.(out|err|log)$")


class _LogFile:
    def __init__(self, path: str, pid: int, is_err: bool):
        self.path = path
        self.pid = pid
        self.is_err = is_err
        self.position = 0
        self.partial = b""
        self.job_id: int | None = None
        self.task_name = ""


class LogMonitor:
    """See the module docstring. ``send(job_id, payload)`` delivers a batch."""

    def __init__(self, log_dir: str, node_ip: str, send, period_s: float, *,
                 max_bytes: int, backup_count: int):
        self._log_dir = log_dir
        self._node_ip = node_ip
        self._send = send
        self._period_s = period_s
        self._max_bytes = max_bytes
        self._backup_count = backup_count
        self._files: dict[str, _LogFile] = {}

    async def run(self) -> None:
        while True:
            try:
                self.poll_nowait()
            except Exception:
                logger.exception("log monitor poll failed")
            await asyncio.sleep(self._period_s)

    def poll_nowait(self) -> None:
        try:
            names = os.listdir(self._log_dir)
        except FileNotFoundError:
            return
        for name in names:
            match = _FILE.match(name)
            if match and name not in self._files:
                self._files[name] = _LogFile(os.path.join(self._log_dir, name),
                                             int(match.group(1)), match.group(2) == "err")
            elif not match and _DAEMON_LOG.match(name):
                path = os.path.join(self._log_dir, name)
                if _size(path) > self._max_bytes:
                    self._rotate(path)
        for name, log in list(self._files.items()):
            if not self._read(log):
                del self._files[name]
            elif log.position > self._max_bytes:
                self._rotate(log.path, log)

    def _rotate(self, path: str, log: _LogFile | None = None) -> None:
        """Copy the log to <path>.1 (shifting older copies up) and empty it in place. A
        worker's log is read once more between the copy and the truncation, and what came
        meanwhile is added to the copy, so only a write in the last microseconds can be
        lost (as with logrotate's copytruncate)."""
        for index in range(self._backup_count - 1, 0, -1):
            if os.path.exists(f"{path}.{index}"):
                os.replace(f"{path}.{index}", f"{path}.{index + 1}")
        backup = f"{path}.1" if self._backup_count >= 1 else os.devnull
        shutil.copyfile(path, backup)
        if log is not None:
            copied = _size(backup) if backup != os.devnull else log.position
            self._read(log)
            if log.position > copied and backup != os.devnull:
                with open(path, "rb") as source, open(backup, "ab") as target:
                    source.seek(copied)
                    target.write(source.read(log.position - copied))
            log.position = 0
        os.truncate(path, 0)

    def _read(self, log: _LogFile) -> bool:
        try:
            with open(log.path, "rb") as f:
                f.seek(log.position)
                data = f.read()
        except FileNotFoundError:
            return False
        if not data:
            return True
        log.position += len(data)
        lines = (log.partial + data).split(b"\n")
        log.partial = lines.pop()
        batch: list[str] = []
        for raw in lines:
            line = raw.decode("utf-8", "replace")
            if line.startswith(JOB_MARK) or line.startswith(TASK_MARK):
                self._flush(log, batch)
                batch = []
                if line.startswith(JOB_MARK):
                    log.job_id = int(line[len(JOB_MARK):])
                else:
                    log.task_name = line[len(TASK_MARK):]
                continue
            batch.append(line)
        self._flush(log, batch)
        return True

    def _flush(self, log: _LogFile, lines: list[str]) -> None:
        if lines and log.job_id is not None:
            self._send(log.job_id, {
                "pid": log.pid, "ip": self._node_ip, "task_name": log.task_name,
                "is_err": log.is_err, "lines": lines})


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
