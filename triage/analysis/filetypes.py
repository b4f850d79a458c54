"""File types from content signatures (never from the name), so pictures and videos count."""

from __future__ import annotations

import filetype

HEADER_BYTES = 8192  # enough for every signature the ``filetype`` package knows


def detect(head: bytes) -> tuple[str | None, str]:
    """(MIME type or None, broad kind: image, video, audio, archive, document, font, ...)."""
    if not head:
        return None, "empty"
    kind = filetype.guess(head[:HEADER_BYTES])
    if kind is None:
        return None, "unknown"
    mime = str(kind.mime)
    major = mime.split("/", 1)[0]
    if major in ("image", "video", "audio", "font"):
        return mime, major
    if mime in (
        "application/zip",
        "application/x-tar",
        "application/x-rar-compressed",
        "application/x-7z-compressed",
        "application/gzip",
        "application/x-bzip2",
        "application/x-xz",
    ):
        return mime, "archive"
    if mime in ("application/pdf", "application/msword", "application/rtf") or "officedocument" in mime:
        return mime, "document"
    return mime, "other"
