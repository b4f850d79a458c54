"""The scan engine against Sleuth Kit's fiwalk, planted files, and broken evidence."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TESTDATA
from tests.images import build
from tests.images.planted import KNOWN_BAD, KNOWN_GOOD, SLOW_RULE, YARA_HIT, Planted, random_bytes
from tests.oracle import fiwalk, mismatches, parse_dfxml
from tests.processes import group_ends
from triage.analysis.hashsets import HashSetKind, load_hashset
from triage.analysis.yarascan import compile_rules
from triage.errors import CorruptImageError, IntegrityError, InvalidInputError, UnsupportedFormatError
from triage.scan import ScanOptions, engine, phases, scan_image
from triage.scan.outputs import DfxmlWriter, read_jsonl, write_dfxml


def _in_order(listing: Path) -> list[dict[str, Any]]:
    """The listing's records by partition and path: it is written as batches finish, in no set
    order (README, Results), so two scans are compared in this one."""
    return sorted(read_jsonl(listing), key=lambda r: (r["partition"], r["path"]))


def _scan(image: Path, tmp_path: Path, **kw: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The summary and the records (``_in_order``)."""
    listing = tmp_path / f"{image.name}.jsonl"
    result = scan_image(image, ScanOptions(**kw), listing)
    return result.summary, _in_order(listing)


@pytest.mark.parametrize("name", ["ext4", "mbr", "ntfs", "gpt", "e01"])
def test_every_allocated_file_hashes_as_fiwalk_says(
    name: str, images: dict[str, Path], tmp_path: Path
) -> None:
    summary, records = _scan(images[name], tmp_path)
    oracle = fiwalk(images["ext4"] if name == "e01" else images[name])
    assert len(oracle) >= 18
    assert mismatches(records, summary["partitions"], oracle) == []
    assert summary["errors"] == 0


@pytest.mark.parametrize("name", ["ext2.E01", "ext2.split.E01", "ext2.splitraw.000", "iso9660.raw"])
def test_dfvfs_images_hash_as_fiwalk_says(name: str, tmp_path: Path) -> None:
    image = TESTDATA / name
    summary, records = _scan(image, tmp_path)
    if name == "iso9660.raw":
        oracle_image = image
    else:  # fiwalk here has no EWF support compiled in: give it the raw bytes
        oracle_image = tmp_path / "ext2.raw"
        oracle_image.write_bytes(
            (TESTDATA / "ext2.splitraw.000").read_bytes() + (TESTDATA / "ext2.splitraw.001").read_bytes()
        )
    assert mismatches(records, summary["partitions"], fiwalk(oracle_image)) == []
    by_path = {r["path"].lower(): r for r in records}
    assert by_path["/a_directory/a_file"]["md5"] == "85bebf486af24792085f769afa46717d"
    assert by_path["/a_directory/another_file"]["md5"] == "d54ff73404ed6041a3bd66850b061bff"
    if name.endswith("E01"):
        assert summary["image"]["integrity"] == "verified"
        assert summary["image"]["computed_hashes"]["md5"] == "196066add11fb71c4c49cf1bb50d6d24"


