"""Printing worker output in the driver, prefixed and deduplicated as Ray does.

The node's log monitor sends ``log_lines`` batches for this driver's job;
each line is printed as ``(task_name pid=123, ip=127.0.0.1) text`` to the
driver's stdout or stderr, like the worker wrote it.

With ``dedup_logs`` (on by default; ``RAY_DEDUP_LOGS=0`` turns it off) the
rule is Ray's (``LogDeduplicator``): a line's pattern is its text without the
words that hold a digit. A pattern is folded only once it has come from more
than one process: until then every line of it is printed (one worker printing
``step 1``, ``step 2``... shows them all). From then on its lines, from any
process, are held back and counted for ``dedup_logs_window_s``; when the
window closes, several held lines print as the last of them with
``[repeated Nx across cluster]`` (and the pattern keeps being counted for
another window), a single one prints as it is, and none lets the pattern go.
Lines whose pattern is empty (only numbers), that match
``RAY_DEDUP_LOGS_ALLOW_REGEX``, are never folded; lines that match
``RAY_DEDUP_LOGS_SKIP_REGEX`` are dropped.
"""

from __future__ import annotations

import dataclasses
import re
import sys

_WORD_WITH_DIGIT = re.compile(r"\d")

#: Appended to the first folded line, as Ray appends its own note.
_FIRST_FOLD_NOTE = (" (raggio deduplicates logs by default, as Ray does. Set RAY_DEDUP_LOGS=0 "
                    "to disable log deduplication.)")


def pattern_of(text: str) -> str:
    """The line without its words that hold a digit (ids, counters, times differ between
    workers); Ray's dedup key."""
    return " ".join(word for word in text.split() if not _WORD_WITH_DIGIT.search(word))


@dataclasses.dataclass
class _Pattern:
    """A pattern seen within the window."""

    sources: set  #: (ip, pid) of the processes that printed it
    held: int = 0  #: lines held back since the window opened
    last: str = ""  #: the last held line, with its prefix


class DriverOutput:
    """Handles ``log_lines`` for a driver's core worker (on its event loop)."""

    def __init__(self, core):
        self._loop = core.loop
        cfg = core.cfg
        self._dedup = cfg.dedup_logs
        self._window_s = cfg.dedup_logs_window_s
        self._allow = re.compile(cfg.dedup_logs_allow_regex) if cfg.dedup_logs_allow_regex \
            else None
        self._skip = re.compile(cfg.dedup_logs_skip_regex) if cfg.dedup_logs_skip_regex \
            else None
        #: (is_err, pattern) -> what was seen of it in the current window
        self._recent: dict[tuple[bool, str], _Pattern] = {}
        self._noted = False

    def log_lines(self, conn, batch: dict) -> None:
        name = batch["task_name"] or "raggio::IDLE"
        prefix = f"({name} pid={batch['pid']}, ip={batch['ip']}) "
        is_err = batch["is_err"]
        lines = batch["lines"]
        if self._dedup:
            source = (batch["ip"], batch["pid"])
            lines = [line for line in lines if self._print_now(is_err, source, prefix, line)]
        self._write(is_err, "".join(prefix + line + "\n" for line in lines))

    def _print_now(self, is_err: bool, source: tuple, prefix: str, line: str) -> bool:
        """True to print the line now; False to drop it or hold it back as a repeat."""
        if self._allow is not None and self._allow.search(line):
            return True
        if self._skip is not None and self._skip.search(line):
            return False
        key = (is_err, pattern_of(line))
        if not key[1]:
            return True
        seen = self._recent.get(key)
        if seen is None:
            self._recent[key] = _Pattern({source})
            self._loop.call_later(self._window_s, self._close_window, key)
            return True
        seen.sources.add(source)
        if len(seen.sources) == 1:  # one process repeating itself: not folded
            return True
        seen.held += 1
        seen.last = prefix + line
        return False

    def _close_window(self, key: tuple[bool, str]) -> None:
        seen = self._recent[key]
        if seen.held > 1:
            note = "" if self._noted else _FIRST_FOLD_NOTE
            self._noted = True
            self._write(key[0], f"{seen.last} [repeated {seen.held}x across cluster]{note}\n")
            seen.held = 0  # keep counting the pattern for another window
            self._loop.call_later(self._window_s, self._close_window, key)
            return
        del self._recent[key]
        if seen.held == 1:
            self._write(key[0], seen.last + "\n")

    @staticmethod
    def _write(is_err: bool, text: str) -> None:
        if text:
            stream = sys.stderr if is_err else sys.stdout
            stream.write(text)
            stream.flush()
