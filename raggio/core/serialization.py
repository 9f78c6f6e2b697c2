"""Turning values into bytes and back, inline or in the shared-memory store.

Arguments and results use plain ``pickle`` protocol 5 with out-of-band
buffers (cloudpickle only for what pickle refuses: it is 7-8x slower on
small values). A serialized value is a pickle stream (``meta``) plus its
out-of-band buffers. Small values travel inline as ``[meta, *buffers]``;
large ones are laid out in the arena as::

    u32 header_len | msgpack [meta_len, [buffer offsets], [buffer lengths]]
    | meta | buffers, each 64-byte aligned

so a numpy array is written with one copy and read with none. ObjectRefs
pickled inside a value are collected, so the owner knows which refs escaped.
Serializers that ``raggio.util.register_serializer`` installs apply to what
this process pickles (the deserializer is pickled with each value, so the
reader needs none).
"""

from __future__ import annotations

import copyreg
import io
import marshal
import pickle
import struct
import threading
import traceback
import types
from collections import ChainMap
from typing import Any, Callable

import cloudpickle
import msgpack

from raggio.exceptions import RaySystemError, UnserializableException

_ALIGN = 64
_U32 = struct.Struct("<I")

_context = threading.local()

#: The reducers ``register_serializer`` installed: exact type -> reducer.
_custom_reducers: dict[type, Callable] = {}


def register_reducer(cls: type, reducer: Callable) -> None:
    """Pickle instances of exactly ``cls`` with ``reducer`` (a ``__reduce__`` function)."""
    _custom_reducers[cls] = reducer


def deregister_reducer(cls: type) -> None:
    _custom_reducers.pop(cls, None)


def note_contained_ref(ref) -> None:
    """Called by ObjectRef/ActorHandle pickling to record what a value holds."""
    refs = getattr(_context, "refs", None)
    if refs is not None:
        refs.append(ref)


class SerializedValue:
    """A pickled value: its stream, out-of-band buffers and contained refs."""

    __slots__ = ("meta", "buffers", "contained_refs", "size_bytes")

    def __init__(self, meta: bytes, buffers: list, contained_refs: list):
        self.meta = meta
        self.buffers = buffers
        self.contained_refs = contained_refs
        self.size_bytes = len(meta) + sum(b.nbytes for b in buffers)

    def to_inline(self) -> list:
        return [self.meta, *(b.tobytes() for b in self.buffers)]

    # -- arena layout --

    def layout(self) -> tuple[bytes, list[int], int]:
        """Header bytes, buffer offsets and total size for the arena layout."""
        lengths = [b.nbytes for b in self.buffers]
        # The header's size depends on the offsets; two passes settle it.
        offsets = [0] * len(lengths)
        for _ in range(2):
            header = msgpack.packb([len(self.meta), offsets, lengths])
            pos = _U32.size + len(header) + len(self.meta)
            offsets = []
            for n in lengths:
                pos = (pos + _ALIGN - 1) // _ALIGN * _ALIGN
                offsets.append(pos)
                pos += n
        header = msgpack.packb([len(self.meta), offsets, lengths])
        return header, offsets, pos

    def write_into(self, dest: memoryview, header: bytes, offsets: list[int],
                   copy: Callable[[memoryview, memoryview], None] | None = None) -> None:
        """Lay the value out in `dest`; `copy(dest_slice, buffer)` copies the buffers
        (default: one memcpy each)."""
        start = _U32.size + len(header)
        _U32.pack_into(dest, 0, len(header))
        dest[_U32.size:start] = header
        dest[start:start + len(self.meta)] = self.meta
        for offset, buf in zip(offsets, self.buffers):
            if copy is None:
                dest[offset:offset + buf.nbytes] = buf
            else:
                copy(dest[offset:offset + buf.nbytes], buf)


def serialize(value: Any) -> SerializedValue:
    """Pickle ``value``; raise TypeError naming what could not be pickled."""
    buffers: list[pickle.PickleBuffer] = []
    _context.refs = refs = []
    try:
        try:
            if _custom_reducers:
                meta = _dumps_with_reducers(value, buffers, by_value=False)
            else:  # the hot path: one call
                meta = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
        except Exception:
            buffers.clear()
            refs.clear()
            try:
                if _custom_reducers:
                    meta = _dumps_with_reducers(value, buffers, by_value=True)
                else:
                    meta = cloudpickle.dumps(value, protocol=5, buffer_callback=buffers.append)
            except Exception as exc:
                raise TypeError(_unpicklable_message(value, exc)) from exc
    finally:
        _context.refs = None
    views = []
    for buf in buffers:
        view = buf.raw()
        views.append(view if view.contiguous else memoryview(view.tobytes()))
    return SerializedValue(meta, views, refs)


