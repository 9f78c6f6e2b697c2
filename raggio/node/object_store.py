"""The node's shared-memory object store: one arena file, its objects, spilling.

Owns the table of objects held on this node: where each lives in the arena
(or on disk, once spilled), whether it is sealed, and how many readers hold
zero-copy views of it (pins). Workers write and read the arena file
directly; this class only hands out offsets. When an allocation does not
fit, unpinned objects are spilled to files, least recently used first, and
restored when next pinned. ``ObjectStoreFullError`` is raised only when even
spilling cannot make room. Which pages of the arena hold memory is
``ArenaBacking``'s business (node/arena_backing.py); the store tells it of each
allocation and free. Called by the node manager's RPC handlers; no sockets
here.
"""

from __future__ import annotations

import collections
import logging
import mmap
import os
import shutil

from raggio.exceptions import ObjectStoreFullError
from raggio.node.allocator import ArenaAllocator
from raggio.node.arena_backing import ArenaBacking

logger = logging.getLogger(__name__)


#: madvise(2) advice that faults a range in, writable, at once (Linux 5.14; 23 in the
#: kernel headers, which Python's mmap module exposes only from 3.13 on).
MADV_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23)


def arena_path(session_name: str, node_tag: str, size_bytes: int, temp_dir: str) -> str:
    """An arena in /dev/shm, or under the temp dir when /dev/shm is too small."""
    shm = "/dev/shm"
    name = f"raggio-{session_name}-{node_tag}.arena"
    if os.path.isdir(shm) and shutil.disk_usage(shm).free >= size_bytes:
        return os.path.join(shm, name)
    logger.warning(
        "/dev/shm has less than the %d bytes the object store needs; using a file under %s, "
        "which is slower. Give the container a bigger /dev/shm (docker --shm-size).",
        size_bytes, temp_dir)
    return os.path.join(temp_dir, name)


class StoredObject:
    __slots__ = ("offset", "size_bytes", "sealed", "pins", "spill_path", "freed", "primary",
                 "owner")

    def __init__(self, offset: int, size_bytes: int, primary: bool, owner: str | None = None):
        self.offset: int | None = offset  #: None while spilled to disk
        self.size_bytes = size_bytes
        self.sealed = False
        self.pins = 0  #: readers holding views into the arena
        self.spill_path: str | None = None
        self.freed = False  #: owner released it; drop once unpinned
        self.primary = primary  #: False for a copy pulled from another node: evict, never spill
        self.owner = owner  #: a primary copy's owner (a core worker's address), told if it moves


