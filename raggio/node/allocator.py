"""Offsets inside one node's shared-memory arena: best-fit allocation with coalescing.

This module owns the bookkeeping of which byte ranges of the arena are in use.
It is pure policy: it never touches the arena file, never blocks and does no
I/O. The node's object store calls ``allocate`` when a worker asks for room to
write an object and ``free`` when the object is evicted or deleted; pinning,
sealing, eviction order and spilling are the object store's business, not this
module's.

Every block starts at a multiple of ``alignment`` (64 bytes by default, a cache
line, so that numpy buffers written in place are aligned) and every allocation
is rounded up to a multiple of it. Free blocks are kept twice: in a list sorted
by ``(size, offset)``, where ``bisect`` finds the smallest block that fits (best
fit, which reuses freed blocks before the untouched tail of the arena whenever
one fits), and in maps keyed by start and by end offset, so that ``free`` finds
both neighbours at once and merges them.
"""

from __future__ import annotations

import bisect


class ArenaAllocator:
    """Best-fit allocator of aligned blocks within ``capacity_bytes``.

    Cost: ``allocate`` and ``free`` do one binary search of the free list plus
    dictionary operations, and insert into or delete from that list (a memmove
    of its pointers, which stays far below the cost of writing the object).

    Not thread-safe: the object store owns one instance and calls it from its
    event loop only.
    """

    _capacity_bytes: int
    _alignment: int
    #: Free blocks as ``(size_bytes, offset)``, sorted; the best fit for a
    #: request is the first entry at or after ``(request,)``.
    _free_by_size: list[tuple[int, int]]
    #: Free blocks, offset -> size_bytes.
    _free_by_offset: dict[int, int]
    #: Free blocks, end offset (one past the last byte) -> start offset; finds
    #: the free block just before a block being freed.
    _free_by_end: dict[int, int]
    #: Allocated blocks, offset -> size_bytes (the aligned size).
    _used_by_offset: dict[int, int]
    _used_bytes: int

    def __init__(self, capacity_bytes: int, alignment: int = 64):
        """Manage an empty arena.

        Args:
            capacity_bytes: Size of the arena. Must be a multiple of
                ``alignment`` so that every byte can be handed out.
            alignment: Every offset and every block size is a multiple of this.

        Raises:
            ValueError: ``alignment`` is not positive, or ``capacity_bytes`` is
                negative or not a multiple of ``alignment``.
        """
        if alignment <= 0:
            raise ValueError(f"alignment must be positive, got {alignment}")
        if capacity_bytes < 0 or capacity_bytes % alignment:
            rounded = capacity_bytes - capacity_bytes % alignment
            raise ValueError(
                f"capacity_bytes must be a non-negative multiple of the alignment "
                f"({alignment}), got {capacity_bytes}; round it down to {max(rounded, 0)}")
        self._capacity_bytes = capacity_bytes
        self._alignment = alignment
        self._free_by_size = []
        self._free_by_offset = {}
        self._free_by_end = {}
        self._used_by_offset = {}
        self._used_bytes = 0
        if capacity_bytes:
            self._add_free_block(0, capacity_bytes)

    @property
    def capacity_bytes(self) -> int:
        """Size of the whole arena."""
        return self._capacity_bytes

    @property
    def alignment(self) -> int:
        """Granularity of offsets and block sizes."""
        return self._alignment

    @property
    def used_bytes(self) -> int:
        """Bytes in allocated blocks, counted at their aligned sizes."""
        return self._used_bytes

    @property
    def free_bytes(self) -> int:
        """Bytes in free blocks; may be split over several blocks."""
        return self._capacity_bytes - self._used_bytes

    @property
    def num_allocations(self) -> int:
        """Number of allocated blocks."""
        return len(self._used_by_offset)

    @property
    def top_offset(self) -> int:
        """One past the end of the highest allocated block, 0 when none is: every byte from
        here to the end of the arena is free."""
        tail_start = self._free_by_end.get(self._capacity_bytes)
        return self._capacity_bytes if tail_start is None else tail_start

    def largest_free_bytes(self) -> int:
        """Size of the largest free block: the largest request that can succeed now."""
        return self._free_by_size[-1][0] if self._free_by_size else 0

    def block_size(self, offset: int) -> int:
        """Aligned size of the allocated block at ``offset``.

        Raises:
            KeyError: No allocated block starts at ``offset``.
        """
        try:
            return self._used_by_offset[offset]
        except KeyError:
            raise self._unknown_offset(offset) from None

    def allocate(self, size_bytes: int) -> int | None:
        """Reserve a block of at least ``size_bytes``, taken from the smallest free block that fits.

        The request is rounded up to the alignment; a zero-byte request still
        takes one aligned unit, so that every allocation has its own offset.

        Args:
            size_bytes: Bytes the caller will write.

        Returns:
            The block's offset in the arena, or None when no single free block
            is large enough (the caller may evict or spill, then retry).

        Raises:
            ValueError: ``size_bytes`` is negative.
        """
        if size_bytes < 0:
            raise ValueError(f"size_bytes must be non-negative, got {size_bytes}")
        needed_bytes = self._round_up(max(size_bytes, 1))
        index = bisect.bisect_left(self._free_by_size, (needed_bytes,))
        if index == len(self._free_by_size):
            return None
        block_bytes, offset = self._free_by_size[index]
        self._remove_free_block(offset, block_bytes, index)
        if block_bytes > needed_bytes:
            self._add_free_block(offset + needed_bytes, block_bytes - needed_bytes)
        self._used_by_offset[offset] = needed_bytes
        self._used_bytes += needed_bytes
        return offset

    def free(self, offset: int) -> int:
        """Release the block at ``offset`` and merge it with free neighbours.

        Args:
            offset: An offset returned by ``allocate`` and not freed since.

        Returns:
            The aligned size of the released block.

        Raises:
            KeyError: No allocated block starts at ``offset`` (never allocated,
                or already freed).
        """
        try:
            size_bytes = self._used_by_offset.pop(offset)
        except KeyError:
            raise self._unknown_offset(offset) from None
        self._used_bytes -= size_bytes
        start, end = offset, offset + size_bytes
        next_bytes = self._free_by_offset.get(end)
        if next_bytes is not None:
            self._remove_free_block(end, next_bytes)
            end += next_bytes
        previous_start = self._free_by_end.get(start)
        if previous_start is not None:
            self._remove_free_block(previous_start, start - previous_start)
            start = previous_start
        self._add_free_block(start, end - start)
        return size_bytes

    def _round_up(self, size_bytes: int) -> int:
        return -(-size_bytes // self._alignment) * self._alignment

    def _add_free_block(self, offset: int, size_bytes: int) -> None:
        bisect.insort(self._free_by_size, (size_bytes, offset))
        self._free_by_offset[offset] = size_bytes
        self._free_by_end[offset + size_bytes] = offset

    def _remove_free_block(self, offset: int, size_bytes: int, index: int | None = None) -> None:
        if index is None:
            index = bisect.bisect_left(self._free_by_size, (size_bytes, offset))
        del self._free_by_size[index]
        del self._free_by_offset[offset]
        del self._free_by_end[offset + size_bytes]

    def _unknown_offset(self, offset: int) -> KeyError:
        return KeyError(
            f"No allocated block starts at offset {offset} of this arena "
            f"({self.num_allocations} blocks allocated); it was never allocated "
            "or was already freed")
