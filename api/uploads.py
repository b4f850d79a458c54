"""Saving an uploaded file: streamed to disk in blocks (hash sets can be gigabytes), under its
own base name only (no path a client could smuggle in)."""

from __future__ import annotations

import shutil
from pathlib import Path

from fastapi import UploadFile

from triage.errors import FieldValidationError

NAME_MAX = 255  # bytes in one file name on the file systems we write to


def save_upload(upload: UploadFile, folder: Path) -> Path:
    name = Path(upload.filename or "").name
    if not name or name in (".", ".."):
        raise FieldValidationError("file", "needs a file name")
    if len(name.encode("utf-8", "surrogatepass")) > NAME_MAX or any(ord(c) < 32 for c in name):
        raise FieldValidationError(
            "file", f"the file name must be at most {NAME_MAX} bytes, without control characters"
        )
    target = folder / name
    with target.open("wb") as out:
        shutil.copyfileobj(upload.file, out, 4 * 1024 * 1024)
    return target
