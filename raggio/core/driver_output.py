"""Printing worker output in the driver, prefixed and deduplicated as Ray does.

The node's log monitor sends ``log_lines`` batches for this driver's job;
each line is printed as ``(task_name pid=123, ip=127.0.0.1) text`` to the
driver's stdout or stderr, like the worker wrote it. With ``dedup_logs`` (on
by default; ``RAY_DEDUP_LOGS=0`` turns it off), as in Ray: the first line of
a pattern (the text with every word that holds a digit masked) is printed at
once; more lines of that pattern within ``dedup_logs_window_s``, from any
worker, are held back and counted, and when the window closes the last of
them is printed once with the count:
``(task pid=124, ip=...) text [repeated 3x across cluster]``.
"""

from __future__ import annotations

import re
import sys

_WORD_WITH_DIGIT = re.compile(r"\S*\d\S*")


class DriverOutput:
    def __init__(self, core):
        core.handlers["log_lines"] = self.log_lines
        self._loop = core.loop
        self._dedup = core.cfg.dedup_logs
        self._window_s = core.cfg.dedup_logs_window_s
        #: (is_err, pattern) -> [repeats held back, the last of them with its prefix]
        self._recent: dict[tuple[bool, str], list] = {}

    def log_lines(self, conn, batch: dict) -> None:
        name = batch["task_name"] or "raggio::IDLE"
        prefix = f"({name} pid={batch['pid']}, ip={batch['ip']}) "
        is_err = batch["is_err"]
        lines = batch["lines"]
        if self._dedup:
            lines = [line for line in lines if self._first_of_pattern(is_err, prefix + line)]
        self._write(is_err, "".join(prefix + line + "\n" for line in lines))

    def _first_of_pattern(self, is_err: bool, line: str) -> bool:
        """True to print the line now; False to hold it back as a repeat."""
        text = line.partition(") ")[2]
        key = (is_err, _WORD_WITH_DIGIT.sub("*", text))
        seen = self._recent.get(key)
        if seen is None:
            self._recent[key] = [0, line]
            self._loop.call_later(self._window_s, self._close_window, key)
            return True
        seen[0] += 1
        seen[1] = line
        return False

    def _close_window(self, key: tuple[bool, str]) -> None:
        repeats, last = self._recent.pop(key)
        if repeats:
            self._write(key[0], f"{last} [repeated {repeats}x across cluster]\n")

    @staticmethod
    def _write(is_err: bool, text: str) -> None:
        if text:
            stream = sys.stderr if is_err else sys.stdout
            stream.write(text)
            stream.flush()
