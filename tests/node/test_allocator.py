"""ArenaAllocator, driven directly with plain inputs (a policy class: no arena file)."""

import itertools
import random

import pytest

from raggio.node.allocator import ArenaAllocator


def test_offsets_and_sizes_are_aligned():
    allocator = ArenaAllocator(64 * 100, alignment=64)
    offsets = [allocator.allocate(size) for size in (1, 63, 64, 65, 130, 0)]
    assert all(offset % 64 == 0 for offset in offsets)
    assert [allocator.block_size(offset) for offset in offsets] == [64, 64, 64, 128, 192, 64]
    assert allocator.used_bytes == 576
    assert allocator.free_bytes == 64 * 100 - 576
    assert allocator.num_allocations == 6
    assert allocator.alignment == 64


def test_zero_size_requests_get_distinct_offsets():
    allocator = ArenaAllocator(256)
    first, second = allocator.allocate(0), allocator.allocate(0)
    assert first != second
    assert allocator.used_bytes == 128


def test_best_fit_takes_the_smallest_hole_that_fits():
    allocator = ArenaAllocator(64 * 20)
    # Holes of 3, 1 and 2 units, kept apart by allocated separators.
    layout = [3, 1, 1, 1, 2, 1]
    offsets = [allocator.allocate(units * 64) for units in layout]
    for hole in (offsets[0], offsets[2], offsets[4]):
        allocator.free(hole)
    assert allocator.allocate(64) == offsets[2]
    assert allocator.allocate(100) == offsets[4]
    assert allocator.allocate(150) == offsets[0]


def test_freed_blocks_are_reused_before_the_untouched_tail():
    allocator = ArenaAllocator(64 * 100)
    first = allocator.allocate(640)
    allocator.allocate(64)
    allocator.free(first)
    assert allocator.allocate(640) == first


def test_top_offset_follows_the_highest_allocated_block():
    allocator = ArenaAllocator(64 * 100)
    assert allocator.top_offset == 0
    low, high = allocator.allocate(640), allocator.allocate(64)
    assert allocator.top_offset == 704
    allocator.free(low)  # a hole below the top leaves it where it is
    assert allocator.top_offset == 704
    allocator.free(high)
    assert allocator.top_offset == 0
    offsets = [allocator.allocate(64 * 50) for _ in range(2)]
    assert allocator.top_offset == 64 * 100  # full
    allocator.free(offsets[1])
    assert allocator.top_offset == 64 * 50


def test_free_returns_the_aligned_size():
    allocator = ArenaAllocator(1024)
    offset = allocator.allocate(100)
    assert allocator.free(offset) == 128
    assert allocator.used_bytes == 0
    assert allocator.num_allocations == 0


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_frees_in_any_order_coalesce_into_one_block(order):
    allocator = ArenaAllocator(64 * 10)
    offsets = [allocator.allocate(64 * units) for units in (1, 2, 3, 4)]
    assert allocator.largest_free_bytes() == 0
    for index in order:
        allocator.free(offsets[index])
    assert allocator.largest_free_bytes() == 64 * 10
    assert allocator.free_bytes == 64 * 10
    assert allocator.allocate(64 * 10) == 0


def test_returns_none_when_full():
    allocator = ArenaAllocator(256)
    assert allocator.allocate(256) == 0
    assert allocator.allocate(1) is None
    assert allocator.allocate(0) is None


def test_request_larger_than_the_arena_gets_none():
    allocator = ArenaAllocator(256)
    assert allocator.allocate(257) is None
    assert allocator.used_bytes == 0


def test_fragmented_free_space_cannot_serve_a_large_request():
    allocator = ArenaAllocator(64 * 8)
    offsets = [allocator.allocate(64) for _ in range(8)]
    for offset in offsets[::2]:
        allocator.free(offset)
    assert allocator.free_bytes == 64 * 4
    assert allocator.largest_free_bytes() == 64
    assert allocator.allocate(128) is None
    assert allocator.allocate(64) is not None


def test_unknown_offsets_raise_key_error():
    allocator = ArenaAllocator(1024)
    offset = allocator.allocate(64)
    with pytest.raises(KeyError, match="offset 64"):
        allocator.free(64)
    allocator.free(offset)
    with pytest.raises(KeyError, match="already freed"):
        allocator.free(offset)
    with pytest.raises(KeyError, match=f"offset {offset}"):
        allocator.block_size(offset)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="round it down to 64"):
        ArenaAllocator(100)
    with pytest.raises(ValueError, match="alignment"):
        ArenaAllocator(64, alignment=0)
    with pytest.raises(ValueError, match="non-negative"):
        ArenaAllocator(1024).allocate(-1)


def test_empty_arena_has_nothing_to_give():
    allocator = ArenaAllocator(0)
    assert allocator.largest_free_bytes() == 0
    assert allocator.allocate(0) is None


@pytest.mark.parametrize("seed", range(5))
def test_random_operations_match_an_ownership_map(seed):
    rng = random.Random(seed)
    alignment = 16
    capacity_bytes = alignment * 512
    allocator = ArenaAllocator(capacity_bytes, alignment=alignment)
    # owner[byte] is the offset of the block that holds the byte, or -1 when free.
    owner = [-1] * capacity_bytes
    live: dict[int, int] = {}
    for _ in range(3000):
        if live and rng.random() < 0.45:
            offset = rng.choice(list(live))
            size = live.pop(offset)
            assert allocator.free(offset) == size
            owner[offset:offset + size] = [-1] * size
        else:
            request = rng.choice((0, rng.randrange(1, 64), rng.randrange(1, 1024)))
            offset = allocator.allocate(request)
            if offset is None:
                assert allocator.largest_free_bytes() < max(request, 1)
                continue
            size = allocator.block_size(offset)
            assert offset % alignment == 0 and size >= request and size % alignment == 0
            assert offset + size <= capacity_bytes
            assert set(owner[offset:offset + size]) == {-1}, "overlaps a live block"
            owner[offset:offset + size] = [offset] * size
            live[offset] = size
        assert allocator.used_bytes == sum(live.values())
        assert allocator.used_bytes == capacity_bytes - owner.count(-1)
        assert allocator.num_allocations == len(live)
        # Full coalescing means every maximal free run is exactly one free block.
        assert allocator.largest_free_bytes() == longest_free_run(owner)
    for offset in list(live):
        allocator.free(offset)
    assert allocator.largest_free_bytes() == capacity_bytes


def longest_free_run(owner: list[int]) -> int:
    return max((len(list(run)) for value, run in itertools.groupby(owner) if value == -1),
               default=0)
