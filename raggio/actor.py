"""Ray's ``ray.actor`` path: actor classes, handles, methods, the ``method`` decorator and
``exit_actor``.

Thin: the code lives in ``raggio/core/actor.py`` and the exception in
``raggio/exceptions.py``.
"""

from raggio.core.actor import ActorClass, ActorHandle, ActorMethod, exit_actor, method
from raggio.exceptions import ActorClassInheritanceException

__all__ = ["ActorClass", "ActorClassInheritanceException", "ActorHandle", "ActorMethod",
           "exit_actor", "method"]
