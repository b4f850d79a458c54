"""``scan_image``: integrity first, then the walk, then every file analysed across processes.

The parent never parses evidence itself: the container probe, the image hash and the
file-system walk each run in a child process with a wall-clock and a memory limit, and the
per-file work runs in a pool whose crashed or stuck workers are replaced. A batch that took
its worker down is retried file by file, so one poisonous file becomes one error entry.
"""

from __future__ import annotations

import bisect
import contextlib
import glob
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from triage import __version__
from triage.analysis.hashers import LANES_MAX_BYTES
from triage.clock import utcnow
from triage.errors import CorruptImageError, IntegrityError, UnsupportedFormatError
from triage.evidence.formats import DetectedImage, ImageFormat, detect
from triage.leftovers import remove_stale
from triage.scan import phases
from triage.scan.analyse import bytes_to_read, error_record, init_worker, process_batch
from triage.scan.options import ScanOptions
from triage.scan.outputs import DfxmlWriter, JsonlWriter, written_in_place
from triage.scan.pool import Child, ChildFailed, IsolatedPool, WorkerInitError, run_child
from triage.scan.summary import SummaryBuilder

Progress = Callable[[str, int, int], None]
"""progress(phase, done, total): phases "verifying" and "analysing" count bytes; "files" counts
the files analysed against those the walk has listed so far (it goes on meanwhile), each time
"analysing" is told; "walking" the files listed, once the walk has ended."""


@dataclass
class ScanResult:
    summary: dict[str, Any]
    listing: Path


def versions() -> dict[str, str]:
    import ssl

    import pyewf

    from triage.analysis.hashers import md5_implementation
    from triage.analysis.yarascan import yara_version
    from triage.evidence.direct import how_files_are_read
    from triage.evidence.tsk import tsk_version

    return {
        "htcu-triage": __version__,
        "sleuthkit": tsk_version(),
        "libewf": str(pyewf.get_version()),
        "yara": yara_version(),
        "openssl": ssl.OPENSSL_VERSION,  # SHA-1 and SHA-256, and MD5 where no lanes run
        "md5": md5_implementation(),
        "reads": how_files_are_read(),
    }


def _no_progress(_phase: str, _done: int, _total: int) -> None:
    return None


def verify_integrity(
    detected: DetectedImage,
    options: ScanOptions,
    stored: dict[str, str],
    media_size: int,
    progress: Progress,
) -> dict[str, Any]:
    """Compare the image's own hashes with its acquisition hashes; raise on any mismatch."""
    expected: dict[str, str] = {k: v.lower() for k, v in stored.items()}
    for algo, value in options.expect_hashes.items():
        expected.setdefault(algo, value.lower())
    report: dict[str, Any] = {
        "stored_hashes": stored,
        "expected_hashes": expected,
        "computed_hashes": None,
        "integrity": "not-checked",
    }
    if not expected and not options.hash_image:
        report["integrity"] = "no acquisition hash to verify against"
        return report
    try:
        computed = run_child(
            phases.hash_image,
            (detected,),
            options.walk_timeout,
            options.memory_limit,
            lambda done: progress("verifying", done, media_size),
        )
    except ChildFailed as exc:
        raise CorruptImageError(f"{detected.first.name}: image could not be read to the end: {exc}") from exc
    report["computed_hashes"] = computed
    mismatches = [
        f"{algo} expected {want} computed {computed[algo]}"
        for algo, want in expected.items()
        if algo in computed and computed[algo] != want
    ]
    # A user-given hash that contradicts the one stored inside the image is a mismatch too.
    mismatches += [
        f"{algo} given {value.lower()} but stored in image {stored[algo]}"
        for algo, value in options.expect_hashes.items()
        if algo in stored and stored[algo] != value.lower()
    ]
    if mismatches:
        report["integrity"] = "mismatch"
        raise IntegrityError(f"{detected.first.name}: integrity check failed: " + "; ".join(mismatches))
    report["integrity"] = "verified" if expected else "hashed"
    return report


