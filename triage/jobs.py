"""The triage job, the same for the local worker, Celery and RQ: ``execute_run(run_id)``.

Like Turbinia's task wrapper it catches everything, stores the error in the run and always
closes the run; unlike it, everything it reads comes from the run row and Settings passed in.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sqlite3
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from triage import audit, custody, hooks, queue, registry, runs  # noqa: F401 - queue registers rescoring
from triage.analysis.hashers import ALGORITHMS
from triage.analysis.hashsets.store import ensure_filter
from triage.context import system_context
from triage.db import make_engine, session_scope
from triage.errors import HashSetError, IntegrityError, TriageError
from triage.evidence.paths import shown
from triage.models.exhibits import Exhibit, ExhibitState
from triage.models.images import EvidenceImage, VerificationState
from triage.models.runs import HashSetRecord, RuleSetRecord, RunState, TriageHit, TriageRun
from triage.models.types import utcnow
from triage.scan import ScanOptions, scan_image
from triage.scan.outputs import read_jsonl
from triage.settings import Settings, get_settings

log = logging.getLogger("triage.jobs")


class RunAborted(Exception):
    """The run was cancelled or its lease lost; stop without writing results."""


class WorkerStopping(Exception):
    """The worker was asked to stop: the run goes back to the queue (``runs.release``)."""


class RunTimeLimit(TriageError):
    """The run took longer than TRIAGE_RUN_TIME_LIMIT_SECONDS (whatever the backend)."""


def worker_identity(backend: str) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{backend}"


PROGRESS_SECONDS = 2.0  # a running scan's progress reaches its run's row at least this often


def beat_every(lease_seconds: float) -> float:
    """Seconds between a run's heartbeats: a third of the lease keeps the lease, and the
    progress a page shows wants them more often than that (with the default 60 s lease the
    bar moved every 20 s)."""
    return max(0.2, min(lease_seconds / 3, PROGRESS_SECONDS))


class _Heartbeat(threading.Thread):
    """Renews the lease and publishes progress while the scan runs."""

    def __init__(self, engine: Engine, claim: runs.Claim, settings: Settings) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{claim.run_id}")
        self.engine, self.claim, self.settings = engine, claim, settings
        self.progress: dict[str, Any] = {}
        self.lost = threading.Event()
        self.stopped = threading.Event()

    def beat(self) -> None:
        with session_scope(self.engine) as session:
            if not runs.heartbeat(session, self.claim, self.settings.run_lease_seconds, dict(self.progress)):
                self.lost.set()

    def run(self) -> None:
        interval = beat_every(self.settings.run_lease_seconds)
        while not self.stopped.wait(interval):
            try:
                self.beat()
            except Exception:  # noqa: BLE001 - a database blip must not kill the scan; the lease decides
                log.exception("run_id=%s heartbeat failed", self.claim.run_id)


def _options(
    session: Session, run: TriageRun, settings: Settings
) -> tuple[ScanOptions, RuleSetRecord | None]:
    """The scan's options from the run's rows, and its rule set (compiled later, by
    ``_prepare``, outside the transaction)."""
    options = ScanOptions(
        yara_timeout=settings.yara_timeout_seconds, yara_max_size=settings.yara_max_file_bytes
    )
    if settings.scan_processes:
        options.processes = settings.scan_processes
    for hashset_id in run.hashset_ids:
        record = session.get(HashSetRecord, hashset_id)
        if record is not None:
            options.hashsets.append(registry.hashset_info(record, settings))
    ruleset = session.get(RuleSetRecord, run.ruleset_id) if run.ruleset_id is not None else None
    image = session.get(EvidenceImage, run.image_id)
    assert image is not None
    for algo in ALGORITHMS:
        value = getattr(image, f"acquisition_{algo}")
        if value:
            options.expect_hashes[algo] = value
    return options, ruleset


def progress_update(phase: str, done: int, total: int) -> dict[str, Any]:
    """What a scan's report of its progress (``scan.engine.Progress``) changes on its run's row,
    which the heartbeat writes: "files" the files done and listed so far (they stayed 0 until
    the run ended), "walking" the files listed once the walk is over, the other phases the
    bytes done and the run's state."""
    if phase == "files":
        return {"files_done": done, "files_total": total}
    if phase == "walking":
        return {"phase": phase, "files_total": done}
    state = RunState.verifying if phase == "verifying" else RunState.running
    return {"phase": phase, "bytes_done": done, "bytes_total": total, "state": state}


