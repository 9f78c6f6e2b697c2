"""This process's view of its node's arena: writing objects in, reading them out.

The node manager decides offsets; this module maps the arena file twice,
writable (for ``put`` and large results) and read-only (for ``get``, so a
numpy array read from the store comes back read-only, as in Ray). A read
pins the object at the node; the pin is released when the last view of the
object (for instance the numpy array built on it) is garbage collected.
"""

from __future__ import annotations

import concurrent.futures
import mmap
import os
import weakref
from typing import Any, Callable

from raggio.core.serialization import SerializedValue, deserialize_from


#: Buffers at least this big are copied by several threads at once (numpy's copy lets go
#: of the GIL). The page faults of fresh arena pages dominate a big copy, and they run in
#: parallel: 2 threads copy ~2.3x faster into fresh pages and ~2x into mapped ones here.
PARALLEL_COPY_BYTES = 64 * 1024 * 1024
_copy_threads: concurrent.futures.ThreadPoolExecutor | None = None


def _copy(dest: memoryview, src: memoryview) -> None:
    if src.nbytes < PARALLEL_COPY_BYTES:
        dest[:] = src
        return
    import numpy as np

    global _copy_threads
    workers = min(4, os.cpu_count() or 1)
    if _copy_threads is None:
        _copy_threads = concurrent.futures.ThreadPoolExecutor(workers, "raggio-copy")
    dest_bytes = np.frombuffer(dest, dtype=np.uint8)
    src_bytes = np.frombuffer(src.cast("B") if src.format != "B" else src, dtype=np.uint8)
    step = -(-src.nbytes // workers)
    parts = [_copy_threads.submit(np.copyto, dest_bytes[i:i + step], src_bytes[i:i + step])
             for i in range(0, src.nbytes, step)]
    for part in parts:
        part.result()


class Arena:
    """Both mappings of one node's arena file."""

    def __init__(self, path: str):
        fd = os.open(path, os.O_RDWR)
        try:
            size = os.fstat(fd).st_size
            self._write_map = mmap.mmap(fd, size)
            self._read_map = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)
        import numpy as np  # here, not at import: the control store and node managers need none
        self._write_view = memoryview(self._write_map)
        # A numpy array over the read-only mapping: slices of it are read-only
        # views, and weakref.finalize can watch the base of each object.
        self._read_array = np.frombuffer(self._read_map, dtype=np.uint8)

    def write(self, offset: int, value: SerializedValue, header: bytes, offsets: list[int],
              size_bytes: int) -> None:
        value.write_into(self._write_view[offset:offset + size_bytes], header, offsets,
                         copy=_copy)

    def close(self) -> None:
        """Unmap the arena (each mapping holds a file descriptor). A mapping that values read
        from it still use stays until they die, as an mmap with exported views must."""
        self._write_view.release()
        self._read_array = None
        for mapping in (self._write_map, self._read_map):
            try:
                mapping.close()
            except BufferError:
                pass

    def read(self, offset: int, size_bytes: int, on_release: Callable[[], None]) -> Any:
        """Deserialize the object at ``offset``; ``on_release`` runs when its views die."""
        base = self._read_array[offset:offset + size_bytes]
        weakref.finalize(base, on_release)
        return deserialize_from(memoryview(base))
