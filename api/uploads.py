"""Saving an uploaded file: streamed to disk in blocks (hash sets can be gigabytes), under its
own base name only (no path a client could smuggle in)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import UploadFile

from triage.errors import FieldValidationError
from triage.leftovers import remove_stale
from triage.settings import Settings

NAME_MAX = 255  # bytes in one file name on the file systems we write to


def _staging_root(settings: Settings) -> Path:
    return Path(settings.artifact_dir) / "uploads"


@contextmanager
def staging(settings: Settings) -> Iterator[Path]:
    """A private folder for one request's uploads, removed afterwards. It is on the artifact
    disk, beside the copies the registry keeps, so that a registered upload is moved there
    rather than copied again (hash sets are gigabytes), and not in ``/tmp``, which is often
    memory."""
    root = _staging_root(settings)
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix="upload-") as folder:
        yield Path(folder)


def remove_stale_staging(settings: Settings, now: float | None = None) -> None:
    """Remove the staging folders of uploads that a killed server left (see ``leftovers``;
    a folder in use is minutes old, whichever worker process holds it)."""
    remove_stale(_staging_root(settings).glob("upload-*"), now)


def save_upload(upload: UploadFile, folder: Path, field: str = "file") -> Path:
    """Save ``upload`` in ``folder`` under its base name; ``field`` is the form field that
    errors name. Two files of one request with the same name are refused (the second would
    silently replace the first: two vendors' rule sets may each have an ``index.yar``)."""
    name = Path(upload.filename or "").name
    if not name or name in (".", ".."):
        raise FieldValidationError(field, "needs a file name")
    if len(name.encode("utf-8", "surrogatepass")) > NAME_MAX or any(ord(c) < 32 for c in name):
        raise FieldValidationError(
            field, f"the file name must be at most {NAME_MAX} bytes, without control characters"
        )
    target = folder / name
    if target.exists():
        raise FieldValidationError(field, f"two files are named {name}: rename one, or register them apart")
    with target.open("wb") as out:
        shutil.copyfileobj(upload.file, out, 4 * 1024 * 1024)
    return target