def _prepare(options: ScanOptions, ruleset: RuleSetRecord | None, heart: _Heartbeat) -> None:
    """What may take long before the scan: compiling the rule set (once per process; a large
    public set takes seconds) and giving each hash set its Bloom filter if it has none (one
    registered before filters existed, or whose filter was lost: for a set of NSRL size a
    minute or more). It runs after the heartbeat has started and outside any transaction: a
    lease that ran out meanwhile would hand the run to another worker, which would start the
    same work, and on SQLite an open write transaction locks the database for everyone."""
    heart.progress["phase"] = "preparing"
    if not options.expect_hashes:  # no acquisition hash to check: not "verifying", as claimed
        heart.progress["state"] = RunState.running
    if ruleset is not None:
        options.rules = registry.load_ruleset(ruleset, heart.settings)
    for info in options.hashsets:
        if not Path(info.store).is_file():  # else each analysis process fails on it, obscurely
            raise HashSetError(
                f"hash set {info.name}: its index is missing ({shown(info.store)}); "
                "`triage db check --repair` builds it again from the kept copy"
            )
        started = time.monotonic()
        try:
            built = ensure_filter(info.store, info.entries)
        except (OSError, sqlite3.Error) as exc:  # it speeds lookups up; the run goes on without
            log.warning("hash set %s: no Bloom filter could be built (%s)", info.name, exc)
            continue
        if built:
            log.info(
                "hash set %s: Bloom filter of %s digests built in %.1f s",
                info.name,
                info.entries,
                time.monotonic() - started,
            )


def _hits(listing: Path, run_id: int) -> list[dict[str, Any]]:
    """The hits in a run's listing, as TriageHit fields but the case (read with the run's
    final write, as an exhibit may have moved). Read before that transaction opens."""
    hits = []
    for record in read_jsonl(listing):
        common = dict(
            run_id=run_id,
            partition=record["partition"],
            path=record["path"],
            inode=record["inode"],
            size=record["size"],
            md5=record["md5"],
            sha1=record["sha1"],
            sha256=record["sha256"],
            mime=record["mime"],
        )
        for hit in record["hashset_hits"]:
            if hit["kind"] == "known_bad":
                hits.append(
                    dict(
                        source="hashset",
                        name=hit["set"],
                        category=hit["category"],
                        alert=hit["alert"],
                        **common,
                    )
                )
        for match in (record.get("yara") or {}).get("matches", []):
            hits.append(dict(source="yara", name=match["rule"], category=",".join(match["tags"]), **common))
    return hits