class _Pickler(pickle.Pickler):
    #: Read when a pickler is made; a live view, so it holds later registrations too.
    dispatch_table = ChainMap(_custom_reducers, copyreg.dispatch_table)


class _CloudPickler(cloudpickle.Pickler):
    dispatch_table = ChainMap(_custom_reducers, cloudpickle.Pickler.dispatch_table)


def _dumps_with_reducers(value: Any, buffers: list, *, by_value: bool) -> bytes:
    """Pickle (with cloudpickle when ``by_value``) with the registered reducers ahead of
    the pickler's own table."""
    out = io.BytesIO()
    pickler_class = _CloudPickler if by_value else _Pickler
    pickler_class(out, protocol=5, buffer_callback=buffers.append).dump(value)
    return out.getvalue()


def serialize_error(error: BaseException) -> SerializedValue:
    """Pickle an error value so that reading it never fails.

    An exception that pickles may still fail to unpickle (its ``__init__`` takes other
    arguments than its ``args``, or its class cannot be imported where it is read); the
    reader then gets ``UnserializableException`` with the error's text, as in Ray.
    Raises TypeError if ``error`` cannot be pickled at all."""
    text = "".join(traceback.format_exception_only(type(error), error))
    if text.startswith("raggio.exceptions."):
        text = "ray" + text[len("raggio"):]
    return serialize(_GuardedError(serialize(error).to_inline(), text))


def error_location(exc: BaseException) -> dict:
    """The inline form of an error value."""
    try:
        parts = serialize_error(exc).to_inline()
    except TypeError:
        parts = serialize_error(RaySystemError(repr(exc))).to_inline()
    return {"inline": parts, "is_error": True}


class _GuardedError:
    __slots__ = ("parts", "text")

    def __init__(self, parts: list, text: str):
        self.parts = parts
        self.text = text

    def __reduce__(self):
        return _load_error, (self.parts, self.text)


def _load_error(parts: list, text: str) -> BaseException:
    try:
        return deserialize_inline(parts)
    except Exception:
        return UnserializableException(text)


def _unpicklable_message(value: Any, exc: Exception) -> str:
    return (f"Could not serialize a value of type {type(value).__name__}: {exc}. "
            "Only picklable values can be passed to or returned from remote functions; "
            "create the object inside the task instead, or make it picklable "
            "(define __reduce__).")


def deserialize_inline(parts: list) -> Any:
    return pickle.loads(parts[0], buffers=parts[1:])


def deserialize_from(view: memoryview) -> Any:
    """Load a value laid out by ``write_into``; buffers stay views into ``view``."""
    header_len = _U32.unpack_from(view, 0)[0]
    start = _U32.size + header_len
    meta_len, offsets, lengths = msgpack.unpackb(view[_U32.size:start])
    meta = view[start:start + meta_len]
    buffers = [view[o:o + n] for o, n in zip(offsets, lengths)]
    return pickle.loads(meta, buffers=buffers)


def _reduce_code(code: types.CodeType) -> tuple:
    return marshal.loads, (marshal.dumps(code),)


class _FunctionPickler(cloudpickle.Pickler):
    """cloudpickle, keeping each code object's file name and line table.

    cloudpickle 3.1 renames every code object's file to ``<dynamic-code>``, so a remote
    traceback would show no source lines; Ray's vendored cloudpickle keeps them, and its
    traceback layout (``RayTaskError``) shows them. A code object is marshalled whole
    (every process of a cluster runs the same Python), which keeps everything."""

    dispatch_table = ChainMap({types.CodeType: _reduce_code}, cloudpickle.Pickler.dispatch_table)


def dumps_function(fn: Any) -> bytes:
    """Functions and classes always go through cloudpickle (by value)."""
    out = io.BytesIO()
    _FunctionPickler(out, protocol=5).dump(fn)
    return out.getvalue()


def loads_function(blob: bytes) -> Any:
    return pickle.loads(blob)