# How long the parent waits for the walker's next lines when it has read them all. The analysis
# processes wait for the first batch meanwhile: at 0.05 s the first lines came 0.05 s after the
# walker started, the cores idle, where the walker needs 0.01-0.02 s to open the image.
TAIL_WAIT = 0.005


def _tail(spool: Path, walker: Child) -> Iterator[bytes]:
    """The spool's lines as the walker writes them, until the walker has finished."""
    while not spool.exists() and not walker.poll(TAIL_WAIT):
        pass
    if not spool.exists():
        return
    with spool.open("rb") as fh:
        pending = b""
        while True:
            chunk = fh.readline()
            if chunk:
                pending += chunk
                if pending.endswith(b"\n"):
                    yield pending
                    pending = b""
                continue
            if walker.poll(TAIL_WAIT):
                # Whole lines only: a walker that died mid-line (its disk full) says so itself.
                whole, _, _cut = (pending + fh.read()).rpartition(b"\n")
                yield from (line + b"\n" for line in whole.splitlines() if line)
                return


# Files are batched with others of their size class, so that a batch's MD5 lanes get many
# messages of like lengths (``hashers.md5_many``; over the bench image this took the MD5 lanes'
# CPU from 1.94 to 1.50 s): small ones, the others the lanes take, and those they do not.
SIZE_CLASSES = (256 * 1024, LANES_MAX_BYTES)


def _batches(
    lines: Iterator[bytes], options: ScanOptions, seen: list[int], media_size: int
) -> Iterator[list[list[Any]]]:
    """Group spooled entries into batches by size class (``SIZE_CLASSES``), each batch up to
    ``batch_bytes`` to read or ``batch_files`` files. What is left when the walk ends goes
    largest first, so that the longest batch does not start last. ``seen`` counts files and
    the bytes they will be read for."""
    pending: dict[int, list[list[Any]]] = {}
    pending_bytes: dict[int, int] = {}
    for line in lines:
        row = orjson.loads(line)
        to_read = bytes_to_read(int(row[4]), media_size)
        seen[0] += 1
        seen[1] += to_read
        size_class = bisect.bisect_left(SIZE_CLASSES, to_read)
        batch = pending.setdefault(size_class, [])
        batch.append(row)
        pending_bytes[size_class] = pending_bytes.get(size_class, 0) + to_read
        if pending_bytes[size_class] >= options.batch_bytes or len(batch) >= options.batch_files:
            yield pending.pop(size_class)
            pending_bytes[size_class] = 0
    for size_class in sorted(pending, key=lambda c: pending_bytes[c], reverse=True):
        if pending[size_class]:
            yield from _shared_out(pending[size_class], size_class, options.processes, media_size)


LANES_FILL = 8  # files a part of a leftover batch keeps at least, where the MD5 lanes take them


def _shared_out(
    batch: list[list[Any]], size_class: int, processes: int, media_size: int
) -> Iterator[list[list[Any]]]:
    """A batch left when the walk has ended, in up to ``processes`` parts of like bytes (largest
    first), so that every analysis process works on the end of the scan: an image of fewer
    files than a batch holds was analysed by one process while the others waited, and the
    bench's last two 50 MiB files by one. Files the MD5 lanes take (every class but the last)
    stay ``LANES_FILL`` to a part at least: lanes run part empty run slower."""
    most = len(batch) if size_class == len(SIZE_CLASSES) else len(batch) // LANES_FILL
    parts = max(1, min(processes, most))
    if parts == 1:
        yield batch
        return
    loads = [0] * parts
    shares: list[list[list[Any]]] = [[] for _ in range(parts)]
    sized = [(bytes_to_read(int(row[4]), media_size), row) for row in batch]
    for size, row in sorted(sized, key=lambda pair: pair[0], reverse=True):
        lightest = loads.index(min(loads))  # the largest file left goes to the lightest part
        shares[lightest].append(row)
        loads[lightest] += size
    for _load, share in sorted(zip(loads, shares, strict=True), key=lambda pair: pair[0], reverse=True):
        yield share


