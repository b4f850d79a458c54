"""The memory a batch's kept files are read into (``scan.arena``)."""

from __future__ import annotations

from triage.scan.arena import Arena


def _fill(arena: Arena, sizes: list[int]) -> list[memoryview]:
    """Take a piece of each size and write its index all over it."""
    pieces = []
    for n, size in enumerate(sizes):
        piece = arena.take(size)
        piece[:] = bytes([n]) * size
        pieces.append(piece)
    return pieces


def test_what_a_batch_takes_does_not_overlap() -> None:
    arena = Arena(slab_bytes=1000)
    sizes = [300, 300, 300, 300, 1500, 10, 999, 1, 2000]
    pieces = _fill(arena, sizes)
    assert [len(p) for p in pieces] == sizes
    assert [bytes(p) for p in pieces] == [bytes([n]) * size for n, size in enumerate(sizes)]


def test_the_next_batch_reuses_the_memory() -> None:
    arena = Arena(slab_bytes=1000)
    batches = [[300, 300, 300, 300], [1500, 10], [999, 1, 2000], [250] * 8]
    held = []
    for _round in range(2):
        for sizes in batches:
            arena.reset()
            pieces = _fill(arena, sizes)
            assert [bytes(p) for p in pieces] == [bytes([n]) * size for n, size in enumerate(sizes)]
            held.append(arena.held)
    # Memory grows only while a batch asks for more than any before it; then it is reused.
    assert held[len(batches) :] == [held[len(batches) - 1]] * len(batches)
    assert held[-1] <= 1500 + 2000 + 1000


def test_a_piece_larger_than_a_slab_gets_one_of_its_size() -> None:
    arena = Arena(slab_bytes=1000)
    (piece,) = _fill(arena, [5000])
    assert len(piece) == 5000 and arena.held == 5000
