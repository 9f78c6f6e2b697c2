"""``ray.actor``: actor classes, handles and methods, and ``exit_actor``, under Ray's
module path (the code lives in ``raggio.core.actor``)."""

from raggio.core.actor import ActorClass, ActorHandle, ActorMethod, exit_actor, method

__all__ = ["ActorClass", "ActorHandle", "ActorMethod", "exit_actor", "method"]