def _told_as_handed_out(
    batches: Iterator[list[list[Any]]], told: Callable[[], None]
) -> Iterator[list[list[Any]]]:
    """``batches``, telling the progress before each goes out: the files the walk has listed
    so far grow as batches go, not only as they come back (a batch of large files, or one
    slow to scan, takes minutes)."""
    for batch in batches:
        told()
        yield batch


def _only_known(record: dict[str, Any]) -> bool:
    """A file a hash set knows (known-good, or a known-bad set's non-pertinent category) with
    nothing else found: no alert, no YARA match, no error. What ``omit_known`` leaves out."""
    return (
        bool(record.get("known"))
        and not any(hit["alert"] for hit in record["hashset_hits"])
        and not (record.get("yara") or {}).get("matches")
        and not record.get("error")
    )


def _deadline(batch: list[list[Any]], options: ScanOptions, media_size: int) -> float:
    """Seconds a batch may take: ``batch_timeout``, plus time for its bytes at ``slowest_rate``,
    so that a large file (a 300 GB virtual disk inside the evidence) is hashed rather than
    killed half way, twice, and listed as an error. A file claiming more data than the whole
    image holds is not read (``bytes_to_read``)."""
    bytes_ = sum(bytes_to_read(int(row[4]), media_size) for row in batch)
    return options.batch_timeout + bytes_ / options.slowest_rate


def probe_image(detected: DetectedImage, memory_limit: int = ScanOptions().memory_limit) -> dict[str, Any]:
    """Media size and the hashes stored at acquisition. A container (EWF) is parsed in an
    isolated child; a plain raw file needs no parsing. ``CorruptImageError`` if unreadable."""
    name = detected.first.name
    try:
        if detected.format is ImageFormat.ewf:
            probed: dict[str, Any] = run_child(phases.probe, (detected,), 300, memory_limit)
        else:
            probed = phases.probe(detected, None)
    except (ChildFailed, CorruptImageError) as exc:
        message = str(exc)
        if name not in message:
            message = f"{name}: cannot be opened as a {detected.format.value} image: {message}"
        raise CorruptImageError(message) from exc
    return probed


