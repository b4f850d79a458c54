"""A Bloom filter in front of each hash-set store, so that a digest the set does not hold
(nearly every file's) is answered from memory, without an SQLite query.

It never says "absent" for a digest in the set; for about one absent digest in 400 it says
"maybe", and the store then answers. The digests are cryptographic hashes, so their own bytes
are uniform: the bit positions are four 32-bit words of the digest's first 16 bytes, with no
hashing of our own. Built from the store with numpy, kept beside it as ``<store>.filter``,
memory-mapped read-only by every worker (one copy in the page cache for all of them).

File layout: ``MAGIC``, then the number of bits and the number of digests as little-endian
64-bit integers, then the bits (bit ``p`` is bit ``p % 8`` of byte ``p // 8``).
"""

from __future__ import annotations

import mmap
import os
import sqlite3
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path

MAGIC = b"HTCU-DIGEST-FILTER-1\n"
HEADER = struct.Struct("<QQ")
BITS_PER_DIGEST = 16  # at least; rounded up to a power of two (about 1 false "maybe" in 400)
CHUNK = 1_000_000


def filter_path(store: Path | str) -> Path:
    return Path(f"{store}.filter")


def build_filter(store: Path | str, count: int, progress: Callable[[int], None] | None = None) -> Path:
    """Write the filter of the ``count`` digests in ``store`` (the number the store recorded
    when built); atomically, so a reader sees all or none. ``progress(done)`` is told the
    digests added so far, a million at a time (a set of NSRL size takes a minute or more)."""
    import numpy as np  # here only: a scan that builds nothing does not load it

    conn = sqlite3.connect(f"file:{store}?mode=ro&immutable=1", uri=True)
    try:
        bits = 1 << min(32, max(16, (count * BITS_PER_DIGEST - 1).bit_length()))  # words are 32 bits
        table = np.zeros(bits // 8, dtype=np.uint8)
        cursor = conn.execute("SELECT digest FROM h")
        done = 0
        while rows := cursor.fetchmany(CHUNK):
            words = np.frombuffer(b"".join(row[0][:16] for row in rows), dtype="<u4")
            positions = (words & np.uint32(bits - 1)).astype(np.int64)
            np.bitwise_or.at(table, positions >> 3, (1 << (positions & 7)).astype(np.uint8))
            done += len(rows)
            if progress is not None:
                progress(done)
    finally:
        conn.close()
    target = filter_path(store)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, suffix=".building")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(MAGIC + HEADER.pack(bits, count))
            out.write(table.tobytes())
        os.replace(tmp_name, target)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return target


class DigestFilter:
    """``digest in filter``: False means the set does not hold it; True means it may."""

    def __init__(self, path: Path) -> None:
        with path.open("rb") as fh:
            self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        start = len(MAGIC) + HEADER.size
        if len(self._map) < start or self._map[: len(MAGIC)] != MAGIC:
            raise ValueError(f"{path.name}: not a digest filter")
        bits, self.count = HEADER.unpack_from(self._map, len(MAGIC))
        if bits < 8 or bits & (bits - 1) or len(self._map) != start + bits // 8:
            raise ValueError(f"{path.name}: truncated or damaged")
        self._bits = memoryview(self._map)[start:]
        self._mask = bits - 1

    def __contains__(self, digest: bytes) -> bool:
        table, mask = self._bits, self._mask
        for (word,) in struct.iter_unpack("<I", digest[:16]):
            position = word & mask
            if not table[position >> 3] & (1 << (position & 7)):
                return False
        return True

    @classmethod
    def open(cls, store: Path | str) -> DigestFilter | None:
        """The store's filter, or None when it has none that can be trusted."""
        try:
            return cls(filter_path(store))
        except (OSError, ValueError):
            return None
