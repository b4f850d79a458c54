"""Image format detection: by content first, then by segment naming.

Formats: ``ewf`` (EnCase .E01 + .E02...), ``split_raw`` (.000/.001..., .001/.002...,
.aa/.ab...), ``raw`` (anything else; the volume/file-system layer decides whether it holds
anything readable).
"""

from __future__ import annotations

import glob
import os
import re
import string
import struct
import zipfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from triage.errors import InvalidInputError, UnsupportedFormatError
from triage.evidence.paths import NOT_UTF8, is_utf8, shown

EWF_SIGNATURE = b"EVF\x09\x0d\x0a\xff\x00"
EWF2_SIGNATURE = b"EVF2\x0d\x0a\x81\x00"
LEF_SIGNATURES = (b"LVF\x09\x0d\x0a\xff\x00", b"LEF2\x0d\x0a\x81\x00")
MAX_SEGMENTS = 10_000

_CONVERT = (
    "convert it to a raw image (qemu-img convert -O raw) or acquire it as E01 (ewfacquire), "
    "record the new image's hash, and register that"
)
_EXTRACT = "extract the image from it (and check it against its acquisition hash) first"
ZIP_SIGNATURE = b"PK\x03\x04"
AFF4_INFORMATION = "information.turtle"  # every AFF4 container's description of its volumes


def _is_aff4(path: Path) -> bool:
    """Whether the ZIP file ``path`` is an AFF4 image (an AFF4 volume is a ZIP container),
    which needs exporting, not extracting. Only its central directory is read."""
    try:
        with zipfile.ZipFile(path) as container:
            return AFF4_INFORMATION in container.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


# Containers that are not disk images this tool reads, by (offset, signature), with what to
# do. Read as raw, each was reported as a file system "not recognised or damaged", which reads
# as damaged evidence. (A fixed VHD is a raw disk with a footer, and is read as raw.)
CONTAINERS: tuple[tuple[int, bytes, str, str], ...] = (
    (0, b"KDMV", "VMware virtual disk (VMDK)", _CONVERT),
    (0, b"COWD", "VMware ESX virtual disk (VMDK)", _CONVERT),
    (
        0,
        b"# Disk DescriptorFile",
        "VMware disk descriptor (VMDK): its data is in the extent files it names",
        _CONVERT,
    ),
    (0, b"vhdxfile", "Hyper-V virtual disk (VHDX)", _CONVERT),
    (0, b"conectix", "dynamic Virtual PC / Hyper-V virtual disk (VHD)", _CONVERT),
    (0, b"QFI\xfb", "QEMU virtual disk (QCOW)", _CONVERT),
    (0x40, b"\x7f\x10\xda\xbe", "VirtualBox virtual disk (VDI)", _CONVERT),
    (0, b"AFF10\r\n\x00", "AFF image", _CONVERT),
    (0, b"ADSEGMENTEDFILE", "FTK logical image (AD1), which holds files, not a disk", _EXTRACT),
    (0, ZIP_SIGNATURE, "ZIP archive", _EXTRACT),
    (0, b"\x1f\x8b\x08", "gzip archive", _EXTRACT),
    (0, b"BZh", "bzip2 archive", _EXTRACT),
    (0, b"\xfd7zXZ\x00", "xz archive", _EXTRACT),
    (0, b"7z\xbc\xaf\x27\x1c", "7-Zip archive", _EXTRACT),
    (0, b"\x28\xb5\x2f\xfd", "Zstandard archive", _EXTRACT),
    (0, b"Rar!\x1a\x07", "RAR archive", _EXTRACT),
)


class ImageFormat(StrEnum):
    raw = "raw"
    split_raw = "split_raw"
    ewf = "ewf"


@dataclass(frozen=True)
class DetectedImage:
    format: ImageFormat
    segments: tuple[Path, ...]

    @property
    def first(self) -> Path:
        return self.segments[0]

    @property
    def size_bytes(self) -> int:
        """Bytes on disk over all segments (for raw this is also the media size)."""
        return sum(p.stat().st_size for p in self.segments)


