"""``raggio.util.register_serializer`` / ``deregister_serializer``: custom pickling of a type.

As in Ray, a registration applies to what this process serializes (arguments,
``put``, return values), for instances of exactly that class. The
deserializer is pickled with each value, so a worker that reads it needs no
registration of its own; a worker that should serialize the type the same
way (for its return values) registers it there too.
"""

from __future__ import annotations

from typing import Any, Callable

from raggio.core.serialization import deregister_reducer, register_reducer


def register_serializer(cls: type, *, serializer: Callable[[Any], Any],
                        deserializer: Callable[[Any], Any]) -> None:
    """Serialize instances of ``cls`` as ``serializer(obj)``, rebuilt by ``deserializer``.

    Args:
        cls: a Python class.
        serializer: turns an instance of ``cls`` into a picklable value (e.g. a dict of
            plain values).
        deserializer: builds the instance back from that value; it must be picklable
            itself (it travels with the value).
    """
    if not isinstance(cls, type):
        raise TypeError(f"register_serializer takes a class, got {type(cls).__name__}.")

    def reduce(obj):
        return deserializer, (serializer(obj),)

    register_reducer(cls, reduce)


def deregister_serializer(cls: type) -> None:
    """Drop the serializer registered for ``cls``; no effect if there is none."""
    deregister_reducer(cls)
