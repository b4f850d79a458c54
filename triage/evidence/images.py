"""Read-only access to the bytes of an evidence image, whatever its container format.

Every opener yields an ``ImageSource``: ``size``, ``read(offset, length)``, the hashes
stored at acquisition (EWF only) and ``close()``. Files are opened ``O_RDONLY``; nothing here
can write.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from triage.errors import CorruptImageError
from triage.evidence.formats import DetectedImage, ImageFormat, detect


class ImageSource(Protocol):
    format: ImageFormat
    size: int

    def read(self, offset: int, length: int) -> bytes: ...

    def stored_hashes(self) -> dict[str, str]: ...

    def close(self) -> None: ...


class RawImage:
    """A single or split raw image: the segments concatenated in order."""

    def __init__(self, detected: DetectedImage) -> None:
        self.format = detected.format
        self._fds: list[int] = []
        self._starts: list[int] = []
        offset = 0
        try:
            for segment in detected.segments:
                fd = os.open(segment, os.O_RDONLY)
                self._fds.append(fd)
                self._starts.append(offset)
                offset += os.fstat(fd).st_size
        except OSError:
            self.close()
            raise
        self.size = offset

    def read(self, offset: int, length: int) -> bytes:
        if offset >= self.size or length <= 0:
            return b""
        length = min(length, self.size - offset)
        parts = []
        index = bisect.bisect_right(self._starts, offset) - 1
        while length > 0 and index < len(self._fds):
            local = offset - self._starts[index]
            chunk = os.pread(self._fds[index], length, local)
            if not chunk:
                index += 1
                continue
            parts.append(chunk)
            offset += len(chunk)
            length -= len(chunk)
            if index + 1 < len(self._starts) and offset >= self._starts[index + 1]:
                index += 1
        return b"".join(parts)

    def stored_hashes(self) -> dict[str, str]:
        return {}

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []


class EwfImage:
    """An EnCase (EWF) image through libewf; carries the MD5/SHA-1 stored at acquisition."""

    format = ImageFormat.ewf

    def __init__(self, detected: DetectedImage) -> None:
        import pyewf

        self._handle = pyewf.handle()
        try:
            self._handle.open([str(p) for p in detected.segments], "r")
            self.size = int(self._handle.get_media_size())
        except OSError as exc:
            raise CorruptImageError(f"{detected.first.name}: EWF image cannot be opened: {exc}") from exc

    def read(self, offset: int, length: int) -> bytes:
        if offset >= self.size or length <= 0:
            return b""
        try:
            data: bytes = self._handle.read_buffer_at_offset(min(length, self.size - offset), offset)
        except OSError as exc:
            raise CorruptImageError(f"EWF read failed at offset {offset}: {exc}") from exc
        return data

    def stored_hashes(self) -> dict[str, str]:
        hashes = {}
        for name, key in (("MD5", "md5"), ("SHA1", "sha1"), ("SHA256", "sha256")):
            try:
                value = self._handle.get_hash_value(name)
            except OSError:
                value = None
            if value:
                hashes[key] = value.lower()
        return hashes

    def close(self) -> None:
        self._handle.close()


OPENERS: dict[ImageFormat, Callable[[DetectedImage], ImageSource]] = {
    ImageFormat.raw: RawImage,
    ImageFormat.split_raw: RawImage,
    ImageFormat.ewf: EwfImage,
}


def open_image(path: Path | DetectedImage) -> ImageSource:
    """Open an image read-only at its first segment."""
    detected = path if isinstance(path, DetectedImage) else detect(path)
    return OPENERS[detected.format](detected)
