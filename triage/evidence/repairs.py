"""Reading volumes whose first copy of a structure is damaged, from the copy they keep.

The Sleuth Kit reads an NTFS volume's boot sector and the first records of its master file
table (MFT), an exFAT volume's boot sector, an ext2/3/4 file system's superblock and group
descriptors, and a GPT disk's primary table as they are, whatever their checksums say. Each
has a copy that recovery tools (chkdsk, e2fsck -b, gdisk) read instead when the first is
damaged: NTFS keeps its boot sector again in its last sector and the MFT's first four records
in ``$MFTMirr``; exFAT (memory and camera cards) keeps its boot region again from sector 12;
ext keeps its superblock and group descriptors again in block group 1; GPT keeps its table
again at the end of the disk. Here The Sleuth Kit is given a view of the image in which the
copy stands in the damaged one's place (``Patched``); the image itself is never written.
Whoever uses a copy says so: the files holding the damaged structure ($Boot, $MFT) are then
read, and hashed, with the copy in its place.

A FAT volume's two file allocation tables are compared too (``fat_copies_differ``): The Sleuth
Kit follows the first, and where it is damaged a file can read wrongly without any error.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Iterator

import pytsk3

NTFS_OEM = b"NTFS    "
BOOT_SIGNATURE = b"\x55\xaa"
SECTOR_SIZES = (512, 1024, 2048, 4096)  # bytes per sector a boot sector may give
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


def read_quietly(img: pytsk3.Img_Info, at: int, size: int) -> bytes:
    """``size`` bytes of ``img`` at ``at``; what an unreadable place gives is b"" (or less),
    for the caller's signature check to fail on."""
    try:
        return bytes(img.read(at, size))
    except OSError:
        return b""


def _is_ntfs_boot(sector: bytes) -> bool:
    return sector[3:11] == NTFS_OEM and sector[510:512] == BOOT_SIGNATURE


def readings(img: pytsk3.Img_Info, offset: int, length: int) -> Iterator[tuple[list[Patch], str]]:
    """The ways to read the file system at ``offset`` (``length`` bytes) that The Sleuth Kit
    could not open (or whose root directory it could not read) with copies of its damaged
    structures; each with what it says of them."""
    return itertools.chain(
        ntfs_readings(img, offset, length),
        exfat_readings(img, offset, length),
        ext_readings(img, offset, length),
    )


def ntfs_readings(img: pytsk3.Img_Info, offset: int, length: int) -> Iterator[tuple[list[Patch], str]]:
    """The ways to read the NTFS volume at ``offset`` (``length`` bytes) that The Sleuth Kit
    could not open, each with what it says of the volume: with the boot sector's copy in the
    volume's last sector, with the MFT's first records from ``$MFTMirr``, or both. Nothing if
    neither copy is there."""
    boots: list[tuple[list[Patch], bytes, list[str]]] = []
    first = read_quietly(img, offset, 512)
    if _is_ntfs_boot(first):
        boots.append(([], first, []))
    for size in (512, 4096):
        last = read_quietly(img, offset + length - size, size) if length >= 2 * size else b""
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
    if sector not in SECTOR_SIZES or not 0 < cluster <= 2**21 or not 256 <= record <= 2**16:
        return None
    mft = offset + int.from_bytes(boot[0x30:0x38], "little") * cluster
    mirror = offset + int.from_bytes(boot[0x38:0x40], "little") * cluster
    size = MFT_MIRROR_RECORDS * record
    if max(mft, mirror) + size > offset + length:
        return None
    copy = read_quietly(img, mirror, size)
    if len(copy) != size or copy[:4] != b"FILE" or copy == read_quietly(img, mft, size):
        return None
    return mft, copy


EXFAT_OEM = b"EXFAT   "
EXFAT_BACKUP = 12  # the backup boot region's first sector


def exfat_readings(img: pytsk3.Img_Info, offset: int, length: int) -> Iterator[tuple[list[Patch], str]]:
    """The way to read an exFAT volume whose boot sector is damaged: with the copy that starts
    its backup boot region (sector 12)."""
    for shift in (9, 12):  # 512- and 4096-byte sectors
        size = 1 << shift
        copy = (
            read_quietly(img, offset + EXFAT_BACKUP * size, size)
            if (EXFAT_BACKUP + 1) * size <= length
            else b""
        )
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
        copy = read_quietly(img, group1, EXT_SUPERBLOCK) if group1 + 2 * block <= offset + length else b""
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
        if not 0 < size <= length:  # figures no file system of this size has: not a copy to trust
            return
        descriptors = read_quietly(img, group1 + block, size)
        if len(descriptors) == size:
            table = (offset + (first_block + 1) * block, descriptors)
            in_group1 = "read with their copies in block group 1"
            yield [table], f"ext: its group descriptors are damaged: {in_group1}"
            yield [superblock, table], f"ext: its superblock and group descriptors are damaged: {in_group1}"
        return


