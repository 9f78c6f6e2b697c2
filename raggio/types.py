"""``raggio.types``: Ray's typing aliases, for annotations such as ``ObjectRef[int]``.

As in Ray, ``ObjectRef`` here is a generic class for type checkers only: the
refs that ``.remote()`` and ``put()`` return are ``raggio.ObjectRef``.
"""

from typing import Generic, TypeVar

T = TypeVar("T")


class ObjectRef(Generic[T]):
    """``ObjectRef[T]``: a ref to a value of type T (annotations only)."""


class StreamingObjectRefGeneratorType(Generic[T]):
    """The type of a generator task's ref stream (annotations only)."""

    def __next__(self) -> ObjectRef[T]:
        raise NotImplementedError

    def completed(self) -> ObjectRef:
        raise NotImplementedError

    def next_ready(self) -> bool:
        raise NotImplementedError

    def is_finished(self) -> bool:
        raise NotImplementedError