class ObjectStore:
    """See the module docstring."""

    def __init__(self, path: str, capacity_bytes: int, spill_dir: str, *,
                 prefault_window_bytes: int, release_after_s: float):
        """An object store of ``capacity_bytes``; ``open()`` creates its arena file.

        Args:
            path: Where the arena file goes (``arena_path``).
            capacity_bytes: Size of the store; rounded down to the allocator's alignment.
            spill_dir: Where spilled objects are written.
            prefault_window_bytes: Largest window of pages allocated ahead of the highest
                object (``ArenaBacking``).
            release_after_s: Quiet time after which pages above the highest object are
                given back (negative: never).
        """
        self.path = path
        self.capacity_bytes = capacity_bytes
        self.spill_dir = spill_dir
        self.spilled_bytes_total = 0
        self.restored_bytes_total = 0
        capacity_bytes = capacity_bytes // 64 * 64
        self.capacity_bytes = capacity_bytes
        self._allocator = ArenaAllocator(capacity_bytes)
        #: Insertion order doubles as LRU order: access moves an object to the end.
        self._objects: collections.OrderedDict[bytes, StoredObject] = collections.OrderedDict()
        self._backing_options = {"window_bytes": prefault_window_bytes,
                                 "release_after_s": release_after_s}
        self._fd = -1
        self._map: mmap.mmap | None = None
        self.backing: ArenaBacking | None = None

    def open(self) -> "ObjectStore":
        """Create the arena file (empty: no page holds memory yet) and map it."""
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.ftruncate(self._fd, self.capacity_bytes)
        self._map = mmap.mmap(self._fd, self.capacity_bytes)
        #: Run ``backing.run()`` as a task to allocate pages ahead of use and give them back.
        self.backing = ArenaBacking(self._fd, self._map, self._allocator,
                                    **self._backing_options)
        return self

    @property
    def used_bytes(self) -> int:
        return self._allocator.used_bytes

    @property
    def num_objects(self) -> int:
        return len(self._objects)

    def create(self, object_id: bytes, size_bytes: int, primary: bool = True,
               owner: str | None = None) -> int:
        """Reserve space for a new object; return its offset in the arena. A primary copy
        names its ``owner`` (a core worker's address) so that it can be moved."""
        existing = self._objects.get(object_id)
        if existing is not None and existing.offset is not None:
            return existing.offset
        offset = self._allocate(size_bytes, object_id)
        self._objects[object_id] = StoredObject(offset, size_bytes, primary, owner)
        return offset

    def make_primary(self, object_id: bytes, owner: str) -> None:
        """Keep a pulled copy as the object's primary copy (spilled, never evicted): its
        node moved it here before leaving the cluster."""
        obj = self._objects[object_id]
        obj.primary, obj.owner = True, owner

    def primary_objects(self) -> list[tuple[bytes, int, str | None]]:
        """(id, size, owner) of each whole primary copy still wanted, in the arena or
        spilled."""
        return [(object_id, obj.size_bytes, obj.owner) for object_id, obj in self._objects.items()
                if obj.primary and obj.sealed and not obj.freed]

    def wanted(self, object_id: bytes) -> bool:
        """Whether the object is here and its owner has not freed it."""
        obj = self._objects.get(object_id)
        return obj is not None and not obj.freed

    def view(self, offset: int, length: int) -> memoryview:
        """Arena memory at ``offset``, for a pull to receive an object's bytes into."""
        return memoryview(self._map)[offset:offset + length]

    def object_view(self, object_id: bytes, position: int, length: int) -> memoryview:
        """Bytes of a pinned object, for a node pulling it (sent without a copy)."""
        return self.view(self._objects[object_id].offset + position, length)

    def populate(self, offset: int, length: int) -> None:
        """Map (and allocate) these arena pages in one call before they are written:
        page by page, the faults of a fresh region cost as much as the copy itself."""
        start = offset - offset % mmap.PAGESIZE
        try:
            self._map.madvise(MADV_POPULATE_WRITE, start, offset + length - start)
        except (OSError, ValueError):
            pass  # not Linux 5.14+: the pages fault in as they are written

    def seal(self, object_id: bytes) -> None:
        self._objects[object_id].sealed = True

    def contains(self, object_id: bytes) -> bool:
        return object_id in self._objects

    def contains_sealed(self, object_id: bytes) -> bool:
        """True if the whole object is here: one created but not sealed is still being
        written (by a worker of this node, or by a pull), as in Ray's plasma ``Contains``."""
        obj = self._objects.get(object_id)
        return obj is not None and obj.sealed

    def pin(self, object_id: bytes) -> tuple[int, int]:
        """Hold an object in the arena for a reader; restore it if spilled."""
        obj = self._objects[object_id]
        if obj.offset is None:
            self._restore(object_id, obj)
        obj.pins += 1
        self._objects.move_to_end(object_id)
        return obj.offset, obj.size_bytes

    def unpin(self, object_id: bytes) -> None:
        obj = self._objects.get(object_id)
        if obj is None:
            return
        obj.pins -= 1
        if obj.pins <= 0 and obj.freed:
            self._drop(object_id, obj)

    def free(self, object_id: bytes) -> None:
        """The owner no longer needs the object; drop it once no reader holds it."""
        obj = self._objects.get(object_id)
        if obj is None:
            return
        obj.freed = True
        if obj.pins <= 0:
            self._drop(object_id, obj)

    def close(self) -> None:
        if self._map is None:
            return
        self._map.close()
        os.close(self._fd)
        self._map = None
        for path in (self.path,):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        shutil.rmtree(self.spill_dir, ignore_errors=True)

    def statistics(self) -> dict:
        spilled = [o for o in self._objects.values() if o.offset is None]
        return {
            "capacity_bytes": self.capacity_bytes,
            "used_bytes": self.used_bytes,
            "num_objects": len(self._objects),
            "num_spilled": len(spilled),
            "spilled_bytes": sum(o.size_bytes for o in spilled),
            "spilled_bytes_total": self.spilled_bytes_total,
            "restored_bytes_total": self.restored_bytes_total,
        }

    # -- internals --

    def _allocate(self, size_bytes: int, object_id: bytes) -> int:
        if size_bytes > self.capacity_bytes:
            raise ObjectStoreFullError(
                f"Object {object_id.hex()} is {size_bytes} bytes, larger than the whole "
                f"object store ({self.capacity_bytes} bytes). Start raggio with a larger "
                "object_store_memory (init(object_store_memory=...) or "
                "`raggio start --object-store-memory`), or split the object.")
        offset = self._allocator.allocate(size_bytes)
        while offset is None:
            if not self._spill_one():
                pinned = sum(o.size_bytes for o in self._objects.values() if o.pins)
                raise ObjectStoreFullError(
                    f"Cannot make room for object {object_id.hex()} ({size_bytes} bytes): the "
                    f"store holds {self.used_bytes} of {self.capacity_bytes} bytes and "
                    f"{pinned} bytes are in use by readers or not yet sealed, so nothing more "
                    "can be spilled. Release references to large objects (del the refs or "
                    "the arrays read from them) or give the store more memory.")
            offset = self._allocator.allocate(size_bytes)
        self.backing.allocated()
        return offset

    def _spill_one(self) -> bool:
        """Make room: evict one unpinned copy, else spill one unpinned primary (LRU)."""
        for object_id, obj in self._objects.items():
            if not obj.primary and obj.sealed and obj.pins <= 0:
                self._drop(object_id, obj)
                return True
        for object_id, obj in self._objects.items():
            if obj.offset is not None and obj.sealed and obj.pins <= 0:
                self._spill(object_id, obj)
                return True
        return False

    def _spill(self, object_id: bytes, obj: StoredObject) -> None:
        os.makedirs(self.spill_dir, exist_ok=True)
        path = os.path.join(self.spill_dir, object_id.hex())
        with open(path, "wb") as f:
            f.write(self._map[obj.offset:obj.offset + obj.size_bytes])
        self._allocator.free(obj.offset)
        self.backing.freed()
        obj.offset = None
        obj.spill_path = path
        self.spilled_bytes_total += obj.size_bytes
        logger.info("spilled %s (%d bytes) to %s", object_id.hex(), obj.size_bytes, path)

    def _restore(self, object_id: bytes, obj: StoredObject) -> None:
        # Pin-count it while spilling others so it is not chosen itself.
        offset = self._allocate(obj.size_bytes, object_id)
        with open(obj.spill_path, "rb") as f:
            f.readinto(memoryview(self._map)[offset:offset + obj.size_bytes])
        os.unlink(obj.spill_path)
        obj.offset, obj.spill_path = offset, None
        self.restored_bytes_total += obj.size_bytes

    def _drop(self, object_id: bytes, obj: StoredObject) -> None:
        del self._objects[object_id]
        if obj.offset is not None:
            self._allocator.free(obj.offset)
            self.backing.freed()
        elif obj.spill_path is not None:
            try:
                os.unlink(obj.spill_path)
            except FileNotFoundError:
                pass