GPT_SIGNATURE = b"EFI PART"
GPT_SECTORS = (512, 4096)  # logical sector sizes a GPT disk may have


def _gpt_header(img: pytsk3.Img_Info, lba: int, sector: int) -> bytes | None:
    """The GPT header at ``lba``, if one is there whose header and partition entries both match
    their CRC-32s."""
    header = read_quietly(img, lba * sector, sector)
    if len(header) < 92 or header[:8] != GPT_SIGNATURE:
        return None
    size = int.from_bytes(header[12:16], "little")
    if not 92 <= size <= sector:
        return None
    blank = header[:16] + b"\0\0\0\0" + header[20:size]
    if zlib.crc32(blank) != int.from_bytes(header[16:20], "little"):
        return None
    entries_lba = int.from_bytes(header[72:80], "little")
    count, entry_size = int.from_bytes(header[80:84], "little"), int.from_bytes(header[84:88], "little")
    if not (0 < count <= 1024 and 128 <= entry_size <= 4096):
        return None
    entries = read_quietly(img, entries_lba * sector, count * entry_size)
    if len(entries) != count * entry_size or zlib.crc32(entries) != int.from_bytes(header[88:92], "little"):
        return None
    return header


def gpt_reading(img: pytsk3.Img_Info) -> tuple[list[Patch], str] | None:
    """How to read a GPT disk whose primary table is damaged (fails its CRC-32s) while its
    backup (header in the last sector, pointing back to the first) is whole: with the primary
    header read as zeros, The Sleuth Kit, finding none, reads the backup. None for any other
    disk. The protective MBR must be there, so that a bare file system is never taken for one."""
    mbr = read_quietly(img, 0, 512)
    if len(mbr) < 512 or mbr[510:512] != BOOT_SIGNATURE or 0xEE not in mbr[446 + 4 : 510 : 16]:
        return None
    size = int(img.get_size())
    for sector in GPT_SECTORS:
        if _gpt_header(img, 1, sector) is not None:
            return None  # whole: read as The Sleuth Kit reads it
    for sector in GPT_SECTORS:
        last = size // sector - 1
        backup = _gpt_header(img, last, sector)
        if backup is not None and int.from_bytes(backup[24:32], "little") == last:
            said = (
                "the primary GPT is damaged (its header or partition entries fail their checksum): "
                "the partitions were read from the backup GPT at the end of the disk"
            )
            return [(sector, bytes(sector))], said
    return None


FAT_COMPARE_BLOCK = 1 << 20


def fat_copies_differ(img: pytsk3.Img_Info, offset: int) -> str | None:
    """What to say of a FAT12/16/32 volume at ``offset`` whose first and second file
    allocation tables differ (a bad sector, a write cut short): The Sleuth Kit reads the
    first, so a file whose cluster chain is damaged there may be read short or, following
    another file's clusters, wrongly, with nothing else to tell. None when they agree, or when
    there is one table or FAT32 keeps only one up to date (mirroring off)."""
    boot = read_quietly(img, offset, 512)
    if len(boot) < 512 or boot[510:512] != BOOT_SIGNATURE:
        return None
    sector = int.from_bytes(boot[11:13], "little")
    reserved, copies = int.from_bytes(boot[14:16], "little"), boot[16]
    per_fat = int.from_bytes(boot[22:24], "little") or int.from_bytes(boot[36:40], "little")
    fat32 = int.from_bytes(boot[22:24], "little") == 0
    if copies < 2 or sector not in SECTOR_SIZES or not per_fat:
        return None
    if fat32 and boot[40] & 0x80:  # mirroring off: only the active table is kept
        return None
    first, second = offset + reserved * sector, offset + (reserved + per_fat) * sector
    # No further than the image goes: a damaged boot sector may claim tables of any size.
    size = min(per_fat * sector, int(img.get_size()) - second)
    if size <= 0:
        return None
    differing = 0
    for at in range(0, size, FAT_COMPARE_BLOCK):
        want = min(FAT_COMPARE_BLOCK, size - at)
        one, two = read_quietly(img, first + at, want), read_quietly(img, second + at, want)
        if one != two:
            differing += sum(
                one[i : i + sector] != two[i : i + sector] for i in range(0, max(len(one), len(two)), sector)
            )
    if not differing:
        return None
    return (
        f"FAT: its two file allocation tables differ in {differing:,} of {per_fat:,} sectors: "
        "the first is read, and a file whose clusters are listed where they differ may read wrongly"
    )
