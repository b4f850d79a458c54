"""Build small, real disk images with the usual tools (no mounting, no root tricks):
ext4 with ``mke2fs -d``, FAT with ``mkfs.vfat`` + ``mcopy``, NTFS with ``mkntfs`` + ``ntfscp``,
partition tables with ``sfdisk``, E01 with ``ewfacquire``. Run as a script to build them all:
``python -m tests.images.build OUTDIR``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.images.planted import Planted, random_bytes, tree, write_tree

SECTOR = 512
MiB = 1024 * 1024
TOOLS = [
    "mke2fs",
    "mkfs.vfat",
    "mcopy",
    "mdel",
    "mkntfs",
    "ntfscp",
    "mkfs.exfat",
    "sfdisk",
    "ewfacquire",
    "fiwalk",
]


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def _run(*argv: str | Path, env: dict[str, str] | None = None) -> None:
    subprocess.run([str(a) for a in argv], check=True, capture_output=True, env=env)


def _zero(path: Path, size: int) -> None:
    with path.open("wb") as fh:
        fh.truncate(size)


def _place(disk: Path, fs_image: Path, start_sector: int) -> None:
    with disk.open("r+b") as out, fs_image.open("rb") as src:
        out.seek(start_sector * SECTOR)
        shutil.copyfileobj(src, out, 4 * MiB)


def ext4(out: Path, files: list[Planted] | None = None, size_mib: int = 32, kind: str = "ext4") -> Path:
    src = out.parent / f"{out.stem}.src"
    shutil.rmtree(src, ignore_errors=True)
    write_tree(src, files if files is not None else tree())
    out.unlink(missing_ok=True)
    _run(
        "mke2fs",
        "-q",
        "-F",
        "-t",
        kind,
        "-b",
        "1024",
        "-U",
        "12345678-1234-1234-1234-123456789abc",
        "-E",
        "hash_seed=12345678-1234-1234-1234-123456789abc",
        "-d",
        src,
        out,
        f"{size_mib}M",
    )
    return out


def fat(out: Path, files: list[Planted], size_mib: int, bits: int, deleted: bytes | None = None) -> Path:
    out.unlink(missing_ok=True)
    args = ["mkfs.vfat", "-C", "-F", str(bits), "-i", "1234abcd", "-n", "TESTFAT"]
    if bits == 32:
        args += ["-s", "1"]
    _run(*args, out, str(size_mib * 1024))
    src = out.parent / f"{out.stem}.src"
    shutil.rmtree(src, ignore_errors=True)
    write_tree(src, files)
    for child in sorted(src.iterdir()):
        _run("mcopy", "-s", "-i", out, child, "::/")
    if deleted is not None:
        gone = src / "deleted.txt"
        gone.write_bytes(deleted)
        _run("mcopy", "-i", out, gone, "::/deleted.txt")
        _run("mdel", "-i", out, "::/deleted.txt")
    return out


def fragmented_fat(out: Path) -> tuple[Path, list[Planted]]:
    """An MBR disk whose partition (1 MiB in) holds FAT16 whose largest file lies in two
    pieces: written after a file between two others was deleted, it fills that gap first and
    goes on past the third. Also the others, and a small one. Returns the disk and what each
    file holds."""
    kept = [Planted(f"{name}.bin", random_bytes(seed, 300 * 1024)) for seed, name in ((1, "a"), (3, "c"))]
    gap = Planted("b.bin", random_bytes(2, 300 * 1024))
    split = Planted("d.bin", random_bytes(4, 700 * 1024 + 77))
    small = Planted("small.txt", b"below the size read straight from the image\n")
    fs = out.with_suffix(".fs")
    fs.unlink(missing_ok=True)
    _run("mkfs.vfat", "-C", "-F", "16", "-i", "1234abcd", "-n", "FRAGMENTS", fs, str(16 * 1024))
    src = out.parent / f"{out.stem}.src"
    shutil.rmtree(src, ignore_errors=True)
    write_tree(src, [kept[0], gap, kept[1], split, small])
    for planted in (kept[0], gap, kept[1]):
        _run("mcopy", "-i", fs, src / planted.path, f"::/{planted.path}")
    _run("mdel", "-i", fs, f"::/{gap.path}")
    for planted in (split, small):
        _run("mcopy", "-i", fs, src / planted.path, f"::/{planted.path}")
    _zero(out, 18 * MiB)
    table = "label: dos\nstart=2048, size=32768, type=6\n"
    subprocess.run(["sfdisk", "-q", str(out)], input=table.encode(), check=True, capture_output=True)
    _place(out, fs, 2048)
    return out, [*kept, split, small]


def sparse_ext4(out: Path) -> tuple[Path, list[Planted]]:
    """ext4 (4 KiB blocks) with a file whose middle is a hole (``mke2fs -d`` leaves blocks of
    zeros out), one whose end lies in blocks allocated but never written (``debugfs
    fallocate``; they read as zeros), and a whole one. Returns the image and what each file
    holds."""
    holed = Planted(
        "holed.bin", random_bytes(5, 100 * 1024) + bytes(300 * 1024) + random_bytes(6, 100 * 1024)
    )
    written = random_bytes(7, 400 * 1024)
    unwritten = Planted("unwritten.bin", written + bytes(MiB - len(written)))
    whole = Planted("whole.bin", random_bytes(8, 500 * 1024 + 5))
    src = out.parent / f"{out.stem}.src"
    shutil.rmtree(src, ignore_errors=True)
    write_tree(src, [holed, Planted(unwritten.path, written), whole])
    out.unlink(missing_ok=True)
    _run("mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-d", src, out, "8M")
    _run("debugfs", "-w", "-R", f"fallocate /{unwritten.path} 0 400", out)
    _run("debugfs", "-w", "-R", f"sif /{unwritten.path} size {MiB}", out)
    return out, [holed, unwritten, whole]


def fat32_mbr(out: Path) -> Path:
    """MBR disk: a FAT32 primary partition and an ext2 logical drive in an extended partition."""
    work = out.parent
    fat_img = fat(work / "mbr-fat32.fs", tree(big=False), 40, 32, deleted=b"deleted but readable\n" * 50)
    ext_img = ext4(work / "mbr-ext2.fs", tree(big=False)[:6], 8, kind="ext2")
    _zero(out, 60 * MiB)
    table = (
        "label: dos\n"
        "start=2048, size=81920, type=c\n"
        "start=86016, size=32768, type=5\n"
        "start=88064, size=16384, type=83\n"
    )
    subprocess.run(["sfdisk", "-q", str(out)], input=table.encode(), check=True, capture_output=True)
    _place(out, fat_img, 2048)
    _place(out, ext_img, 88064)
    return out


def ntfs(out: Path) -> Path:
    """NTFS with the planted files in its root and an alternate data stream on notes.txt."""
    _zero(out, 24 * MiB)
    _run("mkntfs", "-q", "-F", "-f", "-L", "TESTNTFS", out)
    src = out.parent / "ntfs.src"
    shutil.rmtree(src, ignore_errors=True)
    files = tree(flat=True, big=False)
    write_tree(src, files)
    for planted in files:
        _run("ntfscp", "-q", "-f", out, src / planted.path, f"/{planted.path}")
    stream = src / "ads.bin"
    stream.write_bytes(b"hidden stream " * 300)
    _run("ntfscp", "-q", "-f", "-N", "secret", out, stream, "/notes.txt")
    return out


def exfat(out: Path, size_mib: int = 16) -> Path:
    """An exFAT volume as a memory or camera card holds, empty: no tool writes files into one
    without mounting it, and its own metadata files ($ALLOC_BITMAP, $UPCASE_TABLE) are listed."""
    _zero(out, size_mib * MiB)
    _run("mkfs.exfat", "-L", "CARD", out)
    return out


def gpt(out: Path) -> Path:
    """GPT disk with ext4 and FAT16 partitions, and a third never formatted (unreadable)."""
    work = out.parent
    ext_img = ext4(work / "gpt-ext4.fs", tree(big=False)[:8], 12)
    fat_img = fat(work / "gpt-fat16.fs", tree(big=False)[3:], 16, 16)
    _zero(out, 36 * MiB)
    table = (
        "label: gpt\n"
        "start=2048, size=24576, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n"
        "start=26624, size=32768, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n"
        "start=59392, size=8192, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n"
    )
    subprocess.run(["sfdisk", "-q", str(out)], input=table.encode(), check=True, capture_output=True)
    _place(out, ext_img, 2048)
    _place(out, fat_img, 26624)
    return out


def e01(source: Path, target_stem: Path) -> Path:
    """An EnCase image of ``source`` with MD5 and SHA-1 stored, via ewfacquire."""
    for old in target_stem.parent.glob(f"{target_stem.name}.E*"):
        old.unlink()
    _run(
        "ewfacquire",
        "-u",
        "-q",
        "-t",
        target_stem,
        "-c",
        "fast",
        "-d",
        "sha1",
        "-f",
        "encase6",
        "-C",
        "CR/TEST/1",
        "-E",
        "JB/1",
        "-e",
        "tester",
        "-D",
        "test image",
        "-N",
        "built by tests",
        source,
    )
    return target_stem.with_suffix(".E01")


def build_all(out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    images = {
        "ext4": ext4(out / "ext4.img"),
        "mbr": fat32_mbr(out / "mbr.img"),
        "ntfs": ntfs(out / "ntfs.img"),
        "gpt": gpt(out / "gpt.img"),
    }
    images["e01"] = e01(images["ext4"], out / "ext4")
    return images


if __name__ == "__main__":
    for name, path in build_all(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/images/build")).items():
        print(name, path)
