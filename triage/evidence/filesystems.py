"""Walking a file system with The Sleuth Kit: every regular file (and NTFS data stream).

Directory loops (a hostile file system can point a directory at an ancestor) and absurd
depths are cut off and reported, never followed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import pytsk3

from triage.evidence.names import name_text
from triage.evidence.tsk import tsk_words

MAX_DEPTH = 128
NTFS_DATA = int(pytsk3.TSK_FS_ATTR_TYPE_NTFS_DATA)
DEFAULT_ATTR = int(pytsk3.TSK_FS_ATTR_TYPE_DEFAULT)
_VIRTUAL_DIR = int(pytsk3.TSK_FS_META_TYPE_VIRT_DIR)
_REG = int(pytsk3.TSK_FS_META_TYPE_REG)
_DIR_TYPES = {int(pytsk3.TSK_FS_META_TYPE_DIR), _VIRTUAL_DIR}


@dataclass
class FileEntry:
    """Metadata of one file (or data stream) found by the walk: no content."""

    partition: int
    path: str
    inode: int
    size: int
    allocated: bool
    attr_type: int = DEFAULT_ATTR
    attr_id: int = -1
    stream: str | None = None
    times: dict[str, str | None] = field(default_factory=dict)

    def to_tuple(self) -> tuple[Any, ...]:
        return (
            self.partition,
            self.path,
            self.inode,
            self.size,
            self.allocated,
            self.attr_type,
            self.attr_id,
            self.stream,
            self.times,
        )

    @classmethod
    def from_tuple(cls, t: tuple[Any, ...]) -> FileEntry:
        return cls(*t)


@dataclass
class WalkProblem:
    partition: int
    path: str
    reason: str


# The record's name for each time, TSK's, and TSK's for its nanoseconds.
_MACB = (("modified", "mtime"), ("accessed", "atime"), ("changed", "ctime"), ("born", "crtime"))
_TIMES = tuple((key, tsk, f"{tsk}_nano") for key, tsk in _MACB)


def _iso(seconds: int, nano: int = 0) -> str | None:
    """``seconds`` since 1970 and ``nano`` more, in UTC ISO 8601 (microseconds shown if any):
    ``2024-05-01T10:00:00.250000Z``. None for no time (0) or one no calendar holds."""
    if not seconds:
        return None
    micro = nano // 1000
    base = _iso_seconds(seconds)
    if base is None or not 0 <= micro < 1_000_000:
        return None
    return f"{base}.{micro:06d}Z" if micro else f"{base}Z"


@lru_cache(maxsize=65536)
def _iso_seconds(seconds: int) -> str | None:
    """The date and time of ``seconds``, to the second. Files' times cluster (a copy, an
    install, the four times of one file), so most are formatted once: the walk spent half its
    time here, on four datetimes a file."""
    try:
        return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None).isoformat()
    except (OverflowError, OSError, ValueError):
        return None


def macb(meta: Any) -> dict[str, str | None]:
    """Modified, accessed, changed (metadata) and born (created) times in UTC ISO 8601."""
    return {
        key: _iso(int(getattr(meta, seconds, 0) or 0), int(getattr(meta, nano, 0) or 0))
        for key, seconds, nano in _TIMES
    }


# NTFS's $BadClus:$Bad is a sparse stream as large as the volume that records bad clusters;
# it holds no file content and TSK will not read it, so it is not listed.
_SKIPPED_STREAMS = {("/$BadClus", "$Bad")}


def _data_streams(entry: Any, path: str) -> list[tuple[int, str, int]]:
    """NTFS named data streams of a file: (attribute id, stream name, size)."""
    streams = []
    try:
        for attr in entry:
            if int(attr.info.type) == NTFS_DATA and attr.info.name:
                name = name_text(attr.info.name)
                if name and name != "$Data" and (path, name) not in _SKIPPED_STREAMS:
                    streams.append((int(attr.info.id), name, int(attr.info.size)))
    except (OSError, TypeError):
        return []
    return streams


def walk(
    fs: pytsk3.FS_Info,
    partition: int,
    include_deleted: bool = False,
    problems: list[WalkProblem] | None = None,
    max_depth: int = MAX_DEPTH,
) -> Iterator[FileEntry]:
    """Yield every allocated regular file (and, if asked, deleted ones whose metadata is
    still readable), NTFS alternate data streams as separate entries."""
    problems = problems if problems is not None else []
    visited: set[int] = set()
    stack: list[tuple[Any, str, int]] = []
    try:
        root = fs.open_dir(path="/")
        root_addr = int(root.info.fs_file.meta.addr) if root.info.fs_file.meta else -1
    except OSError as exc:
        problems.append(WalkProblem(partition, "/", f"root directory unreadable: {tsk_words(exc)}"))
        return
    visited.add(root_addr)
    stack.append((root, "", 0))
    while stack:
        directory, prefix, depth = stack.pop()
        try:
            children = list(directory)
        except OSError as exc:
            problems.append(WalkProblem(partition, prefix or "/", f"directory unreadable: {tsk_words(exc)}"))
            continue
        for entry in children:
            name_info = entry.info.name
            if name_info is None:
                continue
            name = name_text(name_info.name)
            if name in (".", ".."):
                continue
            path = f"{prefix}/{name}"
            meta = entry.info.meta
            allocated = bool(int(name_info.flags) & int(pytsk3.TSK_FS_NAME_FLAG_ALLOC))
            if meta is None:
                continue
            meta_type = int(meta.type)
            if meta_type in _DIR_TYPES:
                if meta_type == _VIRTUAL_DIR and not include_deleted:
                    continue  # $OrphanFiles holds only unallocated entries
                if not allocated and not include_deleted:
                    continue
                addr = int(meta.addr)
                if addr in visited:
                    problems.append(WalkProblem(partition, path, "directory loop cut off"))
                    continue
                if depth + 1 > max_depth:
                    problems.append(
                        WalkProblem(partition, path, f"deeper than {max_depth} levels; not followed")
                    )
                    continue
                visited.add(addr)
                try:
                    stack.append((entry.as_directory(), path, depth + 1))
                except OSError as exc:
                    problems.append(WalkProblem(partition, path, f"directory unreadable: {tsk_words(exc)}"))
                continue
            if meta_type != _REG:
                continue
            if not allocated and not include_deleted:
                continue
            inode = int(meta.addr)
            if not allocated and inode == 0:
                continue  # no metadata left to read
            times = macb(meta)
            yield FileEntry(partition, path, inode, int(meta.size), allocated, times=times)
            for attr_id, stream, size in _data_streams(entry, path):
                yield FileEntry(
                    partition,
                    f"{path}:{stream}",
                    inode,
                    size,
                    allocated,
                    attr_type=NTFS_DATA,
                    attr_id=attr_id,
                    stream=stream,
                    times=times,
                )