def _finish(
    engine: Engine,
    claim: runs.Claim,
    state: RunState,
    error: str = "",
    summary: dict[str, Any] | None = None,
    listing: Path | None = None,
    recorded_as: tuple[str, str | None] | None = None,
) -> bool:
    """Write the outcome in one transaction, fenced by the claim. False if the run is no longer ours.
    A success reads its hits from ``listing`` and records it and the DFXML by the names in
    ``recorded_as`` (see ``Settings.artifact_name``)."""
    ctx = system_context()
    succeeded = state == RunState.succeeded and listing is not None
    hits = _hits(listing, claim.run_id) if succeeded and listing is not None else []
    with session_scope(engine) as session:
        run = runs.owned(session, claim)
        if run is None:
            return False
        before = audit.snapshot(run, exclude={"summary", "provenance"})
        exhibit = session.get(Exhibit, run.exhibit_id)
        image = session.get(EvidenceImage, run.image_id)
        assert exhibit is not None and image is not None
        # A later attempt replaces an earlier one: no hit is ever stored twice.
        session.execute(delete(TriageHit).where(TriageHit.run_id == run.id))  # type: ignore[arg-type]
        run.state, run.error, run.finished_at = state, error, utcnow()
        run.lease_expires_at = None
        if summary is not None:
            run.provenance = summary.pop("provenance", None)
            run.summary = summary
            run.files_total = run.files_done = int(summary.get("files", 0))
            run.bytes_total = run.bytes_done = int(summary.get("bytes", 0))
            run.phase = "done"
        if succeeded:
            if hits:  # one multi-row statement: as ORM objects, 50,000 hits took 10 s, not 1
                session.execute(insert(TriageHit), [{"case_id": exhibit.case_id, **hit} for hit in hits])
            run.listing_path, run.dfxml_path = recorded_as or (None, None)
            computed = (summary or {}).get("image", {}).get("computed_hashes") or {}
            if computed:
                image.computed_md5, image.computed_sha1 = computed.get("md5"), computed.get("sha1")
                image.computed_sha256 = computed.get("sha256")
            if (summary or {}).get("image", {}).get("integrity") == "verified":
                image.verification_state, image.verified_at = VerificationState.verified, utcnow()
            custody.transition(session, ctx, exhibit, ExhibitState.triaged, f"triage run {run.id} succeeded")
            custody.transition(
                session,
                ctx,
                exhibit,
                ExhibitState.awaiting_examination,
                f"triage run {run.id} done; queued for examination",
            )
        elif state == RunState.integrity_failed:
            image.verification_state, image.verified_at = VerificationState.failed, utcnow()
            custody.flag_integrity(
                session, ctx, exhibit, "exhibit.integrity_flag", run_id=run.id, error=error
            )
            custody.transition(session, ctx, exhibit, ExhibitState.imaged, f"run {run.id}: {error}")
        elif ExhibitState(exhibit.state) in (ExhibitState.triaging, ExhibitState.triage_queued):
            custody.transition(
                session, ctx, exhibit, ExhibitState.imaged, f"triage run {run.id} {state.value}"
            )
        session.add_all([run, image])
        session.flush()
        audit.record(
            session,
            ctx,
            f"run.{state.value}",
            "triage_run",
            run.id,
            before,
            audit.snapshot(run, exclude={"summary", "provenance"}),
        )
        if state == RunState.succeeded:
            hooks.triage_result_stored(session, exhibit.case_id)
    return True


def execute_run(
    run_id: int,
    worker_id: str,
    settings: Settings | None = None,
    engine: Engine | None = None,
    stop: threading.Event | None = None,
) -> RunState | None:
    """Claim run ``run_id`` and triage its image. Returns the final state, or None when the
    run was not ours to take (already taken, finished or cancelled: a duplicate delivery) or
    was given back because the worker is stopping: ``stop`` set (the local worker's), or
    Ctrl-C or ``SystemExit`` in its thread, which then go on up."""
    settings = settings or get_settings()
    own_engine = engine is None
    engine = engine or make_engine(settings.database_url)
    try:
        return _execute(run_id, worker_id, settings, engine, stop or threading.Event())
    finally:
        if own_engine:
            engine.dispose()


