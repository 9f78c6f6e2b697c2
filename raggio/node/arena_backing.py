"""How much of a node's arena holds memory: pages allocated just ahead of use, given back after.

The arena is a file in /dev/shm as large as the object store. tmpfs gives a
page memory when it is first written (or allocated with fallocate) and keeps
it, mapped by any process or not, until the page is punched out: a page once
written is RAM taken from the machine for as long as the node lives, unless
it is given back. So the arena is backed only where objects are, plus a
window above them while the store is busy:

- The arena's *top* is one past its highest allocated block (the allocator
  hands out low offsets first, so objects pack below it).
- Allocate ahead: while blocks are being allocated, the pages below
  ``top + window`` are allocated in the background (fallocate in a thread, a
  chunk at a time), where the window is as large as the top itself, at most
  ``window_bytes``: the backed part of the arena doubles ahead of a store
  that fills. An empty store holds nothing.
- Give back: once no block has been allocated for ``release_after_s``, the
  pages above the top are punched out (``madvise(MADV_REMOVE)`` on the node's
  mapping), so that the window, and the memory of a burst of large objects
  that are gone, return to the machine. Free blocks below the top keep their
  pages: they are the first ones reused.

The trade: a write into pages the writing process has mapped before runs at
memcpy speed (~5-20 GB/s here, with the load), into pages allocated but not
yet mapped by it at ~0.4-1.5 GB/s (a page fault per 4 KiB page), and into
untouched ones a little slower still (the fault allocates and zeroes the page).
Repeated puts of similar sizes reuse mapped pages whatever this module does;
what it changes is that the first large put into an empty store, or the first
one after a quiet spell, writes into fresh pages.

The object store owns one instance and reports each allocation and free; the
node manager runs ``run()`` as a task. Punching runs on the event loop, between
the store's allocations, so that no block is handed out inside a range being
punched.
"""

from __future__ import annotations

import asyncio
import math
import mmap
import os
import time

from raggio.common.waiting import wait_event
from raggio.node.allocator import ArenaAllocator

#: Pages are allocated and given back this many bytes at a time: one fallocate or
#: MADV_REMOVE of 64 MiB takes ~10-20 ms here, short enough to run between other work.
CHUNK_BYTES = 64 * 1024 * 1024


class ArenaBacking:
    """See the module docstring."""

    _fd: int
    _map: mmap.mmap
    _allocator: ArenaAllocator
    _window_bytes: int
    _release_after_s: float  #: math.inf: never give back
    #: Pages at or past this offset hold no memory; below it they may.
    _backed_end: int
    _last_allocation: float  #: time.monotonic() of the last allocation
    _changed: asyncio.Event  #: set when there may be pages to allocate or give back

    def __init__(self, fd: int, mapping: mmap.mmap, allocator: ArenaAllocator, *,
                 window_bytes: int, release_after_s: float):
        """Back nothing yet: the arena file is new and empty.

        Args:
            fd: The arena file, open for writing.
            mapping: The node's shared, writable mapping of the whole file.
            allocator: The arena's allocator, read for its top.
            window_bytes: Largest window of pages allocated above the top (0: none).
            release_after_s: Quiet time after which pages above the top are given back
                (negative: never).
        """
        self._fd = fd
        self._map = mapping
        self._allocator = allocator
        self._window_bytes = window_bytes
        self._release_after_s = release_after_s if release_after_s >= 0 else math.inf
        self._backed_end = 0
        self._last_allocation = -math.inf
        self._changed = asyncio.Event()

    def allocated(self) -> None:
        """The store handed out a block: its writer is about to fault its pages in."""
        self._last_allocation = time.monotonic()
        self._backed_end = max(self._backed_end, self._used_end())
        if self._ahead_end() > self._backed_end:
            self._changed.set()

    def freed(self) -> None:
        """The store freed a block: the pages above the top may be given back later."""
        if self._backed_end > self._used_end():
            self._changed.set()

    async def run(self) -> None:
        """Allocate pages ahead of the top while blocks are allocated, and give back those
        above it after quiet spells, until cancelled."""
        while True:
            quiet_in_s = self._last_allocation + self._release_after_s - time.monotonic()
            if quiet_in_s > 0 and self._ahead_end() > self._backed_end:
                await self._allocate_chunk(self._ahead_end())
                continue
            if quiet_in_s <= 0 and self._backed_end > self._used_end():
                self._release_chunk(self._used_end())
                await asyncio.sleep(0)  # let allocations in between chunks
                continue
            # Wake when the store falls quiet, if there will be pages to give back then.
            wait_s = (quiet_in_s if self._backed_end > self._used_end()
                      and math.isfinite(quiet_in_s) else None)
            self._changed.clear()
            await wait_event(self._changed, wait_s)  # not wait_for: see common/waiting.py

    def _used_end(self) -> int:
        """The end of the pages objects use: the top, up to a page boundary."""
        return self._round_up(self._allocator.top_offset, mmap.PAGESIZE)

    def _ahead_end(self) -> int:
        """Where the pages allocated ahead of a busy store end."""
        top = self._allocator.top_offset
        window = min(top, self._window_bytes)
        return self._round_up(top + window, CHUNK_BYTES) if window else self._used_end()

    async def _allocate_chunk(self, end: int) -> None:
        start = self._backed_end
        length = min(CHUNK_BYTES, end - start)
        try:
            # A block allocated in this range meanwhile is safe: fallocate leaves pages that
            # exist alone, and on failure removes only the ones nobody wrote yet.
            await asyncio.to_thread(os.posix_fallocate, self._fd, start, length)
        except OSError:
            # /dev/shm is full or does not support it: writers fault the pages in themselves.
            self._window_bytes = 0
            return
        self._backed_end = max(self._backed_end, start + length)

    def _release_chunk(self, end: int) -> None:
        # Every byte from ``end`` up is free; both ends of the range are page boundaries (or
        # the arena's end).
        start = max(end, self._backed_end - CHUNK_BYTES)
        start -= start % mmap.PAGESIZE
        try:
            self._map.madvise(mmap.MADV_REMOVE, start, self._backed_end - start)
        except OSError:
            self._release_after_s = math.inf  # not supported here: keep the pages
            return
        self._backed_end = start

    def _round_up(self, offset: int, multiple: int) -> int:
        """``offset`` rounded up to a multiple of ``multiple``, at most the arena's end."""
        return min(-(-offset // multiple) * multiple, self._allocator.capacity_bytes)
