"""Files read straight from a raw image (``evidence.direct``) hold what The Sleuth Kit reads."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytsk3

from tests.images import build
from tests.images.planted import Planted, random_bytes
from tests.triage.conftest import Odd, Worker
from triage.analysis.hashers import ALGORITHMS, MultiHasher, md5_lanes
from triage.evidence.direct import DirectReader, Extents, how_files_are_read, readable_directly
from triage.evidence.filesystems import DEFAULT_ATTR, FileEntry, walk
from triage.evidence.volumes import list_partitions, try_open_fs
from triage.scan import ScanOptions, analyse, scan_image
from triage.scan.arena import Arena
from triage.scan.outputs import read_jsonl


def _files(image: Path) -> Iterator[tuple[FileEntry, Extents | None, bytes, bytes | None]]:
    """Every file of the image's file systems: its extents (None: read through TSK), what TSK
    reads, and what is read at the extents."""
    img = pytsk3.Img_Info(str(image))
    reader = DirectReader(image)
    try:
        for part in list_partitions(img).partitions:
            fs, note = try_open_fs(img, part.offset, part.length)
            if fs is None:
                continue
            direct = not note and readable_directly(fs)
            for entry in walk(fs, part.index):
                if entry.attr_type != DEFAULT_ATTR:
                    continue  # NTFS streams: never read straight from the image
                handle = fs.open_meta(inode=entry.inode)
                extents = reader.extents(handle, entry, part.offset, fs.info) if direct else None
                tsk = handle.read_random(0, entry.size) if entry.size else b""
                mine = (
                    bytes(reader.read(extents, entry.size, bytearray(entry.size)))
                    if extents is not None
                    else None
                )
                yield entry, extents, tsk, mine
    finally:
        reader.close()


def _opened(fs: Any, path: str, size: int) -> tuple[Any, FileEntry]:
    """The file at ``path`` of ``fs``, open, and as the walk describes it (partition 1)."""
    handle = fs.open(path)
    return handle, FileEntry(1, path, int(handle.info.meta.addr), size, True)


def _digests(data: bytes) -> dict[str, str]:
    return {name: hashlib.new(name, data).hexdigest() for name in ALGORITHMS}


@pytest.mark.parametrize("name", ["ext4", "mbr", "gpt", "ntfs", "fragmented", "sparse"])
def test_what_is_read_straight_from_the_image_is_what_the_sleuth_kit_reads(
    name: str, images: dict[str, Path], odd: Odd
) -> None:
    image = odd[name][0] if name in odd else images[name]
    found = list(_files(image))
    assert found
    for entry, _extents, tsk, mine in found:
        assert len(tsk) == entry.size, entry.path
        assert mine is None or mine == tsk, entry.path
    direct = {entry.path: extents for entry, extents, _tsk, _mine in found if extents is not None}
    if name == "ntfs":  # past its initialised size NTFS reads zeros, which pytsk3 does not show
        assert direct == {}
    elif name == "ext4":  # 9 MiB in 1 KiB blocks: more than one block group, so several extents
        assert set(direct) == {"/video.bin"} and len(direct["/video.bin"]) > 1
    elif name == "fragmented":
        assert set(direct) == {"/a.bin", "/c.bin", "/d.bin"}  # not small.txt: TSK's one call is as quick
        assert len(direct["/d.bin"]) == 2 and all(len(direct[p]) == 1 for p in ("/a.bin", "/c.bin"))
    elif name == "sparse":  # a hole, or blocks never written, read as zeros: through TSK
        assert set(direct) == {"/whole.bin"}
        planted = {f"/{p.path}": p.data for p in odd["sparse"][1]}
        assert all(tsk == planted[entry.path] for entry, _e, tsk, _m in found if entry.path in planted)


@pytest.mark.parametrize("direct", [True, False])
@pytest.mark.parametrize(("whole", "keep"), [(True, True), (True, False), (False, False)])
def test_a_file_in_two_pieces_hashes_the_same_whichever_way_it_is_read(
    odd: Odd, worker: Worker, direct: bool, whole: bool, keep: bool
) -> None:
    # Kept for the MD5 lanes, read into the worker's reused buffer, or streamed in blocks
    # (here smaller than each piece, and not dividing them: blocks end inside pieces).
    image, planted = odd["fragmented"]
    state = worker(image, direct, read_block=100_000)
    (offset,) = [p.offset for p in list_partitions(state.img).partitions if p.kind == "data"]
    assert offset == 1024 * 1024
    fs = state.fs(offset)
    contents = []
    for p in planted:
        handle, entry = _opened(fs, f"/{p.path}", len(p.data))
        hasher = MultiHasher(ALGORITHMS)
        head, content = analyse._read(state, offset, entry, hasher, whole, keep)
        assert hasher.hexdigests() == _digests(p.data), p.path
        assert head == p.data[: len(head)] and head
        assert (bytes(content) if content is not None else None) == (p.data if whole else None)
        contents.append(content)
        took_direct = state.extents(offset, handle, entry) is not None
        assert took_direct == (direct and len(p.data) >= 256 * 1024), p.path
    if keep:  # each in a buffer of its own: reading the others, and into the reused one, left it
        assert [bytes(c) for c in contents if c is not None] == [p.data for p in planted]


def test_a_file_system_read_with_copies_of_damaged_structures_is_read_through_tsk(
    images: dict[str, Path], tmp_path: Path, worker: Worker
) -> None:
    # The copies are patched over the image as TSK reads it, not on the disk: bytes taken
    # straight from the image would not hold them.
    data = bytearray(images["ext4"].read_bytes())
    data[1024:2048] = bytes(1024)  # the superblock: read with its copy in block group 1
    damaged = tmp_path / "damaged.img"
    damaged.write_bytes(data)
    state = worker(damaged)
    assert state.direct is not None
    state.fs(0)
    assert state.direct_fs == set()
    plain = worker(images["ext4"])
    plain.fs(0)
    assert plain.direct_fs == {0}


def test_only_a_raw_image_in_one_file_is_read_straight(
    images: dict[str, Path], worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert worker(images["e01"]).direct is None
    assert worker(images["ext4"], direct=False).direct is None
    assert "TRIAGE_DIRECT_READS=0" in how_files_are_read()
    monkeypatch.setenv("TRIAGE_DIRECT_READS", "1")
    assert "straight from it" in how_files_are_read()


def test_scans_of_files_in_pieces_and_holes_give_their_digests(odd: Odd, tmp_path: Path) -> None:
    for name, (image, planted) in odd.items():
        listing = tmp_path / f"{name}.jsonl"
        summary = scan_image(image, ScanOptions(), listing).summary
        found = {r["path"]: r for r in read_jsonl(listing)}
        for p in planted:
            record = found[f"/{p.path}"]
            assert (record["md5"], record["sha256"], record["error"]) == (
                p.md5,
                hashlib.sha256(p.data).hexdigest(),
                None,
            ), (name, p.path)
        assert summary["provenance"]["versions"]["reads"] == how_files_are_read()


def test_a_run_past_the_file_systems_end_is_left_to_tsk(tmp_path: Path, worker: Worker) -> None:
    # Damaged metadata: a block pointer past the last block of an ext2 file system that does
    # not end the image (random bytes follow it here, as the next partition would on a disk).
    # TSK refuses to read there; read straight, the file took the bytes beyond instead.
    fs_image = build.ext4(tmp_path / "fs.img", [Planted("f.bin", random_bytes(3, 300 * 1024))], 8, "ext2")
    command = ["debugfs", "-w", "-R", "sif /f.bin block[0] 12000", str(fs_image)]  # 8,192 blocks
    subprocess.run(command, check=True, capture_output=True)
    disk = tmp_path / "disk.img"
    disk.write_bytes(fs_image.read_bytes() + random_bytes(9, 8 * 1024 * 1024))
    state = worker(disk)
    fs = state.fs(0)
    assert 0 in state.direct_fs
    handle, entry = _opened(fs, "/f.bin", 300 * 1024)
    assert state.extents(0, handle, entry) is None
    with pytest.raises(OSError, match="Offset is too large"):
        handle.read_random(0, entry.size)
    (record,) = analyse.process_batch([[0, *entry.to_tuple()]])
    assert record["error"].startswith("read failed") and record["md5"] is None


def test_a_file_whose_extents_tsk_cannot_load_is_read_through_tsk(tmp_path: Path, worker: Worker) -> None:
    # Its extent header overwritten: TSK lists no data attribute for it and refuses to read it;
    # the record says why, as it did before files were read straight.
    image = build.ext4(tmp_path / "e4.img", [Planted("f.bin", random_bytes(3, 300 * 1024))], 8)
    command = ["debugfs", "-w", "-R", "sif /f.bin block[0] 0", str(image)]
    subprocess.run(command, check=True, capture_output=True)
    state = worker(image)
    handle, entry = _opened(state.fs(0), "/f.bin", 300 * 1024)
    assert 0 in state.direct_fs and state.extents(0, handle, entry) is None
    (record,) = analyse.process_batch([[0, *entry.to_tuple()]])
    assert "extent header" in record["error"] and record["md5"] is None


def test_files_kept_for_the_md5_lanes_hold_their_own_bytes_batch_after_batch(
    tmp_path: Path, worker: Worker
) -> None:
    # A batch's files wait for the MD5 lanes in memory the next batch reuses (``scan.arena``),
    # here in slabs smaller than most of them: each must keep its own bytes until its batch's
    # MD5 is done, and the memory must stop growing once the batches repeat.
    sizes = [300 * 1024, 700 * 1024, 1_200_000, 260 * 1024, 2 * 1024 * 1024, 900 * 1024]
    planted = [Planted(f"f{n}.bin", random_bytes(n, size)) for n, size in enumerate(sizes)]
    image = build.ext4(tmp_path / "kept.img", planted, 16)
    state = worker(image)
    state.kept = Arena(slab_bytes=1024 * 1024)
    fs = state.fs(0)
    rows = {}
    for p in planted:
        handle, entry = _opened(fs, f"/{p.path}", len(p.data))
        assert state.extents(0, handle, entry) is not None, p.path
        rows[entry.path] = [0, *entry.to_tuple()]
    expected = {f"/{p.path}": _digests(p.data) for p in planted}
    paths = list(rows)
    batches = [paths, paths[::-1], paths[1::2] + paths[::2]]
    held = []
    for _round in range(3):
        for batch in batches:
            records = analyse.process_batch([rows[path] for path in batch])
            digests = {r["path"]: {n: r[n] for n in ALGORITHMS} for r in records}
            assert digests == {path: expected[path] for path in batch}
            held.append(state.kept.held)
    if md5_lanes() is None:  # no lanes on this CPU (or switched off): nothing is kept
        assert held == [0] * len(held)
    else:  # all six files, and at most a slab's worth unused at the end of each slab
        assert sum(sizes) <= held[0] and held[-1] <= sum(sizes) + len(sizes) * 1024 * 1024
        assert held[-len(batches) :] == [held[-1]] * len(batches)
