"""Reading volumes whose first copy of a structure is damaged, from the copy they keep.

The Sleuth Kit reads an NTFS volume's boot sector and the first records of its master file
table (MFT), an ext2/3/4 file system's superblock and group descriptors, and a GPT disk's
primary table as they are, whatever their checksums say. Each has a copy that recovery tools
(chkdsk, e2fsck -b, gdisk) read instead when the first is damaged: NTFS keeps its boot sector
again in its last sector and the MFT's first four records in ``$MFTMirr``; exFAT (memory and
camera cards) keeps its boot region again from sector 12; ext keeps its
superblock and group descriptors again in block group 1; GPT keeps its table again at the end
of the disk. Here The Sleuth Kit is given a view of the
image in which the copy stands in the damaged one's place (``Patched``); the image itself is
never written. Whoever uses a copy says so: the files holding the damaged structure ($Boot,
$MFT) are then read, and hashed, with the copy in its place.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import pytsk3

NTFS_OEM = b"NTFS    "
BOOT_SIGNATURE = b"\x55\xaa"
MFT_MIRROR_RECORDS = 4  # $MFT, $MFTMirr, $LogFile, $Volume: what $MFTMirr holds

Patch = tuple[int, bytes]  # where, what to read there instead


class Patched(pytsk3.Img_Info):  # type: ignore[misc]
    """``img`` with each patch's bytes read in place of what lies at its offset. A file
    system or volume system opened on it keeps it alive."""

    def __init__(self, img: pytsk3.Img_Info, patches: list[Patch]) -> None:
        self._img, self._patches = img, patches
        super().__init__(url="", type=pytsk3.TSK_IMG_TYPE_EXTERNAL)

    def read(self, offset: int, size: int) -> bytes:
        data = self._img.read(offset, size)
        for at, patch in self._patches:
            start, end = max(offset, at), min(offset + len(data), at + len(patch))
            if start < end:
                data = data[: start - offset] + patch[start - at : end - at] + data[end - offset :]
        return data

    def get_size(self) -> int:
        return int(self._img.get_size())


def _read(img: pytsk3.Img_Info, at: int, size: int) -> bytes:
    try:
        return bytes(img.read(at, size))
    except OSError:
        return b""


def _is_ntfs_boot(sector: bytes) -> bool:
    return sector[3:11] == NTFS_OEM and sector[510:512] == BOOT_SIGNATURE


def readings(img: pytsk3.Img_Info, offset: int, length: int) -> Iterator[tuple[list[Patch], str]]:
    """The ways to read the file system at ``offset`` (``length`` bytes), which The Sleuth Kit
    could not open, with copies of its damaged structures; each with what it says of them."""
    return itertools.chain(
        ntfs_readings(img, offset, length),
        exfat_readings(img, offset, length),
        ext_readings(img, offset, length),
    )


def ntfs_readings(img: pytsk3.Img_Info, offset: int, length: int) -> Iterator[tuple[list[Patch], str]]:
    """The ways to read the NTFS volume at ``offset`` (``length`` bytes) that The Sleuth Kit
    could not open, each with what it says of the volume: with the boot sector's copy in the
    volume's last sector, with the MFT's first records from ``$MFTMirr``, or both. None if
    neither copy is there."""
    boots: list[tuple[list[Patch], bytes, list[str]]] = []
    first = _read(img, offset, 512)
    if _is_ntfs_boot(first):
        boots.append(([], first, []))
    for size in (512, 4096):
        last = _read(img, offset + length - size, size) if length >= 2 * size else b""
        if _is_ntfs_boot(last) and last[:512] != first:
            boot_copy = (
                "its boot sector is damaged: read with the copy in its last sector ($Boot hashed with it)"
            )
            boots.append(([(offset, last)], last, [boot_copy]))
            yield [(offset, last)], f"NTFS: {boot_copy}"
            break
    mft = (
        "the first records of its master file table are damaged: read with their copies in "
        "$MFTMirr ($MFT hashed with them)"
    )
    for patches, boot, said in boots:
        mirror = _mft_mirror(img, offset, length, boot)
        if mirror is not None:
            yield [*patches, mirror], "NTFS: " + "; ".join([*said, mft])


def _mft_mirror(img: pytsk3.Img_Info, offset: int, length: int, boot: bytes) -> Patch | None:
    """``$MFTMirr``'s copy of the MFT's first records, placed over them, as ``boot`` (a boot
    sector) locates both; None when the boot sector's figures make no sense or the copy is not
    there or is the same."""
    sector = int.from_bytes(boot[11:13], "little")
    per_cluster = boot[13] if boot[13] <= 0x80 else 1 << (256 - boot[13])
    cluster = sector * per_cluster
    record = boot[0x40] * cluster if boot[0x40] < 0x80 else 1 << (256 - boot[0x40])
    if sector not in (512, 1024, 2048, 4096) or not 0 < cluster <= 2**21 or not 256 <= record <= 2**16:
        return None
    mft = offset + int.from_bytes(boot[0x30:0x38], "little") * cluster
    mirror = offset + int.from_bytes(boot[0x38:0x40], "little") * cluster
    size = MFT_MIRROR_RECORDS * record
    if max(mft, mirror) + size > offset + length:
        return None
    copy = _read(img, mirror, size)
    if len(copy) != size or copy[:4] != b"FILE" or copy == _read(img, mft, size):
        return None
    return mft, copy


EXFAT_OEM = b"EXFAT   "
EXFAT_BACKUP = 12  # the backup boot region's first sector


def exfat_readings(img: pytsk3.Img_Info, offset: int, length: int) -> Iterator[tuple[list[Patch], str]]:
    """The way to read an exFAT volume whose boot sector is damaged: with the copy that starts
    its backup boot region (sector 12)."""
    for shift in (9, 12):  # 512- and 4096-byte sectors
        size = 1 << shift
        copy = _read(img, offset + EXFAT_BACKUP * size, size) if (EXFAT_BACKUP + 1) * size <= length else b""
        if copy[3:11] == EXFAT_OEM and copy[510:512] == BOOT_SIGNATURE and copy[108] == shift:
            yield [(offset, copy)], "exFAT: its boot sector is damaged: read with the copy in sector 12"
            return


EXT_MAGIC = b"\x53\xef"
EXT_SUPERBLOCK = 1024  # where the primary superblock lies, and its size
EXT_64BIT = 0x80  # incompatible feature: 64-bit block numbers and larger group descriptors


def ext_readings(img: pytsk3.Img_Info, offset: int, length: int) -> Iterator[tuple[list[Patch], str]]:
    """The ways to read an ext2/3/4 file system whose superblock (and group descriptors) are
    damaged, with their copies in block group 1, as ``e2fsck -b`` does: first the superblock's
    copy alone, then with the group descriptors' too. Groups of the default size only."""
    for block in (1024, 2048, 4096):
        first_block = 1 if block == 1024 else 0
        per_group = 8 * block
        group1 = offset + (first_block + per_group) * block  # its first block holds the copy
        copy = _read(img, group1, EXT_SUPERBLOCK) if group1 + 2 * block <= offset + length else b""
        if (
            copy[56:58] != EXT_MAGIC
            or EXT_SUPERBLOCK << min(int.from_bytes(copy[24:28], "little"), 16) != block
            or int.from_bytes(copy[32:36], "little") != per_group
        ):
            continue
        superblock = (offset + EXT_SUPERBLOCK, copy)
        yield [superblock], "ext: its superblock is damaged: read with the copy in block group 1"
        wide = bool(int.from_bytes(copy[0x60:0x64], "little") & EXT_64BIT)
        blocks = int.from_bytes(copy[4:8], "little") | (
            int.from_bytes(copy[0x150:0x154], "little") << 32 if wide else 0
        )
        desc = int.from_bytes(copy[0xFE:0x100], "little") if wide else 32
        groups = math.ceil((blocks - first_block) / per_group)
        size = math.ceil(groups * max(desc, 32) / block) * block
        descriptors = _read(img, group1 + block, size)
        if len(descriptors) == size:
            table = (offset + (first_block + 1) * block, descriptors)
            in_group1 = "read with their copies in block group 1"
            yield [table], f"ext: its group descriptors are damaged: {in_group1}"
            yield [superblock, table], f"ext: its superblock and group descriptors are damaged: {in_group1}"
        return