def test_planted_files_are_found_by_vics_nsrl_and_yara(
    images: dict[str, Path], hashset_dir: Path, rules_dir: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    sets = [
        load_hashset(hashset_dir / "vics20.json", cache),
        load_hashset(hashset_dir / "vics13.json", cache),
        load_hashset(hashset_dir / "nsrl.db", cache),
    ]
    assert [s.kind for s in sets] == [HashSetKind.known_bad, HashSetKind.known_bad, HashSetKind.known_good]
    summary, records = _scan(images["ext4"], tmp_path, hashsets=sets, rules=compile_rules([rules_dir]))
    by_path = {r["path"]: r for r in records}

    bad = by_path["/photos/IMG_0001.jpg"]
    assert {(h["set"], h["category"], h["alert"]) for h in bad["hashset_hits"]} == {
        ("vics20.json", "VICS 1 child abuse material", True),
        ("vics13.json", "VICS 2 child exploitive (age difficult)", True),
    }
    assert bad["kind"] == "image" and bad["mime"] == "image/jpeg"
    good = by_path["/system/kernel32.dll"]
    assert good["known"] is True and good["hashset_hits"][0]["alert"] is False
    hit = by_path["/notes.txt"]
    assert [m["rule"] for m in hit["yara"]["matches"]] == ["planted_marker"]
    assert hit["yara"]["complete"] is True
    others = [
        r
        for p, r in by_path.items()
        if p not in ("/photos/IMG_0001.jpg", "/system/kernel32.dll", "/notes.txt")
    ]
    assert all(not r["hashset_hits"] and not r["yara"]["matches"] for r in others)

    assert summary["alert_files"] == 1 and summary["known_files"] == 1
    assert summary["hashset_hits"]["vics20.json"] == {"VICS 1 child abuse material": 1}
    assert summary["yara_hits"] == {"planted_marker": 1}
    assert summary["images"] == 2  # the JPEG and the PNG, by content
    prov = summary["provenance"]
    assert set(prov["versions"]) == {"htcu-triage", "sleuthkit", "libewf", "yara", "openssl", "md5", "reads"}
    assert prov["options"]["rules"]["sha256"] == compile_rules([rules_dir]).sha256
    assert (
        prov["options"]["hashsets"][0]["sha256"]
        == hashlib.sha256((hashset_dir / "vics20.json").read_bytes()).hexdigest()
    )
    assert prov["started"] <= prov["finished"]
    assert summary["known_left_out"] == 0

    # With omit_known the known-good file is counted but not listed; the known-bad one stays.
    dfxml = tmp_path / "omitted.xml"
    listing = tmp_path / "omitted.jsonl"
    result = scan_image(images["ext4"], ScanOptions(hashsets=sets, omit_known=True), listing, dfxml=dfxml)
    listed = {r["path"] for r in read_jsonl(listing)}
    assert "/system/kernel32.dll" not in listed and "/photos/IMG_0001.jpg" in listed
    assert len(listed) == len(records) - 1 and "kernel32.dll" not in dfxml.read_text()
    assert result.summary["files"] == summary["files"] and result.summary["known_files"] == 1
    assert result.summary["known_left_out"] == 1 and result.summary["provenance"]["options"]["omit_known"]


def test_progress_counts_files_and_bytes_from_the_start_of_the_analysis(
    images: dict[str, Path], tmp_path: Path
) -> None:
    # The files analysed were never told while a scan ran (a run showed 0 of 0 files to its
    # end), and nothing was told until the first batch was done: a run's page said
    # "preparing" or "verifying" through minutes of analysis.
    told: list[tuple[str, int, int]] = []
    small = ScanOptions(batch_files=4)  # several batches
    result = scan_image(images["ext4"], small, tmp_path / "x.jsonl", lambda *p: told.append(p))
    files = result.summary["files"]
    analysing = [p for p in told if p[0] in ("analysing", "files")]
    assert analysing[:2] == [("analysing", 0, 0), ("files", 0, 0)]  # before any batch is done
    counts = [(done, listed) for phase, done, listed in told if phase == "files"]
    assert len(counts) > 2 and counts[-1] == (files, files)
    assert all(done <= listed for done, listed in counts)
    assert [done for done, _ in counts] == sorted(done for done, _ in counts)
    assert any(done == 0 < listed for done, listed in counts)  # listed as batches go out
    assert any(0 < done < files for done, _ in counts)  # and done batch by batch
    assert told[-1] == ("walking", files, 0)


def test_progress_moves_while_a_batch_is_under_way(tmp_path: Path) -> None:
    # The bytes done moved only when a batch came back: a file of a hundred gigabytes (a
    # virtual machine's disk) held the progress still for minutes. Here one batch of files
    # that YARA takes about a second each: the bytes each worker has read are told meanwhile.
    sizes = [64 * 1024, 96 * 1024, 128 * 1024]
    image = build.ext4(
        tmp_path / "slow.img", [Planted(f"f{n}.bin", random_bytes(n, size)) for n, size in enumerate(sizes)]
    )
    rule = tmp_path / "slow.yar"
    rule.write_text(SLOW_RULE)
    told: list[tuple[str, int, int]] = []
    options = ScanOptions(rules=compile_rules([rule]), processes=1)
    result = scan_image(image, options, tmp_path / "x.jsonl", lambda *p: told.append(p))
    files_done = [done for phase, done, _ in told if phase == "files"]
    analysed = [done for phase, done, _ in told if phase == "analysing"]
    assert max(files_done[:-1]) == 0 and files_done[-1] == len(sizes)  # one batch: done at its end
    assert analysed == sorted(analysed) and analysed[-1] == sum(sizes) == result.summary["bytes"]
    assert {0 < done < sum(sizes) for done in analysed} == {True, False}  # moved before the answer


def test_sha256_of_each_file_is_recorded(images: dict[str, Path], tmp_path: Path) -> None:
    _, records = _scan(images["ext4"], tmp_path)
    by_path = {r["path"]: r for r in records}
    assert by_path["/notes.txt"]["sha256"] == hashlib.sha256(YARA_HIT).hexdigest()
    assert by_path["/system/kernel32.dll"]["sha256"] == hashlib.sha256(KNOWN_GOOD).hexdigest()
    assert by_path["/photos/IMG_0001.jpg"]["sha256"] == hashlib.sha256(KNOWN_BAD).hexdigest()
    assert by_path["/notes.txt"]["times"]["modified"].endswith("Z")


def test_ntfs_alternate_data_streams_are_separate_entries(images: dict[str, Path], tmp_path: Path) -> None:
    _, records = _scan(images["ntfs"], tmp_path)
    stream = next(r for r in records if r["path"] == "/notes.txt:secret")
    assert stream["stream"] == "secret"
    assert stream["md5"] == hashlib.md5(b"hidden stream " * 300).hexdigest()  # noqa: S324
    main = next(r for r in records if r["path"] == "/notes.txt")
    assert main["md5"] == hashlib.md5(YARA_HIT).hexdigest()  # noqa: S324


def test_partitions_all_listed_unreadable_ones_with_reason(images: dict[str, Path], tmp_path: Path) -> None:
    summary, _ = _scan(images["gpt"], tmp_path)
    data = [p for p in summary["partitions"] if p["kind"] == "data"]
    assert [(p["filesystem"], p["status"]) for p in data] == [
        ("ext4", "ok"),
        ("fat16", "ok"),
        (None, "unreadable"),
    ]
    assert "not recognised" in data[2]["reason"] and "tsk3.cpp" not in data[2]["reason"]
    assert summary["volume_system"] == "gpt"
    mbr, _ = _scan(images["mbr"], tmp_path)
    assert [p["filesystem"] for p in mbr["partitions"] if p["kind"] == "data"] == [
        "fat32",
        "ext2",
    ]  # logical too


def test_deleted_files_only_with_the_option_and_flagged(images: dict[str, Path], tmp_path: Path) -> None:
    _, records = _scan(images["mbr"], tmp_path)
    assert not any(r["deleted"] for r in records)
    _, with_deleted = _scan(images["mbr"], tmp_path, include_deleted=True)
    gone = [r for r in with_deleted if r["deleted"] and r["path"].lower().endswith("eleted.txt")]
    assert gone and gone[0]["allocated"] is False


def test_bogus_image_is_a_clear_error_and_leaves_nothing_behind(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(UnsupportedFormatError, match="no readable partition or file system"):
        scan_image(TESTDATA / "bogus.001", ScanOptions(), out / "files.jsonl", dfxml=out / "dfxml.xml")
    assert list(out.iterdir()) == []  # no listing, no DFXML, no spool or fragments


def test_a_failed_scan_leaves_a_device_or_pipe_it_was_to_write_to(tmp_path: Path) -> None:
    # `--dfxml /dev/null` and a scan that then failed: the partial results were removed, and
    # /dev/null with them (run as root, the workstation lost it). A pipe stands in for the
    # device here (making a device node needs root).
    pipe, out = tmp_path / "dfxml-pipe", tmp_path / "out"
    os.mkfifo(pipe)
    with pytest.raises(UnsupportedFormatError, match="no readable partition or file system"):
        scan_image(TESTDATA / "bogus.001", ScanOptions(), out / "files.jsonl", dfxml=pipe)
    assert pipe.is_fifo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dfxml-pipe", "out"]
    assert list(out.iterdir()) == []


def test_dfxml_for_a_device_or_pipe_is_assembled_elsewhere(tmp_path: Path) -> None:
    # The fragments went into a hidden folder beside the target: beside /dev/null that is
    # /dev, which only root may write to.
    pipe = tmp_path / "dfxml-pipe"
    os.mkfifo(pipe)
    writer = DfxmlWriter(pipe)
    try:
        writer.add({"partition": 0, "path": "/a", "size": 1, "allocated": True, "inode": 2})
        assert [p.name for p in tmp_path.iterdir()] == ["dfxml-pipe"]
    finally:
        writer.close()
    beside = tmp_path / "dfxml.xml"
    writer = DfxmlWriter(beside)  # a file of its own: assembled beside it, on the results' disk
    try:
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".dfxml.xml-parts-")]
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("head", "what"),
    [
        (b"KDMV\x01\x00\x00\x00", "VMware virtual disk (VMDK)"),
        (b"vhdxfile", "Hyper-V virtual disk (VHDX)"),
        (b"conectix\x00\x00\x00\x02", "Virtual PC / Hyper-V virtual disk (VHD)"),
        (b"QFI\xfb\x00\x00\x00\x03", "QEMU virtual disk (QCOW)"),
        (b"<<< Oracle VM VirtualBox Disk Image >>>\n".ljust(0x40, b"\0") + b"\x7f\x10\xda\xbe", "(VDI)"),
        (b"\x1f\x8b\x08\x00", "gzip archive, not a disk image this tool reads; extract the image"),
        (b"7z\xbc\xaf\x27\x1c\x00\x04", "7-Zip archive"),
        (b"LVF\x09\x0d\x0a\xff\x00", "logical evidence files (L01/Lx01) are not disk images"),
    ],
)
def test_a_virtual_disk_or_an_archive_is_named_not_taken_for_damaged(
    head: bytes, what: str, tmp_path: Path
) -> None:
    # Read as raw, each was "file system not recognised or damaged": damaged evidence, to a
    # reader, where the image only needs converting or extracting.
    image = tmp_path / "exhibit.001"  # the name does not decide: the content does
    image.write_bytes(head + b"\0" * (1 << 20))
    with pytest.raises(UnsupportedFormatError, match=re.escape(what)):
        scan_image(image, ScanOptions(), tmp_path / "x.jsonl")


def test_an_aff4_image_is_named_as_one_not_as_an_archive_to_extract(tmp_path: Path) -> None:
    # An AFF4 volume is a ZIP container: it was refused as "a ZIP archive (or AFF4 image)" with
    # the advice to extract the image from it, which an AFF4 image does not allow.
    import zipfile

    image = tmp_path / "laptop.aff4"
    with zipfile.ZipFile(image, "w") as container:
        container.writestr("information.turtle", "@prefix aff4: <http://aff4.org/Schema#> .")
        container.writestr("aff4%3A%2F%2Fvolume/data/00000000", bytes(4096))
    with pytest.raises(UnsupportedFormatError, match=r"laptop\.aff4: an AFF4 image.*aff4imager --export"):
        scan_image(image, ScanOptions(), tmp_path / "x.jsonl")
    archive = tmp_path / "exhibit.zip"
    with zipfile.ZipFile(archive, "w") as container:
        container.writestr("laptop.dd", bytes(4096))
    with pytest.raises(UnsupportedFormatError, match=r"exhibit\.zip: a ZIP archive.*extract the image"):
        scan_image(archive, ScanOptions(), tmp_path / "x.jsonl")


