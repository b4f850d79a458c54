"""Hashers are tiny (``update``/``hexdigest``) so that all of them are fed from one read.

MD5 is the slowest of the three digests by far (one MD5 stream cannot go faster than about
4.5 cycles a byte), so a batch's files up to ``LANES_MAX_BYTES`` are given MD5 together, by
``md5_many``: the compiled ``_md5lanes`` module hashes 16 (AVX-512) or 8 (AVX2) of them at once
in vector lanes.
It is used only after it gave OpenSSL's digests on a set of test messages in this process
(``md5_lanes``); otherwise, or with ``TRIAGE_MD5_LANES=0`` in the environment, MD5 comes from
OpenSSL through ``hashlib`` like SHA-1 and SHA-256.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterable, Sequence
from functools import cache
from types import ModuleType

ALGORITHMS = ("md5", "sha1", "sha256")
Content = bytes | bytearray | memoryview  # a file's bytes, as read through TSK or from the image
DIGEST_LENGTHS = {32: "md5", 40: "sha1", 64: "sha256"}
LANE_NAMES = {16: "AVX-512", 8: "AVX2"}
# Larger files get MD5 from OpenSSL as they are read. A file in the lanes is kept in memory
# until the end of its batch (``batch_bytes`` of files, 64 MiB by default).
LANES_MAX_BYTES = 16 * 1024 * 1024

_compiled: ModuleType | None
try:
    from triage.analysis import _md5lanes as _compiled
except ImportError:  # built without a C compiler: OpenSSL does all the hashing
    _compiled = None


class MultiHasher:
    """MD5, SHA-1 and SHA-256 (or a chosen subset) over the same bytes."""

    def __init__(self, algorithms: Iterable[str] = ALGORITHMS) -> None:
        self._hashers = {name: hashlib.new(name) for name in algorithms}

    def update(self, data: Content) -> None:
        for hasher in self._hashers.values():
            hasher.update(data)

    def hexdigests(self) -> dict[str, str]:
        return {name: hasher.hexdigest() for name, hasher in self._hashers.items()}


def algorithm_for(digest: str) -> str | None:
    """The algorithm a hex digest belongs to, by its length (32/40/64)."""
    return DIGEST_LENGTHS.get(len(digest))


def _test_messages() -> list[bytes]:
    """RFC 1321's test suite, every length around the padding's edges, and longer messages in
    lanes of unequal lengths (lanes are refilled as they end, the last ones finished alone)."""
    rng = random.Random(1321)  # noqa: S311 - test data, not secrets
    suite = [b"", b"a", b"abc", b"message digest", b"abcdefghijklmnopqrstuvwxyz"]
    suite.append(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
    suite.append(b"1234567890" * 8)
    edges = [rng.randbytes(n) for n in range(0, 200)]
    longer = [rng.randbytes(rng.randrange(200, 20_000)) for _ in range(40)]
    return suite + edges + longer


@cache
def md5_lanes() -> tuple[ModuleType, int] | None:
    """The compiled lanes and their width, if this CPU runs them and they agree with OpenSSL
    here and now; None means OpenSSL's MD5 is used.

    ``TRIAGE_MD5_LANES``: unset (or anything else) for the widest lanes this CPU runs, ``0``
    for none (OpenSSL alone), ``8`` for the AVX2 lanes even where AVX-512 runs (to measure on
    one machine what an AVX2-only one gains).
    """
    wanted = os.environ.get("TRIAGE_MD5_LANES", "").strip()
    if _compiled is None or wanted == "0":
        return None
    widths = [w for w in _compiled.widths() if w > 1 and (wanted != "8" or w == 8)]
    if not widths:
        return None
    messages = _test_messages()
    expected = [hashlib.md5(m, usedforsecurity=False).digest() for m in messages]
    if _compiled.digests(messages, width=widths[0]) != expected:
        return None
    return _compiled, widths[0]


def md5_implementation() -> str:
    """Which code computes the scan's MD5 digests, for the provenance of every result."""
    import ssl  # here, not at the top: the analysis processes never need it

    lanes = md5_lanes()
    if lanes is None:
        return f"{ssl.OPENSSL_VERSION} (hashlib)"
    _module, width = lanes
    return f"htcu-triage {width} lanes ({LANE_NAMES[width]}), checked against {ssl.OPENSSL_VERSION}"


def md5_in_lanes(size: int) -> bool:
    """Whether a file of ``size`` bytes should wait for ``md5_many`` with the rest of its batch.
    Not the largest files: their bytes would be kept in memory meanwhile, and a batch holds
    few of them, while one long message runs no faster in a lane than alone (MD5 cannot be
    split; the lanes finish their last messages one at a time)."""
    return size <= LANES_MAX_BYTES and md5_lanes() is not None


def md5_many(buffers: Sequence[Content]) -> list[str]:
    """The MD5 hex digests of whole buffers, in their order."""
    lanes = md5_lanes()
    if lanes is None or len(buffers) < 3:
        return [hashlib.md5(b, usedforsecurity=False).hexdigest() for b in buffers]
    module, width = lanes
    # Longest first, so that the lanes run out of messages together at the end.
    order = sorted(range(len(buffers)), key=lambda i: len(buffers[i]), reverse=True)
    digests = module.digests([buffers[i] for i in order], width=width)
    out = [""] * len(buffers)
    for i, digest in zip(order, digests, strict=True):
        out[i] = digest.hex()
    return out
