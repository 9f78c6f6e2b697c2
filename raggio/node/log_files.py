"""A node's log files, served to ``raggio logs``: listing them and reading their ends.

Only plain files directly in the node's log directory can be read (a name
with a path in it is refused), so the command reaches logs and nothing else.
The marker lines workers write for the log monitor are left out.
"""

from __future__ import annotations

import os
import re

from raggio.common.log_marks import JOB_MARK, TASK_MARK

#: The lines workers write for the log monitor (which job and task the next lines are of).
_MARK_LINES = re.compile(b"^(?:%s|%s).*\n?" % (re.escape(JOB_MARK.encode()),
                                                re.escape(TASK_MARK.encode())), re.MULTILINE)

#: The most bytes one read returns; ``raggio logs --follow`` asks again from there.
MAX_READ_BYTES = 4 * 1024 * 1024


def list_logs(log_dir: str) -> list[dict]:
    """{name, size} of every file in the log directory, by name."""
    out = []
    for entry in sorted(os.scandir(log_dir), key=lambda e: e.name):
        if entry.is_file():
            out.append({"name": entry.name, "size": entry.stat().st_size})
    return out


def read_log(log_dir: str, msg: dict) -> dict:
    """{"data", "offset"}: from ``offset`` on, or the last ``tail`` lines (when no offset);
    the workers' marker lines too with ``marks``."""
    name = msg["name"]
    if os.path.basename(name) != name or name in ("", ".", ".."):
        raise ValueError(f"{name!r} is not the name of a log file")
    path = os.path.join(log_dir, name)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            offset = msg.get("offset")
            if offset is None:
                offset = _tail_offset(f, size, msg.get("tail", 1000))
            f.seek(offset)
            data = f.read(MAX_READ_BYTES)
    except FileNotFoundError:
        raise ValueError(f"There is no log file {name!r} on this node; `raggio logs` lists "
                         "them.") from None
    end = offset + len(data)  # where the next read starts: counted before markers go
    if not msg.get("marks"):  # the lines that say which task's output follows
        data = _MARK_LINES.sub(b"", data)
    return {"data": data, "offset": end}


def _tail_offset(f, size: int, lines: int) -> int:
    """Where the last `lines` lines of the file start (all of it for a negative count)."""
    if lines < 0:
        return 0
    position, found = size, 0
    while position > 0:
        step = min(64 * 1024, position)
        position -= step
        f.seek(position)
        chunk = f.read(step)
        end = len(chunk)
        if position + end == size and chunk.endswith(b"\n"):
            end -= 1  # the last line's newline does not start another line
        index = chunk.rfind(b"\n", 0, end)
        while index != -1:
            found += 1
            if found == lines:
                return position + index + 1
            index = chunk.rfind(b"\n", 0, index)
    return 0
