"""Ray's ``ray.util.debug`` logging helpers: ``log_once(key)`` is True the first time a
process asks about ``key``, so a library logs a message once, not once per call.

Per process, as in Ray: each worker logs its first time too.
"""

from __future__ import annotations

import threading
import time

#: With periodic logging on, every key logs again once this long has passed (Ray's 60 s).
PERIODIC_LOG_INTERVAL_S = 60.0


class _LogOnce:
    """The keys this process has logged, and how ``log_once`` answers."""

    def __init__(self) -> None:
        self.logged: set[str] = set()
        self.disabled = False
        self.periodic = False
        self.last_logged = 0.0
        self.lock = threading.Lock()

    def first_time(self, key: str) -> bool:
        with self.lock:
            if self.disabled:
                return False
            now = time.monotonic()
            if key not in self.logged:
                self.logged.add(key)
                self.last_logged = now
                return True
            if self.periodic and now - self.last_logged > PERIODIC_LOG_INTERVAL_S:
                # As in Ray: this call says False and starts a new period, in which every
                # key is new again.
                self.logged.clear()
                self.last_logged = now
            return False


_state = _LogOnce()


def log_once(key: str) -> bool:
    """True if this is the first call with ``key`` in this process.

    Example::

        if log_once("slow_path"):
            logger.warning("Taking the slow path; see ...")
    """
    return _state.first_time(key)


def disable_log_once_globally() -> None:
    """Make ``log_once`` return False from now on in this process."""
    _state.disabled = True


def enable_periodic_logging() -> None:
    """Make ``log_once`` return True again for each key once a minute in this process."""
    _state.periodic = True


def reset_log_once(key: str | None = None) -> None:
    """Forget that ``key`` (every key when None) was logged."""
    with _state.lock:
        if key is None:
            _state.logged.clear()
        else:
            _state.logged.discard(key)
