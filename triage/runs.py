"""Triage runs: starting, claiming with a lease, heartbeats, the sweeper, cancelling.

The database row is the truth for every run; brokers only carry run ids. A worker owns a
run while its lease holds; every write it makes is fenced by the attempt number it claimed
with, so a worker that was presumed dead cannot overwrite the work of its successor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, update
from sqlmodel import Session, col, select

from triage import audit, custody, registry
from triage.context import Context, system_context
from triage.db import database_now
from triage.errors import ConflictError, FieldValidationError
from triage.models.accounts import Role
from triage.models.exhibits import Exhibit, ExhibitState
from triage.models.images import EvidenceImage
from triage.models.runs import (
    ACTIVE_RUN_STATES,
    HashSetRecord,
    RuleSetRecord,
    RunStart,
    RunState,
    TriageRun,
)
from triage.models.types import utcnow

RUN_STARTERS = (Role.admin, Role.manager, Role.examiner)

# A run's progress before any attempt has told its own.
NO_PROGRESS: dict[str, int] = {"bytes_done": 0, "bytes_total": 0, "files_done": 0, "files_total": 0}


@dataclass(frozen=True)
class Claim:
    """What a worker holds: the run id and the attempt its writes are fenced with."""

    run_id: int
    attempt: int
    worker_id: str


def active_run(session: Session, exhibit_id: int) -> TriageRun | None:
    return session.exec(
        select(TriageRun).where(
            TriageRun.exhibit_id == exhibit_id, col(TriageRun.state).in_(ACTIVE_RUN_STATES)
        )
    ).first()


def start_run(
    session: Session, ctx: Context, exhibit: Exhibit, data: RunStart, max_attempts: int
) -> TriageRun:
    """Queue a run for the exhibit's image (409 without an image or with a run in progress)."""
    if ctx.actor is not None:
        ctx.require(*RUN_STARTERS)
    if data.image_id is not None:
        image = session.get(EvidenceImage, data.image_id)
        if image is None or image.exhibit_id != exhibit.id:
            raise FieldValidationError("image_id", f"image {data.image_id} is not an image of this exhibit")
    else:
        image = session.exec(
            select(EvidenceImage)
            .where(EvidenceImage.exhibit_id == exhibit.id)
            .order_by(col(EvidenceImage.id).desc())
        ).first()
        if image is None:
            raise ConflictError("this exhibit has no evidence image to triage")
    if active_run(session, exhibit.id or 0) is not None:
        raise ConflictError("a triage run for this exhibit is already queued or running")
    hashset_ids: list[int]
    if data.hashset_ids is None:
        active_sets = session.exec(select(HashSetRecord.id).where(col(HashSetRecord.active))).all()
        hashset_ids = [h for h in active_sets if h is not None]
    else:
        hashset_ids = data.hashset_ids
        known = session.exec(select(HashSetRecord.id).where(col(HashSetRecord.id).in_(hashset_ids))).all()
        unknown = sorted(set(hashset_ids) - {h for h in known if h is not None})
        if unknown:
            raise FieldValidationError("hashset_ids", f"unknown hash set(s): {unknown}")
    if data.ruleset_id is None:
        ruleset_id = registry.ruleset_in_use(session)
    else:
        if session.get(RuleSetRecord, data.ruleset_id) is None:
            raise FieldValidationError("ruleset_id", f"unknown rule set {data.ruleset_id}")
        ruleset_id = data.ruleset_id
    assert exhibit.id is not None and image.id is not None
    run = TriageRun(
        exhibit_id=exhibit.id,
        image_id=image.id,
        hashset_ids=[int(h) for h in hashset_ids if h is not None],
        ruleset_id=ruleset_id,
        max_attempts=max_attempts,
        requested_by=ctx.actor_id,
    )
    audit.add_created(session, ctx, run, "run.start", "triage_run")
    if ExhibitState(exhibit.state) != ExhibitState.triage_queued:
        custody.transition(session, ctx, exhibit, ExhibitState.triage_queued, f"triage run {run.id} queued")
    return run


def claim(session: Session, run_id: int, worker_id: str, lease_seconds: float) -> Claim | None:
    """Take a queued run for this worker (atomically; None if someone else has it or it is done)."""
    now = database_now(session)  # leases: one clock for every machine
    result = session.execute(
        update(TriageRun)
        .where(
            col(TriageRun.id) == run_id,
            col(TriageRun.state) == RunState.queued,
            col(TriageRun.cancel_requested).is_(False),
        )
        .values(
            state=RunState.verifying,
            worker_id=worker_id,
            attempts=TriageRun.attempts + 1,  # type: ignore[operator]
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            heartbeat_at=now,
            started_at=now,
            phase="starting",
            error="",
            **NO_PROGRESS,  # an earlier attempt's: its bar and time left would show till the first beat
        )
        .returning(col(TriageRun.attempts))
        .execution_options(synchronize_session=False)
    )
    attempt = result.scalar_one_or_none()
    return None if attempt is None else Claim(run_id, int(attempt), worker_id)


