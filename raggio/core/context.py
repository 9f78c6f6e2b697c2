"""The one process-wide global: this process's core worker.

``get_core()`` returns it, initialising raggio implicitly (as Ray does when
the API is used before ``init()``) in a driver; workers set it at start-up.
"""

from __future__ import annotations

import threading

_core = None
_lock = threading.RLock()


def current_core_or_none():
    return _core


def set_core(core) -> None:
    global _core
    _core = core


def get_core():
    core = _core
    if core is not None:
        return core
    with _lock:
        if _core is None:
            from raggio.core import api
            api.init()
        return _core
