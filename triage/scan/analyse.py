"""Per-file analysis inside a pool worker: one read pass feeds the hashers, the file-type
sniffer and (for files under the cap) YARA; then the hash sets are consulted. A batch's files
up to ``hashers.LANES_MAX_BYTES`` are given MD5 together at its end (vector lanes:
``hashers.md5_many``), their bytes kept meanwhile in memory reused from batch to batch
(``arena``). Files of a raw image that lie in plain runs are read straight from it
(``evidence.direct``), the others through The Sleuth Kit."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from triage.analysis import filetypes
from triage.analysis.hashers import ALGORITHMS, Content, MultiHasher, md5_in_lanes, md5_many
from triage.analysis.hashsets import HashSetInfo, HashSetStore
from triage.analysis.yarascan import Scanner
from triage.evidence.direct import DirectReader, Extents, direct_reads_on, readable_directly
from triage.evidence.filesystems import DEFAULT_ATTR, FileEntry
from triage.evidence.formats import DetectedImage, ImageFormat
from triage.evidence.tsk import open_tsk_image, tsk_words
from triage.evidence.volumes import list_partitions, try_open_fs
from triage.scan.arena import Arena
from triage.scan.options import ScanOptions
from triage.scan.pool import tell_read


@dataclass
class _WorkerState:
    img: Any
    options: ScanOptions
    scanner: Scanner | None
    stores: list[tuple[HashSetInfo, HashSetStore]]
    direct: DirectReader | None = None  # a raw image in one file
    filesystems: dict[int, Any] = field(default_factory=dict)
    direct_fs: set[int] = field(default_factory=set)  # offsets of those read straight from it
    spare: bytearray = field(default_factory=bytearray)  # for a whole file not kept, reused
    kept: Arena = field(default_factory=Arena)  # for the files a batch keeps, read straight

    @cached_property
    def media_size(self) -> int:
        return int(self.img.get_size())

    @cached_property
    def lengths(self) -> dict[int, int]:
        """The partitions' lengths by their offsets."""
        return {p.offset: p.length for p in list_partitions(self.img).partitions}

    def fs(self, offset: int) -> Any:
        """The file system at ``offset``, opened as the walk opened it (with copies of damaged
        structures, if it needed them)."""
        if offset not in self.filesystems:
            fs, reason = try_open_fs(self.img, offset, self.lengths.get(offset, 0))
            if fs is None:
                raise OSError(reason)
            self.filesystems[offset] = fs
            if self.direct is not None and not reason and readable_directly(fs):
                self.direct_fs.add(offset)  # opened as it is: no copy of a structure patched in
        return self.filesystems[offset]

    def extents(self, fs_offset: int, handle: Any, entry: FileEntry) -> Extents | None:
        """Where the file lies in the image, if it can be read straight from it."""
        if self.direct is None or fs_offset not in self.direct_fs:
            return None
        return self.direct.extents(handle, entry, fs_offset, self.filesystems[fs_offset].info)

    def spare_for(self, size: int) -> bytearray:
        """The reused buffer, grown to ``size`` bytes if it is smaller."""
        if len(self.spare) < size:
            self.spare = bytearray(size)
        return self.spare


_state: _WorkerState | None = None


def init_worker(detected: DetectedImage, options: ScanOptions) -> None:
    """Open the image, the hash-set stores and the compiled rules once per process."""
    global _state
    scanner = Scanner(options.rules, options.yara_timeout, options.yara_max_size) if options.rules else None
    stores = [(info, HashSetStore(info.store, info.entries)) for info in options.hashsets]
    raw = detected.format is ImageFormat.raw
    direct = DirectReader(detected.first) if raw and direct_reads_on() else None
    _state = _WorkerState(open_tsk_image(detected), options, scanner, stores, direct)


@dataclass
class _Analysed:
    """A file analysed but for its hash-set lookups; the bytes of a file the MD5 lanes take are
    kept until they have run for its batch (``give_md5``)."""

    record: dict[str, Any]
    md5_of: Content | None = None


def _read(
    state: _WorkerState, fs_offset: int, entry: FileEntry, hasher: MultiHasher, whole: bool, keep: bool
) -> tuple[bytes, Content | None]:
    """Feed the file to the hasher; return its head and, if ``whole``, all of it: if ``keep``,
    valid until the batch ends (the MD5 lanes take it then), else until the next file is read.

    A file kept whole (under the YARA cap, or waiting for the MD5 lanes) is read with one call:
    one buffer serves hashers and YARA, no joining. A larger one is streamed in blocks so
    memory stays bounded.
    """
    handle = state.fs(fs_offset).open_meta(inode=entry.inode)
    extents = state.extents(fs_offset, handle, entry)
    if extents is not None:
        return _read_direct(state, extents, entry.size, hasher, whole, keep)
    block = entry.size if whole else state.options.read_block
    head = b""
    offset = 0
    data = b""
    while offset < entry.size:
        want = min(block, entry.size - offset)
        if entry.attr_type == DEFAULT_ATTR:
            data = handle.read_random(offset, want)
        else:
            data = handle.read_random(offset, want, entry.attr_type, entry.attr_id)
        if not data:
            raise OSError(f"short read at offset {offset} of {entry.size}")
        if whole and len(data) < want:
            raise OSError(f"short read at offset {offset + len(data)} of {entry.size}")
        hasher.update(data)
        tell_read(len(data))
        if offset == 0:
            head = data[: filetypes.HEADER_BYTES]
        offset += len(data)
    return head, (data if whole else None)