@pytest.mark.parametrize("image", ["ext4", "e01"])
def test_an_image_whose_name_is_not_utf8_is_refused_clearly(
    image: str, images: dict[str, Path], tmp_path: Path
) -> None:
    # A name in another encoding (copied from an old Windows disk) ended in a traceback from
    # libewf, or in a failed walk for a raw image. (Hash sets and rules: their own tests.)
    odd = tmp_path / os.fsdecode(b"exhibit-\xff" + images[image].suffix.encode())
    odd.symlink_to(images[image])
    out = tmp_path / "out"
    with pytest.raises(InvalidInputError, match=r"exhibit-\\xff\.\w+: the path is not UTF-8 text"):
        scan_image(odd, ScanOptions(), out / "files.jsonl", dfxml=out / "dfxml.xml")
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize(
    ("where", "signature", "kind"),
    [
        (0x10040, b"_BHRfS_M", "a Btrfs file system"),
        (0x400, b"\x10\x20\xf5\xf2", "an F2FS file system"),
        (0, b"XFSB", "an XFS file system"),
        (0x218, b"LVM2 001", "an LVM2 physical volume"),
        (0x1000, b"\xfc\x4e\x2b\xa9", "a member of a Linux software RAID (md) array"),
        ((4 << 20) - 0x10000, b"\xfc\x4e\x2b\xa9", "a member of a Linux software RAID (md) array"),
        (0x8801, b"NSR03", "a UDF file system"),
        (0x20, b"NXSB", "an APFS container"),
        (3, b"ReFS\x00", "a ReFS file system"),
    ],
)
def test_a_volume_of_a_kind_the_sleuth_kit_does_not_read_is_named_not_called_damaged(
    where: int, signature: bytes, kind: str, tmp_path: Path
) -> None:
    # A healthy Btrfs NAS disk, an Android F2FS partition or a Blu-ray's UDF was reported as a
    # file system "not recognised or damaged". (Signatures as mkfs.btrfs, mkfs.f2fs, mkfs.xfs,
    # pvcreate and mkudffs write them, checked against real ones; md at metadata 1.2 and 0.90.)
    data = bytearray(4 << 20)
    data[where : where + len(signature)] = signature
    image = tmp_path / "volume.dd"
    image.write_bytes(bytes(data))
    with pytest.raises(UnsupportedFormatError, match=re.escape(f"not supported: {kind}")):
        scan_image(image, ScanOptions(), tmp_path / "x.jsonl")


def test_a_raw_image_is_read_whatever_its_name(images: dict[str, Path], tmp_path: Path) -> None:
    renamed = tmp_path / "disk.vmdk"
    renamed.symlink_to(images["ext4"])
    assert scan_image(renamed, ScanOptions(), tmp_path / "x.jsonl").summary["files"] > 0


def test_an_e01_without_its_further_segments_says_so(tmp_path: Path) -> None:
    # Only the .E01 copied: libewf read it as the whole image and reported "no data" at its
    # end, as if the evidence were damaged. Only the .E02: libewf's glob raised MemoryError.
    shutil.copy(TESTDATA / "ext2.split.E01", tmp_path / "laptop.E01")
    with pytest.raises(
        InvalidInputError, match=r"laptop\.E01: the image goes on in a segment after laptop\.E01"
    ):
        scan_image(tmp_path / "laptop.E01", ScanOptions(), tmp_path / "x.jsonl")
    later = tmp_path / "later"
    later.mkdir()
    shutil.copy(TESTDATA / "ext2.split.E02", later / "laptop.E02")
    with pytest.raises(InvalidInputError, match=r"laptop\.E02: open an EWF image at its first segment"):
        scan_image(later / "laptop.E02", ScanOptions(), tmp_path / "x.jsonl")
    shutil.copy(TESTDATA / "ext2.split.E02", tmp_path / "laptop.E02")  # whole again: read
    assert scan_image(tmp_path / "laptop.E01", ScanOptions(), tmp_path / "x.jsonl").summary["files"] > 0


def test_an_e01_renamed_is_read_when_whole_and_refused_clearly_when_not(tmp_path: Path) -> None:
    # An E01 saved as ".E01.bak" or ".img" (the evidence store is read-only, so renaming it
    # back means copying it) ended in libewf's words: "invalid filename - unsupported
    # extension", though libewf reads one whole segment under any name.
    _, expected = _scan(TESTDATA / "ext2.E01", tmp_path)
    for name in ("laptop.E01.bak", "laptop.img"):
        shutil.copy(TESTDATA / "ext2.E01", tmp_path / name)
        summary, records = _scan(tmp_path / name, tmp_path)
        assert summary["image"]["integrity"] == "verified" and records == expected
    # In segments, the others cannot be found by its name: refused, saying what to do.
    shutil.copy(TESTDATA / "ext2.split.E01", tmp_path / "split.E01.bak")
    with pytest.raises(
        InvalidInputError, match=r"split\.E01\.bak: the first segment of an EWF image whose name"
    ):
        scan_image(tmp_path / "split.E01.bak", ScanOptions(), tmp_path / "x.jsonl")
    shutil.copy(TESTDATA / "ext2.split.E02", tmp_path / "split.E02.bak")
    with pytest.raises(InvalidInputError, match=r"split\.E02\.bak: segment 2 of an EWF image, not its first"):
        scan_image(tmp_path / "split.E02.bak", ScanOptions(), tmp_path / "x.jsonl")


