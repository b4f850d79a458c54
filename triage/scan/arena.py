"""Memory for the files a batch keeps whole until its end (for the MD5 lanes), reused from one
batch to the next.

A file read straight from a raw image into a buffer of its own made the kernel fault in and zero
every page of it: on the bench image 178,000 of the scan's 268,000 page faults, about 0.18 s of
CPU in a 6.7 s scan (docs/speed.md). An ``Arena`` hands out consecutive pieces of a few large
buffers (slabs) and takes them all back at once (``reset``) when the batch's MD5 is done, so
the same pages serve every batch. It holds at most what the largest batch kept, plus the unused
end of each slab: a bounded amount (``batch_bytes`` and one file), whatever the image's size.
"""

from __future__ import annotations

SLAB_BYTES = 32 * 1024 * 1024


class Arena:
    """A bump allocator over reused slabs; what ``take`` gave is valid until ``reset``."""

    def __init__(self, slab_bytes: int = SLAB_BYTES) -> None:
        self.slab_bytes = slab_bytes
        self._slabs: list[bytearray] = []
        self._slab = 0  # the slab being filled
        self._used = 0  # bytes of it given out

    def take(self, size: int) -> memoryview:
        """``size`` writable bytes, not overlapping anything given since the last ``reset``."""
        while True:
            if self._slab == len(self._slabs):
                self._slabs.append(bytearray(max(size, self.slab_bytes)))
            slab = self._slabs[self._slab]
            if len(slab) - self._used >= size:
                piece = memoryview(slab)[self._used : self._used + size]
                self._used += size
                return piece
            if self._used == 0:
                # An empty slab too small for this file (larger than any before it): a larger
                # one takes its place. Nothing given out lies in it, so nothing is invalidated.
                self._slabs[self._slab] = bytearray(size)
                continue
            self._slab += 1
            self._used = 0

    def reset(self) -> None:
        """Take back everything given out; the slabs stay for the next batch."""
        self._slab = 0
        self._used = 0

    @property
    def held(self) -> int:
        """Bytes of memory the slabs hold."""
        return sum(len(slab) for slab in self._slabs)