def next_queued(session: Session) -> int | None:
    """The oldest queued run (the claim itself is what is atomic)."""
    query = (
        select(TriageRun.id)
        .where(col(TriageRun.state) == RunState.queued, col(TriageRun.cancel_requested).is_(False))
        .order_by(col(TriageRun.queued_at), col(TriageRun.id))
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return session.exec(query).first()


def _fenced(claim: Claim) -> Any:
    return and_(
        col(TriageRun.id) == claim.run_id,
        col(TriageRun.attempts) == claim.attempt,
        col(TriageRun.worker_id) == claim.worker_id,
        col(TriageRun.state).in_(ACTIVE_RUN_STATES),
    )


def heartbeat(session: Session, claim: Claim, lease_seconds: float, progress: dict[str, Any]) -> bool:
    """Renew the lease and record progress. False: the run is no longer ours (lost or cancelled)."""
    now = database_now(session)  # leases: one clock for every machine
    values: dict[str, Any] = {"lease_expires_at": now + timedelta(seconds=lease_seconds), "heartbeat_at": now}
    values.update(progress)
    result = session.execute(
        update(TriageRun).where(_fenced(claim)).values(**values).execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    cancelled = session.exec(select(TriageRun.cancel_requested).where(TriageRun.id == claim.run_id)).one()
    return not cancelled


def owned(session: Session, claim: Claim) -> TriageRun | None:
    """The run row if this claim still owns it, locked for the final write."""
    query = select(TriageRun).where(_fenced(claim))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.exec(query).first()


def sweep(session: Session) -> list[tuple[int, RunState]]:
    """Return runs whose lease expired to the queue, or quarantine those that have used up
    their attempts (they keep killing workers). Returns (run id, new state) pairs."""
    now = database_now(session)  # leases: one clock for every machine
    query = select(TriageRun).where(
        col(TriageRun.state).in_([RunState.verifying, RunState.running]),
        col(TriageRun.lease_expires_at) < now,
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    changed = []
    for run in session.exec(query).all():
        lost = f"worker {run.worker_id} lost its lease during attempt {run.attempts}"
        changed.append((run.id or 0, _settle(session, run, now, lost, "run.sweep", quarantine=True)))
    return changed


def release(session: Session, claim: Claim) -> RunState | None:
    """Give back a run this worker holds because the worker is stopping (SIGTERM, Ctrl-C, the
    server it runs in shutting down): queued again at once for any worker, where it would have
    waited for its lease to lapse; cancelled if that was asked. The attempt counts, but a
    stop is not the run's fault: a released run is never quarantined. None if the run was no
    longer this claim's."""
    run = owned(session, claim)
    if run is None:
        return None
    stopped = f"worker {claim.worker_id} stopped during attempt {claim.attempt}"
    return _settle(session, run, database_now(session), stopped, "run.release", quarantine=False)


def _settle(
    session: Session, run: TriageRun, now: datetime, why: str, action: str, *, quarantine: bool
) -> RunState:
    """A run its worker no longer holds (``why``): back to the queue, cancelled if that was
    asked, or (with ``quarantine``) quarantined when it has used up its attempts. Audited as
    ``action``.<state>."""
    before = audit.snapshot(run)
    if run.cancel_requested:
        run.state, run.error, run.finished_at = RunState.cancelled, "cancelled; " + why, now
    elif quarantine and run.attempts >= run.max_attempts:
        run.state = RunState.quarantined
        run.error = f"quarantined after {run.attempts} attempts: {why} each time"
        run.finished_at = now
    else:
        run.state = RunState.queued
        run.error = why
        run.phase = ""  # waiting for a worker: not "analysing" (the pages showed "queued (analysing)")
        for name, value in NO_PROGRESS.items():
            setattr(run, name, value)
    run.worker_id, run.lease_expires_at = None, None
    ctx = system_context()
    audit.add_changed(session, ctx, run, before, f"{action}.{run.state.value}", "triage_run")
    if run.state in (RunState.quarantined, RunState.cancelled):
        _return_exhibit(session, ctx, run, f"triage run {run.id} {run.state.value}")
    return RunState(run.state)


def _return_exhibit(session: Session, ctx: Context, run: TriageRun, reason: str) -> None:
    exhibit = session.get(Exhibit, run.exhibit_id)
    if exhibit is not None and ExhibitState(exhibit.state) in (
        ExhibitState.triage_queued,
        ExhibitState.triaging,
    ):
        custody.transition(session, ctx, exhibit, ExhibitState.imaged, reason)


def cancel(session: Session, ctx: Context, run: TriageRun) -> TriageRun:
    """A queued run is cancelled at once; a running one at its next heartbeat."""
    ctx.require(*RUN_STARTERS)
    if run.state not in ACTIVE_RUN_STATES:
        raise ConflictError(
            f"run {run.id} is {run.state.value}; only queued or running runs can be cancelled"
        )
    before = audit.snapshot(run)
    run.cancel_requested = True
    if run.state == RunState.queued:
        run.state, run.finished_at = RunState.cancelled, utcnow()
        _return_exhibit(session, ctx, run, f"triage run {run.id} cancelled")
    audit.add_changed(session, ctx, run, before, "run.cancel", "triage_run")
    return run


def seconds_left(run: TriageRun) -> float | None:
    """Estimated seconds to finish, from the byte rate since the run started."""
    if run.state not in ACTIVE_RUN_STATES or not run.started_at or not run.bytes_total or not run.bytes_done:
        return None
    elapsed = (utcnow() - run.started_at).total_seconds()
    if elapsed <= 0:
        return None
    rate = run.bytes_done / elapsed
    return max(0.0, (run.bytes_total - run.bytes_done) / rate) if rate > 0 else None
