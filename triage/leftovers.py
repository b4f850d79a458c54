"""What a process killed half way leaves behind: staged uploads and registrations, partial
copies, indexes and filters being built. Each is written beside its final place and renamed
into it when whole, so a leftover is never read; at NSRL size it is gigabytes."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable
from pathlib import Path

STALE_SECONDS = 24 * 3600  # older than this, it is a leftover: work under way takes minutes


def remove_stale(paths: Iterable[Path], now: float | None = None) -> None:
    """Remove those of ``paths`` (files or folders) last changed ``STALE_SECONDS`` ago or more.
    One removed meanwhile (by another process starting at the same time) is passed over."""
    cutoff = (now or time.time()) - STALE_SECONDS
    for path in paths:
        try:
            if path.lstat().st_mtime >= cutoff:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        except OSError:
            continue
