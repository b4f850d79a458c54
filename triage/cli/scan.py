"""``triage scan``: triage one image from the command line, no server needed."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from triage.analysis.hashers import ALGORITHMS, algorithm_for
from triage.analysis.hashsets import HashSetKind, load_hashset
from triage.analysis.hashsets.records import HEX
from triage.analysis.yarascan import compile_rules, rule_files
from triage.cli.output import hashset_progress
from triage.errors import (
    CorruptImageError,
    EvidenceError,
    HashSetError,
    IntegrityError,
    InvalidInputError,
    RulesError,
    UnsupportedFormatError,
)
from triage.evidence.formats import DetectedImage, detect
from triage.evidence.names import xml_safe
from triage.evidence.paths import each_once, not_usable, same_file, shown
from triage.forking import start_fork_server
from triage.scan import ScanOptions, scan_image
from triage.scan.outputs import written_in_place

DEFAULT_CACHE = Path.home() / ".cache" / "htcu-triage" / "hashsets"


class ExitCode(IntEnum):
    """One status for each kind of failure, so scripts can tell them apart."""

    ok = 0
    failed = 1  # anything else, such as an output folder that cannot be written
    usage = 2  # typer's own for bad options
    unreadable_image = 3
    integrity_mismatch = 4
    bad_hashset = 5
    bad_rules = 6


def _die(code: ExitCode, message: str) -> typer.Exit:
    # The message can hold bytes of the evidence or of a hash set (a name, a damaged SQLite
    # schema): control characters go to the terminal written as \xHH, not as themselves.
    print(f"triage scan: {xml_safe(message).splitlines()[0]}", file=sys.stderr)
    return typer.Exit(int(code))


def _not_written(exc: OSError, target: Path | None = None) -> typer.Exit:
    """Exit status 1 with one line naming the result that could not be written, and why."""
    name = target or (Path(exc.filename) if exc.filename else None)
    where = shown(name) if name else "the results"
    return _die(ExitCode.failed, f"{where}: cannot be written: {exc.strerror or exc}")


def _cache_not_usable(exc: OSError, cache: Path) -> typer.Exit:
    """Status 1 with one line: a hash set's index could not be kept in ``cache`` (a file there,
    no permission, a full disk). It was a traceback. (``load_hashset`` reports a hash set it
    cannot read as a ``HashSetError``.)"""
    return _die(
        ExitCode.failed,
        f"{shown(cache)}: cannot keep the indexed hash sets there (--hashset-cache, "
        f"TRIAGE_HASHSET_CACHE): {_folder_problem(cache, exc)}",
    )


def _folder_problem(folder: Path, exc: OSError) -> str:
    """Why ``folder`` could not be made or written: "not a folder" where the system says "File
    exists" (a file, or a device, has that name), else the system's words."""
    try:
        if folder.exists() and not folder.is_dir():
            return "not a folder"
    except OSError:
        pass
    return exc.strerror or str(exc)


def _check_writable(target: Path) -> None:
    """Fail before the scan, not after it, when a result cannot be written to ``target``."""
    existed = target.exists()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a"):
            pass
    except OSError as exc:
        raise _not_written(exc, target) from None
    if not existed:
        target.unlink()


RESULT_FILES = ("files.jsonl", "summary.json", "dfxml.xml")


def _staged(result: Path) -> Path:
    """Where ``result`` is written until the scan has succeeded: a hidden name beside it, so
    that a scan that fails or is interrupted (its partial files are removed) leaves the
    results of an earlier scan there as they were, under --overwrite too, never some of them
    replaced or gone and its summary describing files no longer there. A device or a pipe
    (``/dev/null``) is written to directly."""
    if written_in_place(result):
        return result
    return result.with_name(f".{result.name}.partial")


def _discard_staged(result: Path) -> None:
    """Remove what was staged for ``result`` (never ``result`` itself: it may be a device)."""
    staged = _staged(result)
    if staged != result:
        staged.unlink(missing_ok=True)


def _put_in_place(result: Path) -> None:
    """The staged ``result`` in its own name (replacing an earlier scan's)."""
    staged = _staged(result)
    if staged != result:
        staged.replace(result)


