"""Hashers are tiny (``update``/``hexdigest``) so that all of them are fed from one read."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

ALGORITHMS = ("md5", "sha1", "sha256")
DIGEST_LENGTHS = {32: "md5", 40: "sha1", 64: "sha256"}


class MultiHasher:
    """MD5, SHA-1 and SHA-256 (or a chosen subset) over the same bytes."""

    def __init__(self, algorithms: Iterable[str] = ALGORITHMS) -> None:
        self._hashers = {name: hashlib.new(name) for name in algorithms}

    def update(self, data: bytes | memoryview) -> None:
        for hasher in self._hashers.values():
            hasher.update(data)

    def hexdigests(self) -> dict[str, str]:
        return {name: hasher.hexdigest() for name, hasher in self._hashers.items()}


def algorithm_for(digest: str) -> str | None:
    """The algorithm a hex digest belongs to, by its length (32/40/64)."""
    return DIGEST_LENGTHS.get(len(digest))
