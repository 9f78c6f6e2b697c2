"""Printing worker output in the driver, prefixed as Ray does.

The node's log monitor sends ``log_lines`` batches for this driver's job;
each line is printed as ``(task_name pid=123, ip=127.0.0.1) text`` to the
driver's stdout or stderr, like the worker wrote it.
"""

from __future__ import annotations

import sys


class DriverOutput:
    def __init__(self, core):
        core.handlers["log_lines"] = self.log_lines

    def log_lines(self, conn, batch: dict) -> None:
        name = batch["task_name"] or "raggio::IDLE"
        prefix = f"({name} pid={batch['pid']}, ip={batch['ip']}) "
        stream = sys.stderr if batch["is_err"] else sys.stdout
        stream.write("".join(prefix + line + "\n" for line in batch["lines"]))
        stream.flush()