def _read_head(path: Path, n: int = 16) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(n)
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot be read: {exc.strerror}") from exc


def _ewf_segments(first: Path) -> tuple[Path, ...]:
    import pyewf

    try:
        names = pyewf.glob(str(first))
    except MemoryError:  # libewf's answer when no first segment is beside a later one
        raise InvalidInputError(f"{first.name}: open an EWF image at its first segment (.E01)") from None
    except OSError as exc:
        if "unsupported extension" not in str(exc):
            raise InvalidInputError(f"{first}: cannot list EWF segments: {exc}") from exc
        # Renamed (".E01.bak", ".img"), which libewf's search for the segments refuses: a
        # whole image in one segment is read as it is (the evidence store is read-only, so
        # renaming it would mean copying it); one that goes on in further segments is not.
        number = _ewf_segment_number(first)
        if number not in (None, 1):
            raise InvalidInputError(
                f"{first.name}: segment {number} of an EWF image, not its first; open the first "
                "(copies under names ending .E01, .E02, ..., if renamed)"
            ) from None
        if _ewf_goes_on(first):
            raise InvalidInputError(
                f"{first.name}: the first segment of an EWF image whose name does not end in .E01, "
                "so its further segments cannot be found: copy the segments under names ending "
                ".E01, .E02, ..."
            ) from None
        return (first,)
    segments = tuple(Path(n) for n in names)
    if segments and _ewf_goes_on(segments[-1]):
        raise InvalidInputError(
            f"{first.name}: the image goes on in a segment after {segments[-1].name}, which is not "
            "beside it; copy every segment (.E01, .E02, ...) into one folder"
        )
    return segments


EWF_SECTION = struct.Struct("<16sQQ")  # a section descriptor's type, next offset and size
EWF_FILE_HEADER = 13  # signature, fields start, segment number, fields end


def _ewf_segment_number(segment: Path) -> int | None:
    """The segment number an EWF (version 1) segment's file header gives (1 for the first);
    None for another version."""
    with segment.open("rb") as fh:
        header = fh.read(EWF_FILE_HEADER)
    if not header.startswith(EWF_SIGNATURE) or len(header) < EWF_FILE_HEADER:
        return None
    return int.from_bytes(header[9:11], "little")


def _ewf_goes_on(segment: Path) -> bool:
    """Whether an EWF (version 1) segment ends in a "next" section: a further segment follows.
    libewf then reads the segments it found as the whole image and reports "no data" at their
    end, as if the image were damaged. (A last segment ends in "done"; one that is cut short
    or not version 1 is left to libewf.)"""
    try:
        with segment.open("rb") as fh:
            if fh.read(len(EWF_SIGNATURE)) != EWF_SIGNATURE:
                return False
            size = os.fstat(fh.fileno()).st_size
            offset = EWF_FILE_HEADER
            for _ in range(100_000):  # sections in one segment: a few per chunk table
                fh.seek(offset)
                raw = fh.read(EWF_SECTION.size)
                if len(raw) < EWF_SECTION.size:
                    return False
                kind, following, _size = EWF_SECTION.unpack(raw)
                kind = kind.rstrip(b"\0")
                if kind in (b"next", b"done"):
                    return kind == b"next"
                if not offset < following < size:
                    return False
                offset = following
    except OSError:
        return False
    return False


_NUMERIC = re.compile(r"^(?P<stem>.*)\.(?P<num>\d{3})$")
_ALPHA = re.compile(r"^(?P<stem>.*)\.(?P<alpha>[a-z]{2})$")