def test_a_later_segment_of_a_split_raw_image_is_refused_naming_the_first(tmp_path: Path) -> None:
    # It was read on its own, from the middle of the disk: "not recognised or damaged".
    for n in ("000", "001"):
        shutil.copy(TESTDATA / f"ext2.splitraw.{n}", tmp_path / f"disk.{n}")
    data = (tmp_path / "disk.000").read_bytes() + (tmp_path / "disk.001").read_bytes()
    (tmp_path / "disk.aa").write_bytes(data[: len(data) // 2])
    (tmp_path / "disk.ab").write_bytes(data[len(data) // 2 :])
    for later, first in (("disk.001", "disk.000"), ("disk.ab", "disk.aa")):
        with pytest.raises(
            InvalidInputError, match=rf"{later}: a later segment of the split image that starts at {first}"
        ):
            scan_image(tmp_path / later, ScanOptions(), tmp_path / "x.jsonl")
        assert scan_image(tmp_path / first, ScanOptions(), tmp_path / "x.jsonl").summary["files"] > 0


def _walk_to_a_full_disk(detected: Any, include_deleted: bool, spool: str, counter: Any) -> Any:
    """The walk, its spool on a disk with no room left (run in the walk's child process)."""
    return phases.walk_to_spool(detected, include_deleted, "/dev/full", counter)


def test_results_that_cannot_be_written_are_said_so_and_nothing_half_written_is_left(
    images: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The walk's spool on a full disk: its last line was cut, read as JSON, and the scan ended
    # in a traceback (or, once the line was dropped, "the file-system walk failed": exit
    # status 3, an unreadable image); a partial listing and the DFXML's fragments were left.
    monkeypatch.setattr(engine.phases, "walk_to_spool", _walk_to_a_full_disk)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="No space left on device") as raised:
        scan_image(images["ext4"], ScanOptions(), out / "files.jsonl", dfxml=out / "dfxml.xml")
    assert not isinstance(raised.value, CorruptImageError) and raised.value.filename == "/dev/full"
    assert list(out.iterdir()) == []  # no listing, no DFXML, no fragments


def test_what_a_scan_killed_outright_left_is_swept_by_the_next_a_day_on(
    images: dict[str, Path], tmp_path: Path
) -> None:
    # SIGKILL leaves the walk's spool and the DFXML's fragments in hidden folders for good.
    out = tmp_path / "out"
    old, fresh = out / ".files.jsonl-walk-abc", out / ".dfxml.xml-parts-abc"
    for folder in (old, fresh, out / ".dfxml.xml-parts-def"):
        folder.mkdir(parents=True)
        (folder / "part").write_text("x")
    day_ago = time.time() - 2 * 86400
    for folder in (old, out / ".dfxml.xml-parts-def"):
        os.utime(folder, (day_ago, day_ago))
    scan_image(images["ext4"], ScanOptions(), out / "files.jsonl", dfxml=out / "dfxml.xml")
    assert sorted(p.name for p in out.iterdir()) == [".dfxml.xml-parts-abc", "dfxml.xml", "files.jsonl"]


def test_truncated_e01_is_a_clear_error(images: dict[str, Path], tmp_path: Path) -> None:
    truncated = tmp_path / "cut.E01"
    truncated.write_bytes(images["e01"].read_bytes()[:3_000_000])
    with pytest.raises(CorruptImageError, match="truncated or damaged"):
        scan_image(truncated, ScanOptions(), tmp_path / "x.jsonl")


def test_e01_altered_after_acquisition_fails_integrity_before_analysis(
    images: dict[str, Path], tmp_path: Path
) -> None:
    altered = tmp_path / "altered.E01"
    data = bytearray(images["e01"].read_bytes())
    data[5_000_000:5_000_016] = bytes(b ^ 0xFF for b in data[5_000_000:5_000_016])
    altered.write_bytes(bytes(data))
    listing = tmp_path / "never.jsonl"
    with pytest.raises(IntegrityError, match="md5 expected"):
        scan_image(altered, ScanOptions(), listing)
    assert not listing.exists()


def test_raw_image_altered_after_acquisition_fails_with_expect_hash(
    images: dict[str, Path], tmp_path: Path
) -> None:
    original = images["ext4"].read_bytes()
    md5 = hashlib.md5(original).hexdigest()  # noqa: S324
    copy = tmp_path / "copy.img"
    copy.write_bytes(original)
    summary, _ = _scan(copy, tmp_path, expect_hashes={"md5": md5})
    assert summary["image"]["integrity"] == "verified"
    changed = bytearray(original)
    changed[-100] ^= 1  # a byte no file uses: only the hash can tell
    copy.write_bytes(bytes(changed))
    with pytest.raises(IntegrityError):
        scan_image(copy, ScanOptions(expect_hashes={"md5": md5}), tmp_path / "y.jsonl")


def test_a_rule_that_times_out_is_reported_incomplete(images: dict[str, Path], tmp_path: Path) -> None:
    rules = tmp_path / "slow.yar"
    rules.write_text(
        "rule slow { condition: for any i in (0..filesize) : "
        "( for any j in (0..filesize) : ( uint8(i) == uint8(j) + 7 and i > j + 1000000000 ) ) }\n"
    )
    _, records = _scan(images["ext4"], tmp_path, rules=compile_rules([rules]), yara_timeout=1)
    big = next(r for r in records if r["path"] == "/video.bin")
    assert big["yara"]["complete"] is False and "timed out" in big["yara"]["reason"]
    assert big["yara"]["matches"] == []


def test_files_over_the_yara_cap_are_incomplete_not_clean(
    images: dict[str, Path], rules_dir: Path, tmp_path: Path
) -> None:
    summary, records = _scan(images["ext4"], tmp_path, rules=compile_rules([rules_dir]), yara_max_size=2000)
    notes = next(r for r in records if r["path"] == "/notes.txt")
    assert notes["yara"]["complete"] is False and "size cap" in notes["yara"]["reason"]
    assert summary["yara_incomplete"] >= 1


def test_dfxml_output_reads_back_as_fiwalk_does(images: dict[str, Path], tmp_path: Path) -> None:
    # Written as the scan goes (two partitions: two volumes), and again from the listing.
    listing, during, after = tmp_path / "files.jsonl", tmp_path / "during.xml", tmp_path / "after.xml"
    result = scan_image(images["gpt"], ScanOptions(), listing, dfxml=during)
    write_dfxml(listing, result.summary, after)
    ours = parse_dfxml(during.read_text())
    assert ours == parse_dfxml(after.read_text())
    assert len({offset for offset, _ in ours}) == 2
    theirs = fiwalk(images["gpt"])
    for key, want in theirs.items():
        if "md5" in want:
            assert ours[key]["md5"] == want["md5"] and ours[key]["sha1"] == want["sha1"], key


def test_evidence_is_never_modified(
    images: dict[str, Path], hashset_dir: Path, rules_dir: Path, tmp_path: Path
) -> None:
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in images.values()}
    for image in images.values():
        scan_image(image, ScanOptions(rules=compile_rules([rules_dir])), tmp_path / "z.jsonl")
    assert before == {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in images.values()}


def test_a_failed_scan_without_an_output_folder_leaves_no_folder_behind(
    images: dict[str, Path], tmp_path: Path
) -> None:
    # Without --out the listing goes to a folder of its own in the temporary folder; a scan
    # that failed left that folder behind, empty (or, before, with a partial listing).
    triage = str(Path(sys.executable).with_name("triage"))
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = {**os.environ, "TMPDIR": str(temporary)}
    failed = subprocess.run(
        [triage, "scan", str(TESTDATA / "bogus.001")], capture_output=True, text=True, env=env
    )
    assert failed.returncode == 3 and list(temporary.glob("triage-scan-*")) == []
    done = subprocess.run([triage, "scan", str(images["ext4"])], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    (kept,) = temporary.glob("triage-scan-*/files.jsonl")  # what it reports is kept
    assert f"file listing in {kept}" in done.stdout


def test_cli_exit_codes_and_outputs(
    images: dict[str, Path], hashset_dir: Path, rules_dir: Path, tmp_path: Path
) -> None:
    triage = str(Path(__import__("sys").executable).with_name("triage"))
    env = {**__import__("os").environ, "TRIAGE_HASHSET_CACHE": str(tmp_path / "cache")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([triage, "scan", *args], capture_output=True, text=True, env=env)

    out = tmp_path / "out"
    ok = run(
        str(images["ntfs"]),
        "--hashset",
        str(hashset_dir / "vics20.json"),
        "--rules",
        str(rules_dir),
        "--out",
        str(out),
    )
    assert ok.returncode == 0, ok.stderr
    assert {p.name for p in out.iterdir()} == {"files.jsonl", "summary.json", "dfxml.xml"}
    assert "1 alert(s)" in ok.stdout

    bogus = run(str(TESTDATA / "bogus.001"))
    assert bogus.returncode == 3 and bogus.stderr.count("\n") == 1 and "bogus.001" in bogus.stderr
    integrity = run(str(images["ext4"]), "--expect-hash", "md5:" + "0" * 32)
    assert integrity.returncode == 4 and "integrity" in integrity.stderr
    # Two different acquisition hashes of one kind: the last was taken, so a wrong one followed
    # by the right one was "verified". The same one twice (any case) is one.
    right = hashlib.md5(images["ext4"].read_bytes()).hexdigest()  # noqa: S324 - forensic hash
    two = run(str(images["ext4"]), "--expect-hash", "md5:" + "0" * 32, "--expect-hash", right)
    assert two.returncode == 2 and "two different MD5 acquisition hashes given" in two.stderr, two.stderr
    repeated = run(
        str(images["ext4"]),
        "--expect-hash",
        right,
        "--expect-hash",
        "md5:" + right.upper(),
        "--dfxml",
        os.devnull,
    )
    assert repeated.returncode == 0 and "integrity: verified" in repeated.stdout, repeated.stderr
    bad_set = tmp_path / "bad.txt"
    bad_set.write_text("d41d8cd98f00b204e9800998ecf8427e\nnot-a-hash\n")
    hs = run(str(images["ext4"]), "--hashset", str(bad_set))
    assert hs.returncode == 5 and "bad.txt:2" in hs.stderr
    # SQLite's words for a damaged schema hold the file's own bytes: an escape character went
    # to the terminal as itself.
    damaged = tmp_path / "damaged.db"
    with sqlite3.connect(damaged) as conn:
        conn.execute("CREATE TABLE FILE (sha256 TEXT, sha1 TEXT, md5 TEXT)")
    conn.close()
    damaged.write_bytes(damaged.read_bytes().replace(b"CREATE TABLE FILE (", b"CREATE TABLE FILE \x1b"))
    hs = run(str(images["ext4"]), "--hashset", str(damaged))
    assert hs.returncode == 5 and hs.stderr.endswith('unrecognized token: "\\x1B"\n'), hs.stderr
    bad_rules = tmp_path / "bad.yar"
    bad_rules.write_text("rule broken { condition: nonsense_identifier }")
    rl = run(str(images["ext4"]), "--rules", str(bad_rules))
    assert rl.returncode == 6 and "compile" in rl.stderr
    # Paths the system cannot look up, or that are no file: the same statuses, one line each.
    too_long = str(tmp_path / ("a" * 300))
    for args, code in [
        ((too_long,), 3),
        ((str(tmp_path),), 3),
        ((str(images["ext4"]), "--hashset", too_long), 5),
        ((str(images["ext4"]), "--rules", too_long), 6),
        ((str(images["ext4"]), "--out", str(bad_set / "out")), 1),
        ((str(images["ext4"]), "--dfxml", str(bad_set / "x.xml")), 1),
        # An index folder that cannot be made or written: a traceback (--hashset: below).
        (
            (
                str(images["ext4"]),
                "--known-good",
                str(hashset_dir / "vics20.json"),
                "--hashset-cache",
                str(bad_set),
            ),
            1,
        ),
    ]:
        failed = run(*args)
        assert failed.returncode == code, (args[-1][-20:], failed.stderr)
        assert failed.stderr.count("\n") == 1 and "Traceback" not in failed.stderr, failed.stderr
    # A file where a folder is wanted: said so, not the system's "File exists".
    for option in ("--out", "--hashset-cache"):
        failed = run(str(images["ext4"]), "--hashset", str(hashset_dir / "vics20.json"), option, str(bad_set))
        assert failed.returncode == 1 and failed.stderr.endswith(": not a folder\n"), failed.stderr
    # A newline in a name cut the one-line message there, naming another path.
    broken = run(str(tmp_path / "line\nbreak.img"))
    assert broken.returncode == 3 and broken.stderr.endswith("line\\x0Abreak.img: no such file\n"), (
        broken.stderr
    )
    dfxml_only = tmp_path / "only.xml"
    assert run(str(images["ext4"]), "--dfxml", str(dfxml_only)).returncode == 0
    assert parse_dfxml(dfxml_only.read_text())
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # nor its fragments
    both, also = tmp_path / "both", tmp_path / "also.xml"
    assert run(str(images["ext4"]), "--out", str(both), "--dfxml", str(also)).returncode == 0
    assert also.read_bytes() == (both / "dfxml.xml").read_bytes()
    assert parse_dfxml(also.read_text()) == parse_dfxml(dfxml_only.read_text())
    # Results already there (an earlier scan's, perhaps of another image) are not replaced in
    # silence: refused before any work, unless --overwrite.
    earlier = {p.name: p.read_bytes() for p in out.iterdir()}
    for args in (("--out", str(out)), ("--dfxml", str(also))):
        again = run(str(images["ext4"]), *args)
        assert again.returncode == 1 and "holds an earlier scan's results" in again.stderr, again.stderr
        assert again.stderr.count("\n") == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == earlier
    assert run(str(images["ext4"]), "--out", str(out), "--overwrite").returncode == 0
    # A scan that failed once it had begun writing (here: no file system in the image), or was
    # interrupted, took the earlier listing and DFXML with it, under --overwrite, and left
    # their summary.json describing files no longer there.
    blank = tmp_path / "blank.img"
    blank.write_bytes(bytes(1 << 20))
    earlier = {p.name: p.read_bytes() for p in out.iterdir()}
    earlier_document = also.read_bytes()
    failed = run(str(blank), "--out", str(out), "--dfxml", str(also), "--overwrite")
    assert failed.returncode == 3 and "no readable partition" in failed.stderr, failed.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == earlier
    assert also.read_bytes() == earlier_document
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert run(str(images["ext4"]), "--dfxml", os.devnull).returncode == 0  # no results there
    assert json.loads((out / "summary.json").read_text())["image"]["path"].endswith(images["ext4"].name)


def test_results_are_never_written_over_the_image_or_another_input(tmp_path: Path) -> None:
    # `--dfxml IMAGE --overwrite` replaced a raw image with its own DFXML, and a result named
    # after a later segment of an E01 replaced that segment after the image had verified.
    triage = str(Path(sys.executable).with_name("triage"))
    env = {**os.environ, "TRIAGE_HASHSET_CACHE": str(tmp_path / "cache")}
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    for name in ("iso9660.raw", "ext2.split.E01", "ext2.split.E02"):
        shutil.copyfile(TESTDATA / name, evidence / name)
    raw, e01, e02 = (evidence / n for n in ("iso9660.raw", "ext2.split.E01", "ext2.split.E02"))
    rule = tmp_path / "rules" / "any.yar"
    rule.parent.mkdir()
    rule.write_text("rule any_file { condition: true }\n")
    hashes = tmp_path / "bad.txt"
    hashes.write_text("d41d8cd98f00b204e9800998ecf8427e\n")
    (tmp_path / "linked").symlink_to(e02)
    os.link(raw, tmp_path / "hard")
    (tmp_path / "out").mkdir()
    os.link(raw, tmp_path / "out" / "summary.json")
    before = {p: p.read_bytes() for p in (raw, e01, e02, rule, hashes)}
    for image, args, said in [
        (raw, ["--dfxml", str(raw)], "the image this scan reads"),
        (e01, ["--dfxml", str(e02)], "a segment of the image this scan reads"),
        (e01, ["--dfxml", str(tmp_path / "linked")], "a segment of the image this scan reads"),
        (raw, ["--dfxml", str(tmp_path / "hard")], "the image this scan reads"),
        (raw, ["--out", str(tmp_path / "out")], "the image this scan reads"),
        (raw, ["--rules", str(rule.parent), "--dfxml", str(rule)], "a rule file this scan reads"),
        (raw, ["--hashset", str(hashes), "--dfxml", str(hashes)], "a hash set this scan reads"),
        (raw, ["--known-good", str(hashes), "--dfxml", str(hashes)], "a hash set this scan reads"),
    ]:
        for extra in ([], ["--overwrite"]):
            failed = subprocess.run(
                [triage, "scan", str(image), *args, *extra], capture_output=True, text=True, env=env
            )
            assert failed.returncode == 1 and f": is {said};" in failed.stderr, (args, failed.stderr)
            assert failed.stderr.count("\n") == 1, failed.stderr
    assert {p: p.read_bytes() for p in before} == before
    assert not list(tmp_path.rglob(".*.partial")) and not list(tmp_path.rglob("*-parts-*"))
    document = tmp_path / "d.xml"
    done = subprocess.run(
        [triage, "scan", str(e01), "--dfxml", str(document)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0 and parse_dfxml(document.read_text()), done.stderr


def test_a_hash_set_given_twice_is_loaded_once(tmp_path: Path) -> None:
    # `--hashset bad.txt --hashset ./bad.txt` gave every file the set knows two hits, and the
    # summary counted two hits for one file.
    triage = str(Path(sys.executable).with_name("triage"))
    env = {**os.environ, "TRIAGE_HASHSET_CACHE": str(tmp_path / "cache")}
    image = str(TESTDATA / "iso9660.raw")
    first = subprocess.run(
        [triage, "scan", image, "--out", str(tmp_path / "a")], capture_output=True, env=env
    )
    assert first.returncode == 0, first.stderr
    known = [r for r in read_jsonl(tmp_path / "a" / "files.jsonl") if r["size"]][0]
    bad = tmp_path / "bad.txt"
    bad.write_text(known["md5"] + "\n")
    (tmp_path / "link.txt").symlink_to(bad)
    sets = [
        "--hashset",
        str(bad),
        "--hashset",
        str(tmp_path / "." / "bad.txt"),
        "--hashset",
        str(tmp_path / "link.txt"),
    ]
    again = subprocess.run(
        [triage, "scan", image, *sets, "--known-good", str(bad), "--out", str(tmp_path / "b")],
        capture_output=True,
        env=env,
    )
    assert again.returncode == 0, again.stderr
    record = next(r for r in read_jsonl(tmp_path / "b" / "files.jsonl") if r["path"] == known["path"])
    assert [(h["set"], h["kind"]) for h in record["hashset_hits"]] == [
        ("bad.txt", "known_bad"),
        ("bad.txt", "known_good"),
    ]
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["hashset_hits"] == {"bad.txt": {"(none)": 2}}  # once as known-bad, once as known-good
    assert len(summary["provenance"]["options"]["hashsets"]) == 2


def test_dfxml_named_as_another_result_of_out_is_refused(tmp_path: Path) -> None:
    # `--out o --dfxml o/files.jsonl`: the DFXML was copied over the listing once the scan had
    # put it in place, exit 0, and the listing was lost.
    triage = str(Path(sys.executable).with_name("triage"))
    image = str(TESTDATA / "iso9660.raw")
    out = tmp_path / "out"
    for name in ("files.jsonl", "summary.json"):
        refused = subprocess.run(
            [triage, "scan", image, "--out", str(out), "--dfxml", str(out / name)],
            capture_output=True,
            text=True,
        )
        assert refused.returncode == 1 and f"is where --out writes {name};" in refused.stderr, refused.stderr
        assert not out.exists()
    same = subprocess.run(
        [triage, "scan", image, "--out", str(out), "--dfxml", str(out / "dfxml.xml")],
        capture_output=True,
        text=True,
    )
    assert same.returncode == 0, same.stderr
    assert (out / "files.jsonl").read_text().startswith("{") and parse_dfxml((out / "dfxml.xml").read_text())


def test_dfxml_to_standard_output_whatever_it_is_sent_to(tmp_path: Path) -> None:
    # Standard output sent to a file: `--dfxml /dev/stdout` was refused as "holds an earlier
    # scan's results", and with --overwrite the link (/dev/stdout itself, run as root) was
    # replaced by a file of the DFXML. To a pipe with --out: refused as "a named pipe". And the
    # summary line followed the document's closing tag. `-` made a file named "-".
    triage = str(Path(sys.executable).with_name("triage"))
    image = str(TESTDATA / "ext2.E01")
    expected = parse_dfxml(_scan_to(triage, image, tmp_path / "alone.xml"))
    link = tmp_path / "stdout-link"  # stands in for /dev/stdout: a link to the descriptor
    link.symlink_to("/proc/self/fd/1")
    for target, extra in [("/dev/stdout", []), (str(link), ["--overwrite"]), ("-", ["--overwrite"])]:
        sent = tmp_path / "sent.xml"
        sent.write_text("kept\n")
        with sent.open("a") as stdout:  # appended to: what it held stays
            done = subprocess.run(
                [triage, "scan", image, "--dfxml", target, *extra],
                stdout=stdout,
                stderr=subprocess.PIPE,
                text=True,
            )
        assert done.returncode == 0, done.stderr
        assert " files, " in done.stderr  # what is said for people: on standard error
        kept, document = sent.read_text().split("\n", 1)
        assert kept == "kept" and parse_dfxml(document) == expected, target
        assert link.is_symlink() and not (tmp_path / "-").exists()
    piped = subprocess.run(
        [triage, "scan", image, "--out", str(tmp_path / "out"), "--dfxml", "-"],
        capture_output=True,
        text=True,
    )
    assert piped.returncode == 0, piped.stderr
    assert parse_dfxml(piped.stdout) == expected and "results in" in piped.stderr
    assert (tmp_path / "out" / "dfxml.xml").read_text() == piped.stdout


def _scan_to(triage: str, image: str, document: Path) -> str:
    done = subprocess.run([triage, "scan", image, "--dfxml", str(document)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return document.read_text()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_scan_stopped_by_a_signal_removes_its_partial_results_and_processes(
    stop: signal.Signals, tmp_path: Path
) -> None:
    # SIGTERM (`timeout`, a service manager) and SIGHUP (the terminal closed) ended the scan
    # where it stood: its staged listing, the walk's spool and the DFXML's fragments stayed in
    # the results' folder.
    image = build.ext4(
        tmp_path / "slow.img", [Planted(f"f{n}.bin", random_bytes(n, 64 * 1024)) for n in range(24)]
    )
    rule = tmp_path / "slow.yar"
    rule.write_text(SLOW_RULE)
    out = tmp_path / "out"
    out.mkdir()
    earlier = {
        name: f"an earlier scan's {name}\n".encode() for name in ("files.jsonl", "summary.json", "dfxml.xml")
    }
    for name, data in earlier.items():
        (out / name).write_bytes(data)
    triage = str(Path(sys.executable).with_name("triage"))
    scan = subprocess.Popen(
        [
            triage,
            "scan",
            str(image),
            "--rules",
            str(rule),
            "--out",
            str(out),
            "--overwrite",
            "--processes",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, to find what it leaves running
    )
    try:
        staged = out / ".files.jsonl.partial"
        deadline = time.monotonic() + 60
        while not staged.exists():
            assert scan.poll() is None and time.monotonic() < deadline, (
                scan.stderr.read() if scan.stderr else ""
            )
            time.sleep(0.02)
        time.sleep(0.3)  # the workers are on their first batch
        scan.send_signal(stop)  # to the command alone, not its process group
        _, stderr = scan.communicate(timeout=60)
    finally:
        if scan.poll() is None:
            os.killpg(scan.pid, signal.SIGKILL)
    assert scan.returncode == 128 + stop, stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == earlier  # nothing partial left
    group_ends(scan.pid, "the scan")  # the fork server and the analysis processes end with it


NAMES = [
    b"caf\xe9.txt",  # Windows-1252, not UTF-8
    b"caf\xe8.txt",  # another name that 'replace' decoding made the same
    b"ctrl\x01\x1b.txt",  # control characters: XML 1.0 cannot hold them
    b"nl\nname.txt",
    b"back\\slash.txt",
    b"\xef\xbf\xbe.txt",  # U+FFFE: valid UTF-8, no XML character
    b"sur\xed\xa0\x80.txt",  # an encoded surrogate: not UTF-8
    "фото😀.jpg".encode(),  # plain UTF-8: kept as it is
]


def test_names_that_are_not_text_are_kept_apart_and_written_as_fiwalk_writes_them(
    images: dict[str, Path], tmp_path: Path
) -> None:
    # A hostile or foreign file system: names were decoded with replacement characters (two
    # names became one) and control characters made the DFXML unreadable as a whole.
    src = tmp_path / "names"
    src.mkdir()
    for n, raw in enumerate(NAMES):
        with open(os.fsencode(src) + b"/" + raw, "wb") as fh:  # noqa: PTH123 - a name of bytes
            fh.write(b"file %d" % n)
    image = tmp_path / "names.img"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(src), str(image), "8M"], check=True)
    document = tmp_path / "names.xml"
    listing = tmp_path / "names.jsonl"
    scan_image(image, ScanOptions(), listing, dfxml=document)
    ours = parse_dfxml(document.read_bytes())  # well-formed, whatever the names
    theirs = fiwalk(image)
    assert ours.keys() == theirs.keys()
    assert all(ours[key]["md5"] == theirs[key]["md5"] for key in theirs)
    paths = sorted(r["path"] for r in read_jsonl(listing) if r["path"] != "/$OrphanFiles")
    assert len(set(paths)) == len(NAMES)
    assert sorted(path for _, path in ours) == paths  # the listing names files as the DFXML does
    assert "/caf\\xE9.txt" in paths and "/ctrl\\x01\\x1B.txt" in paths and "/фото😀.jpg" in paths


@pytest.mark.parametrize("names", [("x.001", "x.002", "x.003", "x.004"), ("x.aa", "x.ab", "x.ac", "x.ad")])
def test_a_split_image_with_a_segment_missing_in_the_middle_is_refused(
    names: tuple[str, ...], images: dict[str, Path], tmp_path: Path
) -> None:
    # It was read as if it ended before the gap: files past it were missing, with no word.
    data = images["ext4"].read_bytes()
    size = -(-len(data) // len(names))
    for n, name in enumerate(names):
        (tmp_path / name).write_bytes(data[n * size : (n + 1) * size])
    whole, _ = _scan(tmp_path / names[0], tmp_path)
    assert len(whole["image"]["segments"]) == len(names)
    (tmp_path / names[2]).unlink()
    with pytest.raises(InvalidInputError, match=rf"segment {re.escape(names[2])} is missing \({names[3]}"):
        _scan(tmp_path / names[0], tmp_path)


def test_a_file_system_running_past_the_end_of_the_image_is_reported(
    images: dict[str, Path], tmp_path: Path
) -> None:
    # An acquisition cut short, with no acquisition hash to tell: the scan said "0 error(s)".
    data = images["ext4"].read_bytes()
    cut = tmp_path / "cut.raw"
    cut.write_bytes(data[: len(data) * 3 // 4])
    summary, _ = _scan(cut, tmp_path)
    (problem,) = summary["walk_problems"]
    assert (
        problem["partition"] == 1
        and f"{len(data) - len(data) * 3 // 4:,} bytes past the end" in problem["reason"]
    )
    whole, _ = _scan(images["ext4"], tmp_path)
    assert whole["walk_problems"] == []
    triage = str(Path(__import__("sys").executable).with_name("triage"))
    shown = subprocess.run(
        [triage, "scan", str(cut), "--out", str(tmp_path / "out")], capture_output=True, text=True
    )
    assert shown.returncode == 0 and "walk problem: partition 1 /: the file system runs" in shown.stdout


def test_a_batch_is_given_time_for_the_bytes_it_will_read() -> None:
    # A fixed 900 s killed a large file half way (300 GB at the 390 MB/s of three hashes in
    # one process), twice, and listed it as an error.
    from triage.scan.engine import _deadline

    options = ScanOptions(batch_timeout=900, slowest_rate=16 * 2**20)
    row = [0, 1, "/vm.vmdk", 12, 300 * 2**30]  # as spooled: offset, partition, path, inode, size, ...
    assert _deadline([row], options, media_size=2**40) == 900 + 300 * 2**30 / (16 * 2**20)
    small = [[0, 1, f"/f{n}", n, 2**20] for n in range(64)]
    assert _deadline(small, options, media_size=2**40) == 900 + 4
    # A file that claims more than the whole image (sparse, or a hostile record) is not read.
    claim = [0, 1, "/huge", 13, 2**60]
    assert _deadline([claim], options, media_size=2**30) == 900


def test_batches_hold_files_of_one_size_class_each_and_every_file_once() -> None:
    # The MD5 lanes are fastest with many messages of like lengths: a batch of 511 small files
    # and one of 7 MiB left the lanes waiting on the long one.
    import random

    import orjson

    rng = random.Random(5)
    kinds = [lambda: rng.randrange(1, 2**16), lambda: rng.randrange(2**20, 2**23), lambda: 50 * 2**20]
    sizes = [rng.choice(kinds)() for _ in range(3000)]
    sizes += [2**60]  # claims more than the image: read for nothing, batched with the small ones
    rows = [[0, 1, f"/f{n}", n, size] for n, size in enumerate(sizes)]
    options = ScanOptions(batch_bytes=64 * 2**20, batch_files=512)
    seen = [0, 0]
    lines = (orjson.dumps(row) + b"\n" for row in rows)
    batches = list(engine._batches(lines, options, seen, media_size=2**40))

    assert sorted(row[3] for batch in batches for row in batch) == list(range(len(rows)))
    assert seen == [len(rows), sum(sizes[:-1])]
    for batch in batches:
        to_read = [engine.bytes_to_read(row[4], 2**40) for row in batch]
        classes = {sum(size > edge for edge in engine.SIZE_CLASSES) for size in to_read}
        assert len(classes) == 1, to_read
        assert len(batch) <= 512
        assert sum(to_read[:-1]) < 64 * 2**20  # full at 64 MiB: only its last file takes it over


def test_what_is_left_when_the_walk_ends_goes_largest_first() -> None:
    # Scheduling the longest work first evens out the end: the largest files left over
    # (two of 50 MiB: about 0.5 s of one core on the bench machine) go before the small
    # files' last batch, not after it while the other core waits.
    import orjson

    sizes = {"/small": 1000, "/big1": 50 * 2**20, "/medium": 2 * 2**20, "/big2": 50 * 2**20}
    rows = [[0, 1, path, n, size] for n, (path, size) in enumerate(sizes.items())]
    lines = (orjson.dumps(row) + b"\n" for row in rows)
    batches = list(engine._batches(lines, ScanOptions(processes=1), [0, 0], media_size=2**40))
    assert [[row[2] for row in batch] for batch in batches] == [["/big1", "/big2"], ["/medium"], ["/small"]]


def test_what_is_left_when_the_walk_ends_is_shared_out_among_the_processes() -> None:
    # An image of fewer files than a batch holds was analysed by one process, the other idle
    # (30 files slow to scan: 33 s on one core), and the last two 50 MiB files by one.
    import orjson

    sizes = [20 * 2**20, 30 * 2**20] + [1000 + n for n in range(30)] + [2**20] * 7
    rows = [[0, 1, f"/f{n}", n, size] for n, size in enumerate(sizes)]
    lines = (orjson.dumps(row) + b"\n" for row in rows)
    batches = list(engine._batches(lines, ScanOptions(processes=2), [0, 0], media_size=2**40))
    shapes = [sorted(row[4] for row in batch) for batch in batches]
    assert shapes[:2] == [[30 * 2**20], [20 * 2**20]]  # one each, largest first: no lanes there
    small = [shape for shape in shapes if shape[-1] < 256 * 1024]
    assert len(small) == 2 and sorted(len(s) for s in small) == [15, 15]  # lanes kept 8 at least
    assert [2**20] * 7 in shapes  # 7 files of the lanes' middle class: too few to split
    assert sorted(row[3] for batch in batches for row in batch) == list(range(len(rows)))


def test_a_file_claiming_more_than_the_whole_image_is_reported_not_read_for_hours(
    images: dict[str, Path], tmp_path: Path
) -> None:
    # One damaged inode on a 32 MiB image claimed 81 TB (found by flipping bytes in the test
    # images): its holes read as zeros, so it was hashed until its batch's time ran out (15
    # minutes), then again alone, and the progress's total counted its 81 TB.
    damaged = tmp_path / "huge-inode.img"
    shutil.copyfile(images["ext4"], damaged)
    claimed = 81_363_860_461_446
    subprocess.run(
        ["debugfs", "-w", "-R", f"sif /photos/IMG_0001.jpg size {claimed}", str(damaged)],
        check=True,
        capture_output=True,
    )
    totals: list[int] = []
    listing = tmp_path / "huge.jsonl"
    options = ScanOptions(batch_timeout=5)  # the code before this gave up on the file after 2 x 5 s
    result = scan_image(damaged, options, listing, lambda phase, done, total: totals.append(total))
    records = {r["path"]: r for r in _in_order(listing)}
    huge = records["/photos/IMG_0001.jpg"]
    assert huge["size"] == claimed and huge["md5"] is None
    assert huge["error"].startswith(
        f"not read: its size ({claimed:,} bytes) is more than the whole image holds"
    )
    _, whole = _scan(images["ext4"], tmp_path)
    others = [(r["path"], r["md5"]) for r in whole if r["path"] != "/photos/IMG_0001.jpg"]
    assert [(r["path"], r["md5"]) for r in records.values() if r["path"] != "/photos/IMG_0001.jpg"] == others
    assert result.summary["errors"] == 1 and max(totals) <= damaged.stat().st_size


def test_a_truncated_mbr_disk_still_gives_its_whole_partitions(
    images: dict[str, Path], tmp_path: Path
) -> None:
    # The Sleuth Kit refuses an MBR whose extended partition starts past the end of the image,
    # so a truncated acquisition of such a disk gave "no readable partition", though its first
    # partition was whole.
    whole, records = _scan(images["mbr"], tmp_path)
    data = images["mbr"].read_bytes()
    cut = tmp_path / "cut-mbr.img"
    cut.write_bytes(data[: len(data) * 6 // 10])
    summary, cut_records = _scan(cut, tmp_path)
    assert summary["volume_system"] == "mbr"
    listed = [(p["kind"], p["filesystem"], p["status"]) for p in summary["partitions"]]
    assert listed == [("data", "fat32", "ok"), ("meta", None, "unreadable")]
    assert "past the end of the image" in summary["partitions"][1]["reason"]
    first = {r["path"] for r in records if r["partition"] == 1}
    assert first and {r["path"] for r in cut_records} == first
    fat = next(p for p in whole["partitions"] if p["filesystem"] == "fat32")
    assert summary["partitions"][0]["offset"] == fat["offset"]


@pytest.mark.parametrize(
    ("where", "what"),
    [
        (0x200, "the primary header's signature"),  # The Sleuth Kit then read the protective MBR
        (0x248, "where the primary header says its entries are"),  # it read no partition
        (0x428, "the first partition's end in the primary entries"),  # it read a wrong partition
    ],
)
def test_a_gpt_disk_whose_primary_table_is_damaged_is_read_from_its_backup(
    images: dict[str, Path], tmp_path: Path, where: int, what: str
) -> None:
    # A bad sector at the start of the disk, or a wipe of its first sectors that spared the
    # protective MBR: The Sleuth Kit reads whatever the primary GPT says, checksum or not,
    # so the scan found no partition (or a wrong one) though the backup GPT was whole.
    whole, records = _scan(images["gpt"], tmp_path)
    assert whole["walk_problems"] == []
    damaged = tmp_path / "damaged-gpt.img"
    data = bytearray(images["gpt"].read_bytes())
    data[where] ^= 0x5A
    damaged.write_bytes(data)
    summary, found = _scan(damaged, tmp_path)
    assert summary["volume_system"] == "gpt"
    data_parts = [
        (p["offset"], p["length"], p["filesystem"]) for p in summary["partitions"] if p["kind"] == "data"
    ]
    assert data_parts == [
        (p["offset"], p["length"], p["filesystem"]) for p in whole["partitions"] if p["kind"] == "data"
    ]
    assert [(r["path"], r["md5"]) for r in found] == [(r["path"], r["md5"]) for r in records]
    (problem,) = summary["walk_problems"]
    assert "primary GPT is damaged" in problem["reason"] and "backup GPT" in problem["reason"], what


@pytest.mark.parametrize(
    ("damaged", "said"),
    [
        ({"boot sector": (0, 512)}, ["its boot sector is damaged"]),
        ({"MFT record 0": (0x4000, 1024)}, ["the first records of its master file table are damaged"]),
        (
            {"boot sector": (0, 512), "MFT record 0": (0x4000, 1024)},
            ["its boot sector is damaged", "the first records of its master file table are damaged"],
        ),
    ],
)
def test_an_ntfs_volume_whose_boot_sector_or_mft_is_damaged_is_read_with_their_copies(
    images: dict[str, Path], tmp_path: Path, damaged: dict[str, tuple[int, int]], said: list[str]
) -> None:
    # A wiped or unreadable first sector, or a bad sector in the master file table's first
    # record ($MFT itself): The Sleuth Kit reads neither NTFS's copy of its boot sector (in
    # its last sector) nor $MFTMirr, so the scan found no file system and read nothing.
    whole, records = _scan(images["ntfs"], tmp_path)
    data = bytearray(images["ntfs"].read_bytes())
    assert data[0x4000:0x4004] == b"FILE"  # where this image's MFT starts (cluster 4 of 4 KiB)
    for at, size in damaged.values():
        data[at : at + size] = bytes(size)
    image = tmp_path / "damaged-ntfs.img"
    image.write_bytes(data)
    summary, found = _scan(image, tmp_path)
    altered = {"/$Boot", "/$MFT"}  # read, and so hashed, with the copies in place
    assert [(r["path"], r["md5"], r["error"]) for r in found if r["path"] not in altered] == [
        (r["path"], r["md5"], None) for r in records if r["path"] not in altered
    ]
    (problem,) = summary["walk_problems"]
    assert problem["reason"].startswith("NTFS: ") and all(words in problem["reason"] for words in said)
    assert ("$Boot hashed with it" in problem["reason"]) == ("boot sector" in damaged)
    assert len(problem["reason"].split(";")) == len(said)
    assert whole["walk_problems"] == []


@pytest.mark.parametrize(
    ("damaged", "said"),
    [
        ([(1024, 1024)], "its superblock is damaged"),
        ([(2048, 1024)], "its group descriptors are damaged"),
        ([(1024, 2048)], "its superblock and group descriptors are damaged"),
    ],
)
def test_an_ext4_file_system_whose_superblock_or_descriptors_are_damaged_is_read_with_their_copies(
    images: dict[str, Path], tmp_path: Path, damaged: list[tuple[int, int]], said: str
) -> None:
    # A bad sector at the start of the partition: The Sleuth Kit reads neither the superblock's
    # nor the group descriptors' copies in block group 1 (what e2fsck -b reads), so the scan
    # found no file system, or one whose root directory it could not read (0 files, no error).
    whole, records = _scan(images["ext4"], tmp_path)
    data = bytearray(images["ext4"].read_bytes())
    assert data[1024 + 56 : 1024 + 58] == b"\x53\xef" and data[1024 + 24] == 0  # 1 KiB blocks
    for at, size in damaged:
        data[at : at + size] = bytes(size)
    image = tmp_path / "damaged-ext4.img"
    image.write_bytes(data)
    summary, found = _scan(image, tmp_path)
    assert [(r["path"], r["md5"], r["error"]) for r in found] == [
        (r["path"], r["md5"], None) for r in records
    ]
    (problem,) = summary["walk_problems"]
    assert (
        problem["reason"]
        == f"ext: {said}: read with {'the copy' if ' is ' in said else 'their copies'} in block group 1"
    )
    assert whole["walk_problems"] == []


def test_an_exfat_card_whose_boot_sector_is_damaged_is_read_with_its_copy(tmp_path: Path) -> None:
    # Memory and camera cards are exFAT; The Sleuth Kit does not read the copy of the boot
    # sector that starts its backup boot region (sector 12), so a damaged first sector left
    # the card unreadable.
    from tests.images import build

    card = build.exfat(tmp_path / "card.img")
    whole, records = _scan(card, tmp_path)
    data = bytearray(card.read_bytes())
    data[:512] = bytes(512)
    damaged = tmp_path / "damaged-card.img"
    damaged.write_bytes(data)
    summary, found = _scan(damaged, tmp_path)
    assert records and [(r["path"], r["md5"]) for r in found] == [(r["path"], r["md5"]) for r in records]
    (problem,) = summary["walk_problems"]
    assert problem["reason"] == "exFAT: its boot sector is damaged: read with the copy in sector 12"
    assert whole["walk_problems"] == [] and whole["partitions"][0]["filesystem"] == "exfat"


@pytest.mark.parametrize("name", ["ext4", "mbr", "ntfs", "gpt", "e01", "exfat"])
def test_images_with_bytes_flipped_give_results_or_one_clear_error(
    name: str, images: dict[str, Path], tmp_path: Path
) -> None:
    # What found this stop's faults (hours of hashing a damaged inode, volumes unreadable for
    # want of their copies), kept as a guard: damaged metadata ends in results, each file's
    # record with hashes or an error, or in an evidence error naming the image; never in any
    # other exception, nor past the time a batch is given.
    import random

    from tests.images import build

    source = build.exfat(tmp_path / "card.img") if name == "exfat" else images[name]
    original = source.read_bytes()
    used = [i for i in range(0, min(len(original), 2 << 20), 512) if any(original[i : i + 512])]
    options = ScanOptions(batch_timeout=20, walk_timeout=60, include_deleted=True)
    for seed in range(4):
        chance = random.Random(f"{name}-{seed}")
        data = bytearray(original)
        for _ in range(chance.choice([5, 50, 200])):
            data[chance.choice(used) + chance.randrange(512)] = chance.randrange(256)
        image = tmp_path / f"flipped-{seed}{source.suffix}"
        image.write_bytes(data)
        listing = tmp_path / f"flipped-{seed}.jsonl"
        try:
            result = scan_image(image, options, listing)
        except (CorruptImageError, UnsupportedFormatError, IntegrityError) as exc:
            assert image.name in str(exc) and "\n" not in str(exc).strip(), exc
            # A walk that crashed (its child's exception) is ours to mend, not the evidence's.
            assert "walk failed" not in str(exc) and "could not open the image" not in str(exc), exc
            continue
        records = list(read_jsonl(listing))
        assert len(records) == result.summary["files"]
        assert all(r["md5"] or r["error"] for r in records if r["size"])
        # An analysis process that crashed, or a message with pytsk3's source lines in it.
        said = [r["error"] for r in records if r["error"]] + [
            w["reason"] for w in result.summary["walk_problems"]
        ]
        assert not [words for words in said if words.startswith("analysis failed") or ".cpp:" in words], said


def test_a_fat_volume_whose_two_allocation_tables_differ_says_so(
    images: dict[str, Path], tmp_path: Path
) -> None:
    # The Sleuth Kit follows the first table: where a cluster chain is damaged there, a file can
    # read short or, through another file's clusters, wrongly, with nothing to tell the examiner
    # that the second table says otherwise.
    whole, _ = _scan(images["mbr"], tmp_path)
    fat32 = next(p for p in whole["partitions"] if p["filesystem"] == "fat32")
    assert whole["walk_problems"] == []
    data = bytearray(images["mbr"].read_bytes())
    boot = data[fat32["offset"] : fat32["offset"] + 512]
    first_table = fat32["offset"] + int.from_bytes(boot[14:16], "little") * 512
    data[first_table + 4 * 10 : first_table + 4 * 11] = (50).to_bytes(4, "little")  # cluster 10 -> 50
    damaged = tmp_path / "fat-tables.img"
    damaged.write_bytes(data)
    summary, _ = _scan(damaged, tmp_path)
    (problem,) = summary["walk_problems"]
    assert problem["partition"] == fat32["index"]
    assert problem["reason"].startswith("FAT: its two file allocation tables differ in 1 of ")


def test_fat_times_do_not_depend_on_the_time_zone_of_the_machine(
    images: dict[str, Path], tmp_path: Path
) -> None:
    # FAT keeps local time with no zone, and The Sleuth Kit converts it with the process's
    # zone: the same image gave times five hours apart on a machine set to New York.
    triage = str(Path(__import__("sys").executable).with_name("triage"))
    times = []
    for zone in ("UTC", "America/New_York"):
        out = tmp_path / zone.replace("/", "-")
        env = {**os.environ, "TZ": zone}
        done = subprocess.run(
            [triage, "scan", str(images["mbr"]), "--out", str(out)], env=env, capture_output=True
        )
        assert done.returncode == 0, done.stderr
        times.append({r["path"]: r["times"] for r in read_jsonl(out / "files.jsonl") if r["partition"] == 1})
    assert times[0] and times[0] == times[1]


def test_walk_problems_beyond_ten_thousand_are_counted_not_listed() -> None:
    # A damaged or hostile file system can have millions; the list is kept with the run.
    from triage.evidence.filesystems import WalkProblem
    from triage.scan.phases import MAX_PROBLEMS, _kept_problems

    many = [WalkProblem(1, f"/d{n}", "directory unreadable") for n in range(MAX_PROBLEMS + 5)]
    kept = _kept_problems(many)
    assert kept[:MAX_PROBLEMS] == many[:MAX_PROBLEMS] and len(kept) == MAX_PROBLEMS + 1
    assert kept[-1].reason == "5 more walk problems, not listed"
    assert _kept_problems(many[:3]) == many[:3]