def _refuse_earlier_results(out: Path | None, dfxml: Path | None) -> None:
    """Exit status 1 if ``out`` or ``dfxml`` holds an earlier scan's results: replaced in
    silence, they would be lost (perhaps another image's), or left half replaced by a scan
    that then failed."""
    places = [out / name for name in RESULT_FILES] if out is not None else []
    found = [place for place in [*places, dfxml] if place is not None and _is_file(place)]
    if found:
        raise _die(
            ExitCode.failed,
            f"{shown(found[0])}: holds an earlier scan's results; give another place, or --overwrite",
        )


def _refuse_writing_over_inputs(
    out: Path | None, dfxml: Path | None, detected: DetectedImage, hashsets: list[Path], rules: list[Path]
) -> None:
    """Exit status 1 if a result would be written over a file the scan reads: the image (any of
    its segments), a hash set or a rule file, named as it is or through a link. ``--dfxml
    IMAGE --overwrite`` replaced a raw image with its own DFXML, and a result named after a
    later segment of an E01 replaced that segment."""
    segments = list(detected.segments)
    inputs = [
        (segments[:1], "the image this scan reads"),
        (segments[1:], "a segment of the image this scan reads"),
        (hashsets, "a hash set this scan reads"),
        (rules, "a rule file this scan reads"),
    ]
    places = [out / name for name in RESULT_FILES] if out is not None else []
    for place in [*places, *([dfxml] if dfxml is not None else [])]:
        for paths, kind in inputs:
            # The staged name too: it is opened for writing, and truncated, before the swap.
            if same_file(place, paths) or same_file(_staged(place), paths):
                raise _die(
                    ExitCode.failed,
                    f"{shown(place)}: is {kind}; results are never written over evidence or "
                    "the scan's other inputs: give another place for them",
                )


def _refuse_clashing_results(out: Path | None, dfxml: Path | None) -> None:
    """Exit status 1 if ``--dfxml`` names the listing or the summary that ``--out`` writes: the
    DFXML was copied over it once the scan had put it in place, and the listing was lost."""
    if out is None or dfxml is None:
        return
    for name in ("files.jsonl", "summary.json"):
        place = out / name
        if dfxml.resolve() == place.resolve() or same_file(dfxml, [place]):
            raise _die(
                ExitCode.failed,
                f"{shown(dfxml)}: is where --out writes {name}; give --dfxml another place "
                "(--out writes dfxml.xml as well)",
            )


def _hash_sets(known_bad: list[Path], known_good: list[Path]) -> list[tuple[Path, HashSetKind | None]]:
    """The hash sets to load, each file once for each use (``None``: as its format says,
    known-bad but NSRL): one given twice, under two names or through a link, gave every file it
    knows two hits, and the summary's count of hits twice the files."""
    return [(p, None) for p in each_once(known_bad)] + [
        (p, HashSetKind.known_good) for p in each_once(known_good)
    ]


def _is_file(path: Path) -> bool:
    """Whether results could be there: a regular file (``/dev/null``, a pipe or ``/dev/stdout``
    never holds any, even with standard output sent to a file)."""
    try:
        return path.is_file() and not written_in_place(path)
    except OSError:  # a name too long, say: reported when the results are written
        return False


def _is_standard_output(path: Path) -> bool:
    """Whether ``path`` is where standard output goes (``/dev/stdout``, ``-``). Descriptor 1
    itself is asked: with standard output closed (`>&-`) Python's ``sys.stdout`` is None."""
    try:
        return os.path.samestat(path.stat(), os.fstat(1))
    except (OSError, ValueError):
        return False


def _copy_in_place(source: Path, target: Path) -> None:
    """``source`` appended to ``target``, a device, a pipe or a descriptor (``copyfile``
    refuses a pipe, and would empty a file standard output is appended to)."""
    with source.open("rb") as src, target.open("ab") as dst:
        shutil.copyfileobj(src, dst)


SHOWN_PROBLEMS = 20


def _tell_walk_problems(problems: list[dict[str, Any]], err: bool) -> None:
    """What the walk could not reach (a truncated image, an unreadable directory, a loop cut
    off): listed after the summary line, so that no one takes "0 error(s)" for the whole
    story; all of them are in summary.json."""
    for problem in problems[:SHOWN_PROBLEMS]:
        typer.echo(
            f"walk problem: partition {problem['partition']} {problem['path']}: {problem['reason']}", err=err
        )
    if len(problems) > SHOWN_PROBLEMS:
        typer.echo(f"walk problems: {len(problems) - SHOWN_PROBLEMS} more (see summary.json)", err=err)