def _numeric_segments(path: Path) -> tuple[Path, ...] | None:
    match = _NUMERIC.match(path.name)
    if not match:
        return None
    start = int(match["num"])
    if start not in (0, 1):
        raise InvalidInputError(
            f"{path.name}: a split raw image must be opened at its first segment (.000 or .001)"
        )
    if start == 1:
        _refuse_later_segment(path, path.with_name(f"{match['stem']}.000"))
    segments: list[Path] = []
    for n in range(start, start + MAX_SEGMENTS):
        candidate = path.with_name(f"{match['stem']}.{n:03d}")
        if not candidate.is_file():
            _refuse_gap(path, candidate, f"{glob.escape(match['stem'])}.[0-9][0-9][0-9]")
            break
        segments.append(candidate)
    return tuple(segments)


def _refuse_later_segment(path: Path, first: Path) -> None:
    """Refuse ``path`` when it is a later segment of the split image that starts at ``first``
    (``.001`` beside a ``.000``, ``.ab`` beside an ``.aa``): it was read on its own, from the
    middle of the disk, and reported as a file system "not recognised or damaged"."""
    if first.is_file():
        raise InvalidInputError(
            f"{path.name}: a later segment of the split image that starts at {first.name}; open it there"
        )


def _refuse_gap(first: Path, missing: Path, pattern: str) -> None:
    """Refuse a split image whose segment ``missing`` is not there while a later one is
    (``.003`` gone, ``.004`` there): it would be read as if it ended before the gap, in
    silence. ``pattern`` matches the names of all its segments, which sort in their order."""
    later = sorted(p.name for p in first.parent.glob(pattern) if p.name > missing.name)
    if later:
        raise InvalidInputError(f"{first.name}: segment {missing.name} is missing ({later[0]} is there)")


def _alpha_segments(path: Path) -> tuple[Path, ...] | None:
    match = _ALPHA.match(path.name)
    if not match:
        return None
    if match["alpha"] != "aa":
        _refuse_later_segment(path, path.with_name(f"{match['stem']}.aa"))
        return None
    letters = string.ascii_lowercase
    segments: list[Path] = []
    for a in letters:
        for b in letters:
            candidate = path.with_name(f"{match['stem']}.{a}{b}")
            if not candidate.is_file():
                _refuse_gap(path, candidate, f"{glob.escape(match['stem'])}.[a-z][a-z]")
                return tuple(segments)
            segments.append(candidate)
    return tuple(segments)


def detect(path: Path) -> DetectedImage:
    """Detect the format of the image whose first segment is ``path``."""
    if not is_utf8(path):  # libewf would end in a traceback, a raw image's walk half-way
        raise InvalidInputError(f"{shown(path)}: {NOT_UTF8}")
    head = _read_head(path, 0x44)
    if head.startswith(EWF_SIGNATURE) or head.startswith(EWF2_SIGNATURE):
        segments = _ewf_segments(path)
        if not segments or segments[0].resolve() != path.resolve():
            raise InvalidInputError(f"{path.name}: open an EWF image at its first segment (.E01)")
        return DetectedImage(ImageFormat.ewf, segments)
    if any(head.startswith(sig) for sig in LEF_SIGNATURES):
        raise UnsupportedFormatError(f"{path.name}: logical evidence files (L01/Lx01) are not disk images")
    if head.startswith(ZIP_SIGNATURE) and _is_aff4(path):
        raise UnsupportedFormatError(
            f"{path.name}: an AFF4 image, not a disk image this tool reads; export it to raw or "
            "E01 with the AFF4 tools (aff4imager --export), record the new image's hash, and register that"
        )
    for offset, signature, what, advice in CONTAINERS:
        if head[offset : offset + len(signature)] == signature:
            raise UnsupportedFormatError(f"{path.name}: a {what}, not a disk image this tool reads; {advice}")
    for finder in (_numeric_segments, _alpha_segments):
        found = finder(path)
        if found and len(found) > 1:
            return DetectedImage(ImageFormat.split_raw, found)
    return DetectedImage(ImageFormat.raw, (path,))
