"""What a hash-set reader yields."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from triage.analysis.hashers import DIGEST_LENGTHS
from triage.errors import HashSetError

HEX = re.compile(r"^[0-9a-fA-F]+$")
LENGTHS = DIGEST_LENGTHS


class HashSetKind(StrEnum):
    known_bad = "known_bad"  # alert, with the category
    known_good = "known_good"  # the file is known and can be left out of reports


@dataclass(frozen=True)
class HashRecord:
    digest: bytes  # raw bytes: 16 (MD5), 20 (SHA-1) or 32 (SHA-256)
    category: str = ""
    alert: bool = True  # False for e.g. VICS category 0 "non-pertinent"


def parse_digest(text: str, where: str) -> bytes:
    """Hex digest -> raw bytes, with a clear error naming the place in the file."""
    value = text.strip()
    if not HEX.match(value) or len(value) not in LENGTHS:
        raise HashSetError(f"{where}: {value[:80]!r} is not an MD5, SHA-1 or SHA-256 hex digest")
    return bytes.fromhex(value)
