"""Ray's ``ray.remote_function`` path: ``RemoteFunction``, what ``@remote`` makes of a function.

Thin: the code lives in ``raggio/core/remote_function.py``.
"""

from raggio.core.remote_function import RemoteFunction

__all__ = ["RemoteFunction"]
