"""Typed ids (JobID, TaskID, ObjectID, ActorID, NodeID, WorkerID, PlacementGroupID), as in Ray.

Ids are random or counter-derived bytes. An ObjectID is its creating task's
id plus a 4-byte return index, so the id says which task makes the object.
Ids are made in hot paths: a process draws one random prefix and counts.
The core worker makes them; the control store derives creation task ids;
the public API (``raggio.NodeID``, the runtime context) hands them out.
"""

from __future__ import annotations

import itertools
import os


class BaseID:
    """Bytes with a type; ``hex()`` and ``binary()`` as in Ray."""

    __slots__ = ("_bytes", "_hash")
    size = 16

    def __init__(self, id_bytes: bytes):
        if len(id_bytes) != self.size:
            raise ValueError(f"{type(self).__name__} takes {self.size} bytes, got {len(id_bytes)}")
        self._bytes = id_bytes
        self._hash = hash(id_bytes)

    @classmethod
    def from_random(cls):
        return cls(os.urandom(cls.size))

    @classmethod
    def from_hex(cls, hex_id: str):
        return cls(bytes.fromhex(hex_id))

    @classmethod
    def is_hex(cls, text: str) -> bool:
        """Whether ``text`` is such an id in hex."""
        try:
            cls.from_hex(text)
        except ValueError:
            return False
        return True

    @classmethod
    def nil(cls):
        return cls(b"\xff" * cls.size)

    def is_nil(self) -> bool:
        return self._bytes == b"\xff" * self.size

    def binary(self) -> bytes:
        return self._bytes

    def hex(self) -> str:
        return self._bytes.hex()

    def __eq__(self, other):
        return type(other) is type(self) and other._bytes == self._bytes

    def __hash__(self):
        return self._hash

    def __repr__(self):
        return f"{type(self).__name__}({self.hex()})"

    def __reduce__(self):
        return type(self), (self._bytes,)


class JobID(BaseID):
    __slots__ = ()
    size = 4

    @classmethod
    def from_int(cls, value: int):
        return cls(value.to_bytes(4, "big"))

    def int(self) -> int:
        return int.from_bytes(self._bytes, "big")


class NodeID(BaseID):
    __slots__ = ()
    size = 28


class WorkerID(BaseID):
    __slots__ = ()
    size = 28


class ActorID(BaseID):
    __slots__ = ()
    size = 16


class TaskID(BaseID):
    __slots__ = ()
    size = 24


class ObjectID(BaseID):
    __slots__ = ()
    size = 28

    def task_id(self) -> TaskID:
        return TaskID(self._bytes[:24])

    def return_index(self) -> int:
        return int.from_bytes(self._bytes[24:], "big")


class PlacementGroupID(BaseID):
    __slots__ = ()
    size = 18


class IdMaker:
    """Makes unique task and object ids cheaply in one process."""

    def __init__(self):
        self._prefix = os.urandom(16)
        self._counter = itertools.count(1)

    def task_id_bytes(self) -> bytes:
        return self._prefix + next(self._counter).to_bytes(8, "big")

    def put_id_bytes(self) -> bytes:
        return self.task_id_bytes() + b"\x00\x00\x00\x00"


def creation_task_id(actor_id: bytes) -> bytes:
    """The id of an actor's creation task (Ray's: the actor id behind eight 0xff bytes)."""
    return b"\xff" * 8 + actor_id


def object_id_bytes(task_id: bytes, index: int) -> bytes:
    return task_id + (index + 1).to_bytes(4, "big")