def _parse_expect(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        algo, _, digest = value.partition(":")
        if not digest:
            digest, algo = algo, algorithm_for(algo) or ""
        algo = algo.lower().replace("-", "")
        if algo not in ALGORITHMS or algorithm_for(digest) != algo or not HEX.match(digest):
            raise typer.BadParameter(f"{value!r}: give ALGO:HEX or a bare MD5/SHA-1/SHA-256 hex digest")
        if out.get(algo, digest.lower()) != digest.lower():
            # The last one given was taken: a wrong acquisition hash followed by the right one
            # was "verified".
            raise typer.BadParameter(
                f"two different {algo.upper()} acquisition hashes given: {out[algo]}, {digest}"
            )
        out[algo] = digest.lower()
    return out


def scan(
    image: Annotated[Path, typer.Argument(help="first segment of the image (.dd, .raw, .001, .E01, ...)")],
    hashset: Annotated[
        list[Path] | None,
        typer.Option("--hashset", help="known-bad hash set (NSRL is known-good); repeatable"),
    ] = None,
    known_good: Annotated[
        list[Path] | None,
        typer.Option("--known-good", help="hash set of known files to leave out; repeatable"),
    ] = None,
    rules: Annotated[
        list[Path] | None, typer.Option("--rules", help="YARA rule file or folder; repeatable")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="write files.jsonl, summary.json and dfxml.xml here"),
    ] = None,
    dfxml: Annotated[
        Path | None, typer.Option("--dfxml", help="write just the DFXML to this file (-: standard output)")
    ] = None,
    deleted: Annotated[
        bool, typer.Option("--deleted", help="also deleted files whose metadata is readable")
    ] = False,
    omit_known: Annotated[
        bool,
        typer.Option(
            "--omit-known",
            help="leave files a hash set knows (and nothing else found) out of the listing and DFXML; "
            "they are still counted",
        ),
    ] = False,
    expect_hash: Annotated[
        list[str] | None,
        typer.Option("--expect-hash", help="acquisition hash, ALGO:HEX; repeatable"),
    ] = None,
    hash_image: Annotated[
        bool, typer.Option("--hash-image", help="hash the whole image even with nothing to compare")
    ] = False,
    processes: Annotated[int, typer.Option(min=0, max=64, help="analysis processes (0: one per core)")] = 0,
    yara_timeout: Annotated[int, typer.Option(min=1, help="seconds per file")] = 30,
    yara_max_size: Annotated[
        int, typer.Option(min=1, help="files larger than this (bytes) are not YARA-scanned")
    ] = 64 * 1024 * 1024,
    hashset_cache: Annotated[
        Path, typer.Option(envvar="TRIAGE_HASHSET_CACHE", help="where indexed hash sets are kept")
    ] = DEFAULT_CACHE,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace the results of an earlier scan in --out / --dfxml")
    ] = False,
) -> None:
    """Hash every file of IMAGE, look each up in hash sets and scan it with YARA.

    Exit status: 0 success, 3 unreadable image, 4 integrity mismatch, 5 bad hash set, 6 bad rules,
    1 anything else (such as an output folder that cannot be made, a result named as the image or
    another input, which is never written over, or results of an earlier scan where this one's
    would go, unless --overwrite); stopped by a signal, 128 plus its number (Ctrl-C 130, SIGTERM
    143, SIGHUP 129), its partial results removed.
    """
    if dfxml == Path("-"):
        dfxml = Path("/dev/stdout")
    if (problem := not_usable(image)) is not None:
        raise _die(ExitCode.unreadable_image, f"{shown(image)}: {problem}")
    try:
        detected = detect(image)
    except (EvidenceError, InvalidInputError) as exc:
        raise _die(ExitCode.unreadable_image, str(exc)) from None
    try:
        rule_paths = rule_files(list(rules)) if rules else []
    except RulesError as exc:
        raise _die(ExitCode.bad_rules, str(exc)) from None
    # Where the results go is checked before any long work (indexing an NSRL-size set).
    _refuse_writing_over_inputs(out, dfxml, detected, [*(hashset or []), *(known_good or [])], rule_paths)
    _refuse_clashing_results(out, dfxml)
    if not overwrite:
        _refuse_earlier_results(out, dfxml)
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _die(
                ExitCode.failed, f"{shown(out)}: cannot write the results there: {_folder_problem(out, exc)}"
            ) from None
    if dfxml is not None:
        _check_writable(dfxml)
    # Started already by the `triage` command (``triage.launch``); this makes sure of it for
    # callers that come here another way. It loads the analysis modules meanwhile.
    start_fork_server()
    options = ScanOptions(
        include_deleted=deleted,
        omit_known=omit_known,
        expect_hashes=_parse_expect(expect_hash or []),
        hash_image=hash_image,
        yara_timeout=yara_timeout,
        yara_max_size=yara_max_size,
    )
    if processes:
        options.processes = processes
    show = sys.stderr.isatty()
    with Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        transient=True,
        disable=not show,
    ) as bar:
        task = bar.add_task("opening", total=None)

        def counting(text: str) -> None:
            bar.update(task, description=text, total=None, completed=0)

        # A set seen for the first time is indexed: minutes for one of NSRL's size.
        for path, kind in _hash_sets(hashset or [], known_good or []):
            try:
                told = hashset_progress(path.name, counting)
                options.hashsets.append(load_hashset(path, hashset_cache, kind=kind, progress=told))
            except HashSetError as exc:
                raise _die(ExitCode.bad_hashset, str(exc)) from None
            except OSError as exc:
                raise _cache_not_usable(exc, hashset_cache) from None
        if rules:
            counting("compiling the rules")
            try:
                options.rules = compile_rules(list(rules))
            except RulesError as exc:
                raise _die(ExitCode.bad_rules, str(exc)) from None

        folder = out or Path(tempfile.mkdtemp(prefix="triage-scan-"))
        listing = _staged(folder / "files.jsonl") if out else folder / "files.jsonl"
        document = out / "dfxml.xml" if out else dfxml
        counting("opening")

        def progress(phase: str, done: int, total: int) -> None:
            if phase == "walking":
                counting(f"walking ({done} files)")
            elif phase == "files":
                bar.update(task, description=f"analysing: {done:,} of {total:,} files found so far")
            else:
                bar.update(task, description=phase, total=total or None, completed=done)

        try:
            try:
                result = scan_image(
                    detected, options, listing, progress, dfxml=_staged(document) if document else None
                )
            except BaseException:
                if out is None:  # a failed scan leaves no listing, nor the folder made for it
                    shutil.rmtree(folder, ignore_errors=True)
                raise
        except IntegrityError as exc:
            raise _die(ExitCode.integrity_mismatch, str(exc)) from None
        except (CorruptImageError, UnsupportedFormatError, EvidenceError, InvalidInputError) as exc:
            raise _die(ExitCode.unreadable_image, str(exc)) from None
        except OSError as exc:  # the image was readable: writing a result failed (disk full, ...)
            raise _not_written(exc, None if exc.filename else (out or dfxml or folder)) from None
    summary = result.summary
    try:
        if out:
            _staged(out / "summary.json").write_text(json.dumps(summary, indent=2))
            for name in RESULT_FILES:
                _put_in_place(out / name)
        if dfxml:
            if out and written_in_place(dfxml):
                _copy_in_place(out / "dfxml.xml", dfxml)
            elif out:
                shutil.copyfile(out / "dfxml.xml", _staged(dfxml))
            _put_in_place(dfxml)
    except OSError as exc:
        for place in [*(out / name for name in RESULT_FILES if out), *([dfxml] if dfxml else [])]:
            _discard_staged(place)
        raise _not_written(exc) from None
    # With the DFXML on standard output, what is said for people goes to standard error, so the
    # document stays whole (the summary line followed its closing tag).
    err = dfxml is not None and _is_standard_output(dfxml)
    typer.echo(
        f"{summary['files']} files, {summary['bytes']} bytes in {len(summary['partitions'])} partition(s); "
        f"{summary['alert_files']} alert(s), {summary['known_files']} known"
        f"{' (left out of the listing)' if omit_known and summary['known_left_out'] else ''}, "
        f"{sum(summary['yara_hits'].values())} YARA hit(s), {summary['yara_incomplete']} YARA incomplete, "
        f"{summary['errors']} error(s); integrity: {summary['image']['integrity']}",
        err=err,
    )
    _tell_walk_problems(summary["walk_problems"], err)
    if out:
        typer.echo(f"results in {out}", err=err)
    elif not dfxml:
        typer.echo(f"file listing in {listing}")
