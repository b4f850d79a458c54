"""Volume systems (MBR with extended partitions, GPT) and bare file systems.

Every partition is listed. Data partitions whose file system cannot be opened are reported
with the reason; volume-system metadata and unallocated space are listed as such. Of a
truncated MBR disk that The Sleuth Kit refuses, the four primary entries are read directly. A
GPT disk whose primary table is damaged is read from its backup table, and a file system
whose key structures are damaged with their copies (see ``repairs``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pytsk3

from triage.evidence.repairs import Patched, gpt_reading, read_quietly, readings
from triage.evidence.tsk import tsk_words

FS_TYPE_NAMES = {
    getattr(pytsk3, name): name.removeprefix("TSK_FS_TYPE_").lower()
    for name in dir(pytsk3)
    if name.startswith("TSK_FS_TYPE_")
    and not name.endswith(("_DETECT", "_MASK"))
    and isinstance(getattr(pytsk3, name), int)
}


@dataclass
class Partition:
    """One entry of the volume system (or the whole image for a bare file system)."""

    index: int  # 1-based among data partitions (1 for a bare file system, as fiwalk counts)
    address: int  # the volume system's slot number
    offset: int  # bytes from the start of the image
    length: int  # bytes
    description: str
    kind: str  # "data", "meta", "unallocated", "whole-image"
    filesystem: str | None = None  # e.g. "ext4", "ntfs", "fat32"
    status: str = "not-examined"  # "ok", "unreadable", "not-examined"
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fs_type_name(ftype: int) -> str:
    return FS_TYPE_NAMES.get(int(ftype), f"type-{int(ftype)}")


def try_open_fs(img: pytsk3.Img_Info, offset: int, length: int) -> tuple[pytsk3.FS_Info | None, str]:
    """Open the file system of the partition at ``offset`` (``length`` bytes). Returns it and
    "", or it and a note when it could be read only with copies of damaged structures (see
    ``repairs``), or None and the reason it cannot be opened. One that opens but whose root
    directory cannot be read is tried with the copies too, and returned as it is if they do
    not help (the walk then reports the root directory)."""
    try:
        fs, failure = pytsk3.FS_Info(img, offset=offset), None
    except OSError as exc:
        fs, failure = None, exc
    if fs is not None and _root_readable(fs):
        return fs, ""
    if failure is not None and (known := unsupported_kind(img, offset, length)) is not None:
        return None, f"not supported: {known}, which The Sleuth Kit does not read"
    for patches, note in readings(img, offset, length):
        try:
            repaired = pytsk3.FS_Info(Patched(img, patches), offset=offset)
        except OSError:
            continue
        if _root_readable(repaired):
            return repaired, note
    if fs is not None:
        return fs, ""
    assert failure is not None
    return None, _tsk_reason(failure)


def _root_readable(fs: pytsk3.FS_Info) -> bool:
    try:
        fs.open_dir(path="/")
    except OSError:
        return False
    return True


MD_MAGIC = b"\xfc\x4e\x2b\xa9"  # a Linux software RAID superblock's, little-endian
MD_MEMBER = "a member of a Linux software RAID (md) array"
# What a volume The Sleuth Kit cannot open may be, by (offset, signature): healthy volumes of
# kinds it does not read, which "file system not recognised or damaged" would call damaged.
UNSUPPORTED: tuple[tuple[int, bytes, str], ...] = (
    (0x10040, b"_BHRfS_M", "a Btrfs file system (Linux, Synology and other NAS)"),
    (0x400, b"\x10\x20\xf5\xf2", "an F2FS file system (Android phones, some Linux devices)"),
    (0, b"XFSB", "an XFS file system (Linux)"),
    (0x218, b"LVM2 001", "an LVM2 physical volume (Linux logical volumes)"),
    (0x1000, MD_MAGIC, MD_MEMBER),  # metadata 1.2
    (0, MD_MAGIC, MD_MEMBER),  # metadata 1.1
    (0x20, b"NXSB", "an APFS container (Apple)"),
    (3, b"ReFS\x00", "a ReFS file system (Windows Server)"),
)
UDF_AREA = 0x8000  # the volume recognition sequence: 2 KiB descriptors from 32 KiB on


def unsupported_kind(img: pytsk3.Img_Info, offset: int, length: int) -> str | None:
    """The kind of volume at ``offset`` when its signature is one of ``UNSUPPORTED`` (or UDF,
    or an md member whose superblock is at its end); None if none is found."""

    def at(where: int, size: int) -> bytes:
        if where < 0 or where + size > length:
            return b""
        return read_quietly(img, offset + where, size)

    for where, signature, kind in UNSUPPORTED:
        if at(where, len(signature)) == signature:
            return kind
    # md metadata 0.90 (Synology's system partitions, say) sits 64 KiB from the 64 KiB-aligned end.
    if at((length & ~0xFFFF) - 0x10000, 4) == MD_MAGIC:
        return MD_MEMBER
    if any(at(UDF_AREA + 2048 * k + 1, 5) in (b"NSR02", b"NSR03") for k in range(8)):
        return "a UDF file system (DVD, Blu-ray, some USB media)"
    return None


def _tsk_reason(exc: OSError) -> str:
    detail = tsk_words(exc)
    if "encrypt" in str(exc).lower():
        return f"encrypted: {detail}"
    return f"file system not recognised or damaged: {detail}"


@dataclass
class VolumeSystem:
    kind: str | None  # "mbr", "gpt", ...; None for a bare file system
    partitions: list[Partition]
    note: str = ""  # what was wrong with the volume system and how it was read all the same


def list_partitions(img: pytsk3.Img_Info) -> VolumeSystem:
    """The volume system and every partition in it."""
    backup_gpt = gpt_reading(img)
    try:
        if backup_gpt is not None:
            volume = pytsk3.Volume_Info(Patched(img, backup_gpt[0]), pytsk3.TSK_VS_TYPE_GPT)
        else:
            volume = pytsk3.Volume_Info(img)
    except OSError:
        primary = _primary_mbr_partitions(img)
        if primary:
            return VolumeSystem("mbr", primary)
        return VolumeSystem(None, [Partition(1, 0, 0, int(img.get_size()), "whole image", "whole-image")])
    block = int(volume.info.block_size)
    vs_type = {pytsk3.TSK_VS_TYPE_DOS: "mbr", pytsk3.TSK_VS_TYPE_GPT: "gpt"}.get(
        volume.info.vstype, f"vs-{int(volume.info.vstype)}"
    )
    partitions: list[Partition] = []
    data_index = 0
    for part in volume:
        flags = int(part.flags)
        desc = part.desc.decode("utf-8", "replace") if isinstance(part.desc, bytes) else str(part.desc)
        if flags & pytsk3.TSK_VS_PART_FLAG_ALLOC:
            data_index += 1
            kind, index = "data", data_index
        elif flags & pytsk3.TSK_VS_PART_FLAG_META:
            kind, index = "meta", 0
        else:
            kind, index = "unallocated", 0
        partitions.append(
            Partition(
                index=index,
                address=int(part.addr),
                offset=int(part.start) * block,
                length=int(part.len) * block,
                description=desc,
                kind=kind,
                status="not-examined" if kind != "data" else "pending",
            )
        )
    return VolumeSystem(vs_type, partitions, backup_gpt[1] if backup_gpt is not None else "")


SECTOR = 512
EXTENDED_TYPES = {0x05, 0x0F, 0x85}
_TRUNCATED_TABLE = "too large for image"  # The Sleuth Kit's words for a table that runs past the end


def _primary_mbr_partitions(img: pytsk3.Img_Info) -> list[Partition]:
    """The primary partitions of an MBR that The Sleuth Kit refused because an entry starts
    past the end of the image: a truncated acquisition of a disk with several partitions, where
    it lists none, not even the first, whole one. Read from the four entries of the table
    itself; the extended partition's own tables are not followed. Empty unless The Sleuth Kit
    gave that reason and one of the entries inside the image holds a file system it opens (so
    a bare file system whose boot sector looks like a table is still read as one)."""
    try:
        pytsk3.Volume_Info(img, pytsk3.TSK_VS_TYPE_DOS)
    except OSError as exc:
        if _TRUNCATED_TABLE not in str(exc):
            return []
    else:
        return []  # opened after all: not this case
    size = int(img.get_size())
    mbr = img.read(0, SECTOR)
    if len(mbr) < SECTOR or mbr[510:512] != b"\x55\xaa":
        return []
    partitions: list[Partition] = []
    for slot in range(4):
        entry = mbr[446 + 16 * slot : 446 + 16 * (slot + 1)]
        kind_byte = entry[4]
        start, length = int.from_bytes(entry[8:12], "little"), int.from_bytes(entry[12:16], "little")
        if kind_byte == 0 or start == 0 or length == 0:
            continue
        offset = start * SECTOR
        description = f"type 0x{kind_byte:02x} (primary table read directly)"
        if kind_byte in EXTENDED_TYPES:
            part = Partition(
                0,
                slot,
                offset,
                length * SECTOR,
                description,
                "meta",
                status="unreadable",
                reason="extended partition: its tables were not read (The Sleuth Kit refused the disk)",
            )
        else:
            index = sum(p.kind == "data" for p in partitions) + 1
            part = Partition(index, slot, offset, length * SECTOR, description, "data", status="pending")
        if offset >= size:
            part.status, part.reason = "unreadable", "starts past the end of the image (truncated?)"
        partitions.append(part)
    readable = [p for p in partitions if p.kind == "data" and p.status == "pending"]
    if not any(try_open_fs(img, p.offset, p.length)[0] is not None for p in readable):
        return []
    return partitions
