"""Benchmark `triage scan` against Sleuth Kit's `fiwalk` and the coreutils hashers.

Builds (once, cached under bench/build/) a deterministic ext4 image with `mke2fs -d` from
20,000 files of 1-64 KiB, 200 files of 1-8 MiB and 10 files of 50 MiB (about 2.03 GiB of
data, so the file system is made 2.25 GiB: 2 GiB cannot hold it), a 1,000,000-entry
known-bad hash set and a 20-rule YARA set; then, in one run, times:

  * triage scan (MD5+SHA-1+SHA-256 per file, hash-set lookups, YARA), its wall time and the CPU
    time of its processes (which tells a run that did more work from one that used the cores
    less: machines' speed drifts); then the same scan again,
    untimed, for the peak memory of its whole process tree (sampling /proc every 0.05 s takes
    CPU the scan would use: on a 2-core machine it made the scan 2-4% slower, and fiwalk is
    timed without it);
  * fiwalk -O -x (MD5 and SHA-1 per file);
  * md5sum + sha1sum + sha256sum over the image file;

and prints the ratios. Target: triage/fiwalk <= 0.6, peak memory < 1 GiB. Each run also
prints the library floor: the CPU time hashlib and yara-python alone need for the scan's
per-file work on this machine, and what that is on all cores against fiwalk (no scan can be
faster, so it tells whether the target can be met here at all).
Usage: python -m bench.scan_vs_fiwalk [--rebuild] [--runs N]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import NamedTuple

from tests.processes import descendants

BUILD = Path(__file__).resolve().parent / "build"
SEED = 20261121
MARKERS = [f"HTCU-BENCH-MARKER-{n:02d}" for n in range(20)]


def build_tree(root: Path) -> None:
    rng = random.Random(SEED)
    plan = [
        (20_000, 1024, 64 * 1024),
        (200, 1024 * 1024, 8 * 1024 * 1024),
        (10, 50 * 1024 * 1024, 50 * 1024 * 1024),
    ]
    n = 0
    for count, low, high in plan:
        for _ in range(count):
            size = rng.randint(low, high)
            folder = root / f"d{n % 97:02d}" / f"s{n % 13:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            data = bytearray(rng.randbytes(size))
            if n % 1000 == 7:  # a few YARA hits
                marker = MARKERS[n % 20].encode()
                data[: len(marker)] = marker
            (folder / f"f{n:06d}.bin").write_bytes(bytes(data))
            n += 1


def build_image(image: Path) -> None:
    with tempfile.TemporaryDirectory(dir=BUILD) as tmp:
        src = Path(tmp) / "tree"
        build_tree(src)
        image.unlink(missing_ok=True)
        subprocess.run(
            [
                "mke2fs",
                "-q",
                "-F",
                "-t",
                "ext4",
                "-d",
                str(src),
                "-U",
                "12345678-1234-1234-1234-1234567890ab",
                str(image),
                "2304M",
            ],
            check=True,
        )


def build_hashset(path: Path) -> None:
    rng = random.Random(SEED + 1)
    with path.open("w") as fh:
        for _ in range(1_000_000):
            fh.write(rng.randbytes(16).hex() + "\n")


def build_rules(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n, marker in enumerate(MARKERS):
        (folder / f"rule{n:02d}.yar").write_text(
            f'rule bench_{n:02d} {{ strings: $a = "{marker}" $b = {{ 4D 5A 90 00 {n:02X} }} '
            "condition: any of them }\n"
        )


def tree_rss(pid: int) -> int:
    """Resident memory (bytes) of a process and all its descendants."""
    total = 0
    for p in [pid, *descendants(pid)]:
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            pass
    return total


class Timing(NamedTuple):
    wall: float  # seconds
    cpu: float  # seconds of CPU of the command and every process under it, user and system
    peak: int  # bytes of the process tree's resident memory at most, when sampled (else 0)


PR_SET_CHILD_SUBREAPER = 36  # prctl(2)
ORPHANS_GRACE = 30.0  # seconds a command's processes may outlive it (the scan's fork server)


def _adopt_orphans() -> None:
    """Make this process the one that waits for its descendants' orphans (Linux's child
    subreaper), so that the processes a command leaves to end after it (the scan's fork server,
    which reaps the scan's children) are waited for here and their CPU time counted."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def _reap_orphans(argv: list[str]) -> None:
    """Wait for every process the command left behind; a command that leaves one running is
    a failure of its own."""
    deadline = time.monotonic() + ORPHANS_GRACE
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() > deadline:
                raise SystemExit(f"{argv[0]} left processes running {ORPHANS_GRACE:.0f} s after it ended")
            time.sleep(0.01)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], sample_memory: bool = False) -> Timing:
    """Run ``argv``; its wall time, the CPU time of all its processes (those left to end after
    it, such as the scan's fork server, waited for once it has ended) and, if asked, its peak
    memory. The CPU time tells a slower run that did more work from one that used the cores
    less."""
    _adopt_orphans()
    cpu_before = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    if sample_memory:
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, tree_rss(proc.pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
    _, err = proc.communicate()
    elapsed = time.perf_counter() - start
    if sample_memory:
        stop.set()
        sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({proc.returncode}): {err.decode()[-500:]}")
    _reap_orphans(argv)
    return Timing(elapsed, _children_cpu() - cpu_before, peak)


def library_floor(rules: Path, sizes: list[int], sample_every: int = 10) -> tuple[float, dict[str, float]]:
    """CPU seconds the libraries alone need for the scan's per-file work on this machine: MD5
    (as the scan computes it: a batch's files up to 16 MiB together in vector lanes where the
    CPU has them, ``hashers.md5_many``, the others with ``hashlib``), SHA-1 and SHA-256
    (``hashlib``, fed in the scan's read blocks) and YARA with the bench rules (the whole
    file in one call, up to the scan's size cap), replayed on random data for every
    ``sample_every``-th of the files (by size, so the sample has the listing's mix of small
    and large files) and scaled to all their bytes. Whatever the scan adds (reading through
    The Sleuth Kit, processes, records) comes on top, so this divided by the cores is the
    least wall time any scan doing this work can take. Also returns each library's speed
    (MiB/s) over the sample."""
    import hashlib

    import orjson

    from triage.analysis.hashers import md5_in_lanes, md5_many
    from triage.analysis.yarascan import Scanner, compile_rules
    from triage.scan.engine import _batches
    from triage.scan.options import ScanOptions

    options = ScanOptions()
    rng = random.Random(SEED + 2)
    sample = sorted(sizes)[sample_every // 2 :: sample_every]
    buffers = [rng.randbytes(size) for size in sample]  # made before anything is timed
    sample_bytes = sum(sample)
    scanner = Scanner(compile_rules([rules]), max_size=options.yara_max_size)

    def least(work: Callable[[], object], repeats: int = 3) -> float:
        """CPU seconds of ``work``, the least of a few runs (the machine's noise only adds)."""
        times = []
        for _ in range(repeats):
            start = time.process_time()
            work()
            times.append(time.process_time() - start)
        return min(times)

    def hashing_one(name: str, data: bytes) -> None:
        # As the scan reads: a file under the YARA cap in one piece, a larger one in blocks.
        block = len(data) if len(data) <= options.yara_max_size else options.read_block
        view = memoryview(data)
        hasher = hashlib.new(name)
        for offset in range(0, len(data), block):
            hasher.update(view[offset : offset + block])
        hasher.digest()

    def hashing(name: str) -> None:
        for data in buffers:
            hashing_one(name, data)

    # The scan's batches, made by the scan's own batching (size classes, batch_bytes,
    # batch_files) from the files in a walk-like order (shuffled).
    order = list(range(len(buffers)))
    rng.shuffle(order)
    spooled = (orjson.dumps([0, 1, "", i, len(buffers[i])]) + b"\n" for i in order)
    batches = [
        [buffers[row[3]] for row in batch]
        for batch in _batches(spooled, options, [0, 0], media_size=sum(sample))
    ]

    def md5_batches() -> None:
        for batch in batches:
            md5_many([data for data in batch if md5_in_lanes(len(data))])
            for data in batch:
                if not md5_in_lanes(len(data)):
                    hashing_one("md5", data)

    def scanning() -> None:
        for data in buffers:
            scanner.scan(data, path="d/f.bin", filetype="", size=len(data))

    seconds = {"md5": least(md5_batches)}
    seconds |= {name: least(partial(hashing, name)) for name in ("sha1", "sha256")}
    seconds["yara"] = least(scanning)
    cpu = sum(seconds.values()) * sum(sizes) / sample_bytes
    return cpu, {name: sample_bytes / t / 2**20 for name, t in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    for tool in ("mke2fs", "fiwalk", "md5sum"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found (apt-get install sleuthkit e2fsprogs)")
    BUILD.mkdir(exist_ok=True)
    image, hashset, rules = BUILD / "bench-ext4.img", BUILD / "known-bad-1M.txt", BUILD / "rules"
    if args.rebuild or not image.exists():
        print("building the 2 GiB image ...", flush=True)
        build_image(image)
    if args.rebuild or not hashset.exists():
        build_hashset(hashset)
    if args.rebuild or not rules.exists():
        build_rules(rules)
    triage = str(Path(sys.executable).with_name("triage"))
    cache = BUILD / "hashset-cache"
    env_cmd = ["env", f"TRIAGE_HASHSET_CACHE={cache}"]
    # Index the hash set once before timing (a one-off cost per hash set, kept across runs).
    subprocess.run(
        [
            *env_cmd,
            triage,
            "scan",
            str(image),
            "--hashset",
            str(hashset),
            "--processes",
            "1",
            "--dfxml",
            os.devnull,
        ],
        check=True,
        capture_output=True,
    )
    out = BUILD / "out"
    scan = [
        *env_cmd,
        triage,
        "scan",
        str(image),
        "--hashset",
        str(hashset),
        "--rules",
        str(rules),
        "--out",
        str(out),
        "--overwrite",
    ]
    for run in range(1, args.runs + 1):
        # Warm the page cache equally for every tool.
        subprocess.run(["cat", str(image)], stdout=subprocess.DEVNULL, check=True)
        triage_run = timed(scan)
        sampled = timed(scan, sample_memory=True)
        fiwalk_run = timed(["sh", "-c", f"fiwalk -O -x {image} > /dev/null"])
        t_sums = timed(["sh", "-c", f"md5sum {image} && sha1sum {image} && sha256sum {image}"]).wall
        t_triage, t_fiwalk = triage_run.wall, fiwalk_run.wall
        size = image.stat().st_size
        summary = json.loads((out / "summary.json").read_text())
        with (out / "files.jsonl").open() as listing:
            sizes = [int(json.loads(line)["size"]) for line in listing]
        floor, speeds = library_floor(rules, sizes)
        cores = os.cpu_count() or 1
        print(f"run {run}: image {size / 2**30:.2f} GiB")
        print(
            f"  triage scan (md5+sha1+sha256, 1M hash set, 20 YARA rules): {t_triage:7.2f} s "
            f"({triage_run.cpu:.2f} s of CPU, {triage_run.cpu / t_triage:.2f} cores busy), "
            f"peak memory {sampled.peak / 2**20:.0f} MiB (a second run, sampled: {sampled.wall:.2f} s)"
        )
        print(f"  the scan's MD5: {summary['provenance']['versions'].get('md5', 'OpenSSL (hashlib)')}")
        print(
            f"  fiwalk -O -x (md5+sha1):                                   {t_fiwalk:7.2f} s "
            f"({fiwalk_run.cpu:.2f} s of CPU)"
        )
        print(f"  md5sum+sha1sum+sha256sum of the image:                     {t_sums:7.2f} s")
        print(
            f"  ratio triage/fiwalk: {t_triage / t_fiwalk:.2f} (target <= 0.60); "
            f"triage/coreutils: {t_triage / t_sums:.2f}"
        )
        print(
            "  library floor (per core, MiB/s: "
            + ", ".join(f"{name} {speed:.0f}" for name, speed in speeds.items())
            + f"): {floor:.2f} s of CPU for {summary['files']:,} files of "
            f"{summary['bytes'] / 2**30:.2f} GiB, {floor / cores:.2f} s on {cores} cores "
            f"= {floor / cores / t_fiwalk:.2f} x fiwalk"
        )


if __name__ == "__main__":
    main()
