"""The phases that parse evidence. Each runs inside a child process (see ``pool.run_child``):
probing the container, hashing the whole image, and walking the file systems to a spool."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from triage.analysis.hashers import ALGORITHMS
from triage.errors import CorruptImageError, ResultsNotWritten
from triage.evidence.filesystems import WalkProblem, walk
from triage.evidence.formats import DetectedImage
from triage.evidence.images import open_image
from triage.evidence.repairs import fat_copies_differ
from triage.evidence.tsk import open_tsk_image
from triage.evidence.volumes import fs_type_name, list_partitions, try_open_fs
from triage.scan.outputs import json_line

T = TypeVar("T")

HASH_BLOCK = 8 * 1024 * 1024


def probe(detected: DetectedImage, counter: Any) -> dict[str, Any]:
    """Open the container: media size and the hashes stored at acquisition. The first and last
    bytes are read so that a truncated image is caught here, before anything else."""
    source = open_image(detected)
    try:
        if source.size <= 0:
            raise CorruptImageError(f"{detected.first.name}: image holds no data")
        for offset in (0, source.size - 1):
            try:
                data = source.read(offset, 1)
            except (OSError, CorruptImageError):
                data = b""
            if len(data) != 1:
                raise CorruptImageError(
                    f"{detected.first.name}: {detected.format.value} image truncated or damaged "
                    f"(no data at offset {offset} of {source.size})"
                )
        return {"media_size": source.size, "stored_hashes": source.stored_hashes()}
    finally:
        source.close()


def hash_image(detected: DetectedImage, counter: Any) -> dict[str, str]:
    """MD5, SHA-1 and SHA-256 of the media, one read feeding three hashers in parallel
    threads (hashlib releases the GIL on large buffers)."""
    import hashlib

    source = open_image(detected)
    hashers = [hashlib.new(name) for name in ALGORITHMS]
    try:
        with ThreadPoolExecutor(len(hashers)) as threads:
            offset = 0
            while offset < source.size:
                data = source.read(offset, HASH_BLOCK)
                if not data:
                    raise OSError(f"short read at offset {offset} of {source.size}")
                list(threads.map(lambda h, chunk=data: h.update(chunk), hashers))
                offset += len(data)
                counter.value = offset
    finally:
        source.close()
    return {name: h.hexdigest() for name, h in zip(ALGORITHMS, hashers, strict=True)}


MAX_PROBLEMS = 10_000  # listed one by one; a damaged or hostile file system can have millions


def _kept_problems(problems: list[WalkProblem]) -> list[WalkProblem]:
    """The walk's problems as the summary keeps them: the first ``MAX_PROBLEMS``, then one
    entry counting the rest (the summary is stored with the run and shown on its pages)."""
    if len(problems) <= MAX_PROBLEMS:
        return problems
    rest = len(problems) - MAX_PROBLEMS
    return [*problems[:MAX_PROBLEMS], WalkProblem(0, "", f"{rest:,} more walk problems, not listed")]


class _Spool:
    """The walk's spool file, whose write failures (disk full) reach the parent as such, not as
    a failure to read the image."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fh = self._do(lambda: path.open("wb"))

    def _do(self, action: Callable[[], T]) -> T:
        try:
            return action()
        except OSError as exc:
            raise ResultsNotWritten(exc.errno, exc.strerror, str(self._path)) from exc

    def write(self, data: bytes) -> None:
        self._do(lambda: self._fh.write(data))

    def flush(self) -> None:
        self._do(self._fh.flush)

    def __enter__(self) -> _Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self._do(self._fh.close)


def walk_to_spool(detected: DetectedImage, include_deleted: bool, spool: str, counter: Any) -> dict[str, Any]:
    """List partitions and write every file entry (metadata only) to ``spool`` as JSON lines."""
    # FAT and exFAT keep times in the device's local time, with no zone, and The Sleuth Kit
    # converts them with this process's time zone: the same image gave other "UTC" times on a
    # machine set to another zone. In UTC they are read at face value, the same everywhere.
    os.environ["TZ"] = "UTC"
    time.tzset()
    img = open_tsk_image(detected)
    volumes = list_partitions(img)
    partitions = volumes.partitions
    problems = [WalkProblem(0, "/", volumes.note)] if volumes.note else []
    files = 0
    total = 0
    with _Spool(Path(spool)) as out:
        for part in partitions:
            if part.kind not in ("data", "whole-image") or part.status == "unreadable":
                continue  # (unreadable already: starts past the end of a truncated image)
            fs, reason = try_open_fs(img, part.offset, part.length)
            if fs is None:
                part.status, part.reason = "unreadable", reason
                continue
            if reason:  # opened all the same, as the note says
                problems.append(WalkProblem(part.index, "/", reason))
            part.filesystem = fs_type_name(fs.info.ftype)
            part.status = "ok"
            if part.filesystem.startswith("fat") and (differ := fat_copies_differ(img, part.offset)):
                problems.append(WalkProblem(part.index, "/", differ))
            part.extra = {
                "block_size": int(fs.info.block_size),
                "block_count": int(fs.info.block_count),
            }
            beyond = part.offset + part.extra["block_size"] * part.extra["block_count"] - img.get_size()
            if beyond > 0:  # an acquisition cut short: what lies there reads as errors or not at all
                problems.append(
                    WalkProblem(
                        part.index,
                        "/",
                        f"the file system runs {beyond:,} bytes past the end of the image "
                        "(truncated?): files there cannot be read in full",
                    )
                )
            for entry in walk(fs, part.index, include_deleted, problems):
                out.write(json_line([part.offset, *entry.to_tuple()]))
                files += 1
                total += entry.size
                counter.value = files
                if files % 256 == 0:
                    out.flush()  # the parent starts analysing while the walk goes on
    return {
        "volume_system": volumes.kind,
        "partitions": [p.to_dict() for p in partitions],
        "problems": [p.__dict__ for p in _kept_problems(problems)],
        "files": files,
        "bytes": total,
    }
