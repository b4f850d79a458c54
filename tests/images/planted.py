"""Deterministic file trees to put inside test images, with files planted to be found."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

YARA_MARKER = b"HTCU-YARA-MARKER-7f3a9c"


def random_bytes(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


# A JPEG-looking file that the VICS test set lists as category 1.
KNOWN_BAD = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    + random_bytes(1, 6000)
    + b"\xff\xd9"
)
# A system-looking file that the NSRL-style set lists (known-good).
KNOWN_GOOD = b"MZ\x90\x00" + random_bytes(2, 9000)
# A file that the test YARA rule matches.
YARA_HIT = b"notes\n" + random_bytes(3, 3000) + YARA_MARKER + b"\nend\n"
# A PNG (for file-type counting), not in any set.
PNG = b"\x89PNG\r\n\x1a\n" + random_bytes(4, 2048)
# A rule that takes YARA about a second over a 64 KiB file (filesize x 400 steps of its
# condition): a scan of such files is still under way when a test stops or watches it, on any
# machine.
SLOW_RULE = (
    "rule slow { condition: for all i in (0..filesize) : (for all j in (0..400) : (uint8(i) + j >= 0)) }\n"
)


@dataclass(frozen=True)
class Planted:
    path: str
    data: bytes

    @property
    def md5(self) -> str:
        return hashlib.md5(self.data).hexdigest()  # noqa: S324 - forensic hash, not security

    @property
    def sha1(self) -> str:
        return hashlib.sha1(self.data).hexdigest()  # noqa: S324


def tree(flat: bool = False, big: bool = True) -> list[Planted]:
    """The files of a test image. ``flat`` keeps everything in the root (for ntfscp)."""
    d = "" if flat else "photos/"
    s = "" if flat else "system/"
    files = [
        Planted(f"{d}IMG_0001.jpg", KNOWN_BAD),
        Planted(f"{s}kernel32.dll", KNOWN_GOOD),
        Planted("notes.txt", YARA_HIT),
        Planted(f"{d}holiday.png", PNG),
        Planted("empty.txt", b""),
    ]
    for n in range(12):
        folder = "" if flat else f"docs/sub{n % 3}/"
        files.append(Planted(f"{folder}doc{n:02d}.bin", random_bytes(100 + n, 1000 + n * 1731)))
    if big:
        files.append(Planted("video.bin", random_bytes(99, 9 * 1024 * 1024 + 123)))  # crosses read blocks
    return files


def write_tree(root: Path, files: list[Planted]) -> None:
    for planted in files:
        target = root / planted.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(planted.data)