def _read_direct(
    state: _WorkerState, extents: Extents, size: int, hasher: MultiHasher, whole: bool, keep: bool
) -> tuple[bytes, Content | None]:
    """``_read`` for a file that lies at ``extents`` of a raw image (``evidence.direct``)."""
    assert state.direct is not None
    if whole:
        data = state.direct.read(extents, size, state.kept.take(size) if keep else state.spare_for(size))
        hasher.update(data)
        tell_read(size)
        return bytes(data[: filetypes.HEADER_BYTES]), data
    head = b""
    block = state.options.read_block
    for piece in state.direct.chunks(extents, state.spare_for(block), block):
        hasher.update(piece)
        tell_read(len(piece))
        head = head or bytes(piece[: filetypes.HEADER_BYTES])
    return head, None


def bytes_to_read(size: int, media_size: int) -> int:
    """What a file of ``size`` bytes is read for: all of it, or nothing when it claims more than
    the whole image holds (``media_size``). Its record then says why (``analyse_entry``)."""
    return size if size <= media_size else 0


def analyse_entry(state: _WorkerState, fs_offset: int, entry: FileEntry) -> _Analysed:
    """Read the file once for its digests, file type and YARA. The MD5 of a file the lanes take
    waits for its batch (``md5_in_lanes``); the hash sets are consulted once it has all three
    digests (``look_up``)."""
    out = _Analysed(_record(entry))
    record = out.record
    media_size = state.media_size
    if bytes_to_read(entry.size, media_size) < entry.size:
        # Damaged metadata (a hostile or corrupt inode claiming terabytes on a memory stick), or
        # a sparse file larger than the disk: read, it was hashed for hours or days, as its
        # holes read as zeros, until the batch's time ran out, twice.
        record["error"] = (
            f"not read: its size ({entry.size:,} bytes) is more than the whole image holds "
            f"({media_size:,} bytes): damaged metadata, or a sparse file"
        )
        return out
    in_lanes = md5_in_lanes(entry.size)
    hasher = MultiHasher(("sha1", "sha256") if in_lanes else ALGORITHMS)
    whole = in_lanes or (state.scanner is not None and entry.size <= state.options.yara_max_size)
    try:
        head, content = _read(state, fs_offset, entry, hasher, whole, keep=in_lanes)
    except (OSError, MemoryError) as exc:
        record["error"] = f"read failed: {tsk_words(exc)}"
        return out
    record.update(hasher.hexdigests())
    if in_lanes:
        out.md5_of = content
    mime, kind = filetypes.detect(head)
    record["mime"], record["kind"] = mime, kind
    if state.scanner is not None:
        data = content if content is not None else b""
        result = state.scanner.scan(data, path=entry.path, filetype=mime or "", size=entry.size)
        record["yara"] = {
            "matches": result.matches,
            "complete": result.complete,
            "reason": result.reason,
        }
    return out


def give_md5(analysed: list[_Analysed]) -> None:
    """MD5 for the files whose bytes were kept for it, all at once (vector lanes)."""
    waiting = [(a, a.md5_of) for a in analysed if a.md5_of is not None]
    digests = md5_many([data for _a, data in waiting])
    for (a, _data), digest in zip(waiting, digests, strict=True):
        a.record["md5"] = digest
        a.md5_of = None


def look_up(state: _WorkerState, record: dict[str, Any]) -> dict[str, Any]:
    """The hash sets' verdicts on a file with its digests; its record."""
    if record["error"] is not None:
        return record
    for info, store in state.stores:
        found = store.lookup([record["md5"], record["sha1"], record["sha256"]])
        if found is None:
            continue
        category, alert = found
        record["hashset_hits"].append(
            {
                "set": info.name,
                "kind": info.kind.value,
                "category": category,
                "alert": alert and info.kind.value == "known_bad",
            }
        )
        if info.kind.value == "known_good" or not alert:
            record["known"] = True
    return record


def process_batch(batch: list[list[Any]]) -> list[dict[str, Any]]:
    """Analyse a batch of spooled entries ``[fs_offset, *FileEntry fields]``: each file in
    turn, then the MD5 the lanes take, all together, then the hash-set lookups."""
    assert _state is not None, "init_worker was not called"
    state = _state
    state.kept.reset()  # the last batch's bytes are done with, whatever ended it
    analysed = [analyse_entry(state, row[0], FileEntry.from_tuple(tuple(row[1:]))) for row in batch]
    give_md5(analysed)
    return [look_up(state, a.record) for a in analysed]


def _record(entry: FileEntry, error: str | None = None) -> dict[str, Any]:
    """A file's record before analysis: metadata from the walk, nothing found yet."""
    return {
        "partition": entry.partition,
        "path": entry.path,
        "inode": entry.inode,
        "stream": entry.stream,
        "size": entry.size,
        "allocated": entry.allocated,
        "deleted": not entry.allocated,
        "times": entry.times,
        "md5": None,
        "sha1": None,
        "sha256": None,
        "mime": None,
        "kind": None,
        "hashset_hits": [],
        "known": False,
        "yara": None,
        "error": error,
    }


def error_record(row: list[Any], reason: str) -> dict[str, Any]:
    """The entry of a file whose analysis took its worker down or overran its time."""
    return _record(FileEntry.from_tuple(tuple(row[1:])), f"analysis failed: {reason}")