def scan_image(
    source: Path | DetectedImage,
    options: ScanOptions,
    listing: Path,
    progress: Progress | None = None,
    dfxml: Path | None = None,
) -> ScanResult:
    """Scan the image whose first segment is ``source`` (or the image ``detect`` found there);
    write one record per file to ``listing`` (JSON lines) and, if asked, the DFXML document to
    ``dfxml``."""
    progress = progress or _no_progress
    started = utcnow()
    detected = source if isinstance(source, DetectedImage) else detect(source)
    path = detected.first
    probed = probe_image(detected, options.memory_limit)
    image: dict[str, Any] = {
        "path": str(detected.first),
        "format": detected.format.value,
        "segments": [str(s) for s in detected.segments],
        "media_size": probed["media_size"],
    }
    image.update(verify_integrity(detected, options, probed["stored_hashes"], probed["media_size"], progress))

    # The walk's spool goes beside the listing, on the results' disk (``/tmp`` may be memory).
    listing.parent.mkdir(parents=True, exist_ok=True)
    # What a scan killed outright left there (its spool, the DFXML's fragments), a day on.
    remove_stale(
        [
            *listing.parent.glob(f".{glob.escape(listing.name)}-walk-*"),
            *(dfxml.parent.glob(f".{glob.escape(dfxml.name)}-parts-*") if dfxml else []),
        ]
    )
    # Whatever is opened or started below is closed or stopped on the way out, whatever ends it.
    with contextlib.ExitStack() as cleanup:
        tmp = cleanup.enter_context(
            tempfile.TemporaryDirectory(prefix=f".{listing.name}-walk-", dir=listing.parent)
        )
        spool = Path(tmp) / "entries.jsonl"
        completed = False

        def discard_partial() -> None:  # registered before the writers: runs once they are closed
            if not completed:  # a listing or document cut short must not be taken for whole
                for result in (listing, dfxml):
                    if result is not None and not written_in_place(result):
                        result.unlink(missing_ok=True)

        cleanup.callback(discard_partial)
        writer = JsonlWriter(listing)
        cleanup.callback(writer.close)
        document = DfxmlWriter(dfxml) if dfxml else None
        if document is not None:
            cleanup.callback(document.close)
        # The walk runs in its own child; analysis starts on its first entries while it goes on.
        walker = Child(
            phases.walk_to_spool,
            (detected, options.include_deleted, str(spool)),
            options.walk_timeout,
            options.memory_limit,
        )
        cleanup.callback(walker.close)
        seen = [0, 0]  # files and bytes listed so far
        media_size = int(image["media_size"])
        summary = SummaryBuilder()
        done_bytes = 0
        done_files = 0
        retry: list[list[Any]] = []

        left_out = 0

        def take(record: dict[str, Any]) -> None:
            nonlocal done_bytes, done_files, left_out
            if options.omit_known and _only_known(record):
                left_out += 1
            else:
                writer.write(record)
                if document is not None:
                    document.add(record)
            summary.add(record)
            done_bytes += bytes_to_read(int(record["size"]), media_size)
            done_files += 1

        shown_bytes = 0

        def told() -> None:
            # The bytes of the files done, and of those the workers are reading (a batch's
            # answer takes minutes for a file of a hundred gigabytes). Never less than told
            # before: a batch just answered is in neither count for a moment.
            nonlocal shown_bytes
            shown_bytes = max(shown_bytes, done_bytes + pool.reading())
            progress("analysing", shown_bytes, seen[1])
            progress("files", done_files, seen[0])

        def on_done(batch: list[list[Any]], records: list[dict[str, Any]]) -> None:
            for record in records:
                take(record)
            told()

        def on_failed(batch: list[list[Any]], reason: str) -> None:
            if len(batch) > 1:
                retry.extend(batch)  # find the file that did it, one by one
                return
            take(error_record(batch[0], reason.splitlines()[0]))
            told()

        pool = IsolatedPool(
            options.processes, init_worker, (detected, options), process_batch, options.memory_limit
        )
        cleanup.callback(pool.close)
        try:
            # Analysis has begun: said now, not when the first batch is done (minutes, for a
            # batch of large files), so that a run stops showing "preparing" or "verifying".
            told()
            batches = _told_as_handed_out(_batches(_tail(spool, walker), options, seen, media_size), told)
            # Told again while no batch comes back, so that a run's cancelling (or its worker's
            # stopping) is seen within a fraction of a second, not when a slow batch ends.
            pool.run(((b, _deadline(b, options, media_size)) for b in batches), on_done, on_failed, told)
            if retry:
                alone = (([row], _deadline([row], options, media_size)) for row in list(retry))
                pool.run(alone, on_done, on_failed, told)
            walked = walker.result(lambda n: progress("walking", n, 0))
        except ChildFailed as exc:
            raise CorruptImageError(f"{path.name}: the file-system walk failed: {exc}") from exc
        except WorkerInitError as exc:
            raise CorruptImageError(f"{path.name}: analysis workers could not open the image: {exc}") from exc
        pool.close()  # the analysis processes are done: free their memory now (closing twice is safe)
        writer.close()
        if not [p for p in walked["partitions"] if p["status"] == "ok"]:
            reasons = "; ".join(p["reason"] for p in walked["partitions"] if p["reason"]) or "none found"
            raise UnsupportedFormatError(f"{path.name}: no readable partition or file system ({reasons})")

        finished = utcnow()
        result = summary.to_dict()
        result.update(
            {
                "image": image,
                "volume_system": walked["volume_system"],
                "partitions": walked["partitions"],
                "walk_problems": walked["problems"],
                "known_left_out": left_out,
                "provenance": {
                    "versions": versions(),
                    "options": options.provenance(),
                    "started": started.isoformat().replace("+00:00", "Z"),
                    "finished": finished.isoformat().replace("+00:00", "Z"),
                    "seconds": round((finished - started).total_seconds(), 3),
                },
            }
        )
        if document is not None:
            document.finish(result)
        completed = True
    return ScanResult(result, listing)
