"""The one process-wide global: this process's core worker.

``get_core()`` returns it, initialising raggio implicitly (as Ray does when
the API is used before ``init()``) in a driver; workers set it at start-up.
The package (``raggio/__init__.py``) registers that implicit ``init`` here
(``set_auto_init``), so that the modules below the API need not import it, and
the ray:// client's connector (``set_client_connector``), which ``init`` calls.
``current_task_id()`` says which task the calling code runs in.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar

_core = None
_lock = threading.RLock()
_auto_init = None  #: ``api.init``, registered by ``raggio/__init__.py``
#: ``client.client_core.connect_client``, registered likewise: ``init("ray://...")``
#: reaches the client package, which sits above ``core``, through it.
_connect_client = None


def current_core_or_none():
    return _core


def set_core(core) -> None:
    global _core
    _core = core


def set_auto_init(init) -> None:
    global _auto_init
    _auto_init = init


def set_client_connector(connect) -> None:
    global _connect_client
    _connect_client = connect


def connect_client(address: str, **options):
    """A started ray:// client core for ``address`` (see ``client/client_core.py``)."""
    return _connect_client(address, **options)


def get_core():
    core = _core
    if core is not None:
        return core
    with _lock:
        if _core is None:
            _auto_init()
        return _core


#: The task id of the async actor call running in this asyncio task: an async actor runs
#: many calls on one thread, so the thread-local ``core.current`` cannot say which.
async_call_task_id: ContextVar[bytes | None] = ContextVar("raggio_async_call_task_id",
                                                          default=None)


def current_task_id(core) -> bytes | None:
    """The id of the task or actor call running in the calling thread (or asyncio task)."""
    return getattr(core.current, "task_id", None) or async_call_task_id.get()