def _execute(
    run_id: int, worker_id: str, settings: Settings, engine: Engine, stop: threading.Event
) -> RunState | None:
    with session_scope(engine) as session:
        claim = runs.claim(session, run_id, worker_id, settings.run_lease_seconds)
    if claim is None:
        log.info("run_id=%s not claimable by %s; skipped", run_id, worker_id)
        return None
    log.info("run_id=%s attempt=%s claimed by %s", run_id, claim.attempt, worker_id)
    workdir = Path(settings.artifact_dir) / "runs" / str(run_id) / f"attempt-{claim.attempt}"
    heart = _Heartbeat(engine, claim, settings)
    try:
        with session_scope(engine) as session:
            run = session.get(TriageRun, run_id)
            assert run is not None
            image = session.get(EvidenceImage, run.image_id)
            exhibit = session.get(Exhibit, run.exhibit_id)
            assert image is not None and exhibit is not None
            if ExhibitState(exhibit.state) == ExhibitState.triage_queued:
                custody.transition(
                    session,
                    system_context(),
                    exhibit,
                    ExhibitState.triaging,
                    f"triage run {run_id} attempt {claim.attempt} started",
                )
            options, ruleset = _options(session, run, settings)
            image_path = Path(image.path)
        heart.start()
        deadline = time.monotonic() + settings.run_time_limit_seconds
        _prepare(options, ruleset, heart)

        def progress(phase: str, done: int, total: int) -> None:
            if stop.is_set():
                raise WorkerStopping()
            if heart.lost.is_set():
                raise RunAborted("run cancelled or lease lost")
            if time.monotonic() > deadline:
                raise RunTimeLimit(f"run time limit of {settings.run_time_limit_seconds} s exceeded")
            heart.progress.update(progress_update(phase, done, total))

        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True, exist_ok=True)
        listing = workdir / "files.jsonl.gz"
        dfxml = workdir / "dfxml.xml"
        result = scan_image(image_path, options, listing, progress, dfxml=dfxml)
        heart.stopped.set()
        recorded_as = (settings.artifact_name(listing), settings.artifact_name(dfxml))
        if not _finish(
            engine,
            claim,
            RunState.succeeded,
            summary=dict(result.summary),
            listing=listing,
            recorded_as=recorded_as,
        ):
            log.warning(
                "run_id=%s attempt=%s lost before its results were stored; discarded", run_id, claim.attempt
            )
            return None
        _clean_old_attempts(workdir)
        log.info("run_id=%s attempt=%s succeeded: %s files", run_id, claim.attempt, result.summary["files"])
        return RunState.succeeded
    except (WorkerStopping, KeyboardInterrupt, SystemExit) as exc:
        _give_back(engine, claim, heart, workdir)
        if isinstance(exc, WorkerStopping):
            return None
        raise
    except RunAborted:
        heart.stopped.set()
        with session_scope(engine) as session:
            cancelled = session.exec(select(TriageRun.cancel_requested).where(TriageRun.id == run_id)).one()
        if cancelled:
            _finish(engine, claim, RunState.cancelled, "cancelled while running")
            return RunState.cancelled
        return None
    except IntegrityError as exc:
        heart.stopped.set()
        shutil.rmtree(workdir, ignore_errors=True)
        log.warning("run_id=%s integrity failed: %s", run_id, exc)
        _finish(engine, claim, RunState.integrity_failed, str(exc))
        return RunState.integrity_failed
    except TriageError as exc:
        heart.stopped.set()
        log.warning("run_id=%s failed: %s", run_id, exc)
        _finish(engine, claim, RunState.failed, str(exc))
        return RunState.failed
    except OSError as exc:  # the evidence is read in child processes: this is the results' disk
        heart.stopped.set()
        shutil.rmtree(workdir, ignore_errors=True)
        log.error("run_id=%s results not written: %s", run_id, exc)
        where = shown(exc.filename) if exc.filename else str(workdir)
        _finish(
            engine,
            claim,
            RunState.failed,
            f"the results could not be written ({exc.strerror or exc}): {where}",
        )
        return RunState.failed
    except Exception as exc:  # noqa: BLE001 - stored with its traceback, never lost
        heart.stopped.set()
        log.exception("run_id=%s crashed", run_id)
        _finish(engine, claim, RunState.failed, f"internal error: {exc}\n{traceback.format_exc(limit=5)}")
        return RunState.failed
    finally:
        heart.stopped.set()


def _give_back(engine: Engine, claim: runs.Claim, heart: _Heartbeat, workdir: Path) -> None:
    """The worker is stopping with the run under way: its heartbeat ends, the run goes back to
    the queue at once (``runs.release``) and what the attempt wrote is removed."""
    heart.stopped.set()
    if heart.is_alive():
        heart.join()  # no beat of this attempt after the release
    with session_scope(engine) as session:
        state = runs.release(session, claim)
    if state is not None:  # else its results may be stored already (Ctrl-C just after): kept
        shutil.rmtree(workdir, ignore_errors=True)
    now = state.value if state else "no longer this worker's"
    log.warning("run_id=%s attempt=%s given back as its worker stops: %s", claim.run_id, claim.attempt, now)


def _clean_old_attempts(current: Path) -> None:
    for other in current.parent.glob("attempt-*"):
        if other != current:
            shutil.rmtree(other, ignore_errors=True)
