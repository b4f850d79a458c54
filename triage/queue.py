"""The examination queue: scores, overrides, tasks, claims with leases, expected dates.

Scores come from ``scoring`` (pure); this module gathers the facts, stores the results and
keeps one examination task per exhibit that is ready for examination. Claiming is atomic:
PostgreSQL skips rows other transactions have locked; SQLite transactions begin IMMEDIATE.
"""

from __future__ import annotations

import gc
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import (
    String,
    bindparam,
    cast,
    func,
    insert,
    literal,
    literal_column,
    text,
    true,
    type_coerce,
    update,
)
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

import scoring
from triage import audit, hooks, lifecycle, score_store
from triage.context import Context, system_context
from triage.errors import ConflictError, FieldValidationError
from triage.models.accounts import Account, Role
from triage.models.cases import Case
from triage.models.exhibits import CustodyEvent, Exhibit, ExhibitState
from triage.models.queue import CaseScore, ExaminationTask, OverrideCreate, PriorityOverride, TaskState
from triage.models.runs import RunState, TriageHit, TriageRun
from triage.models.types import EnumString, utcnow
from triage.models.vendors import Outsourcing, OutsourcingState

MANAGERS = (Role.admin, Role.manager)
CHILD_RULE_MARKERS = ("child", "csam", "csae", "iioc")
RATE_WEEKS = 4
# What an expected date reads when the queue has no pace to give one from.
NO_PACE = f"not known: none examined in the last {RATE_WEEKS} weeks"


@lru_cache(maxsize=4)
def policy(path: str | None = None) -> scoring.Policy:
    """The scoring policy (the packaged default, or TRIAGE_SCORING_POLICY); refused at load
    if it names an unknown factor."""
    return scoring.load(Path(path) if path else None)


# --- facts -------------------------------------------------------------------------------


# The case fields scoring reads: scoring.CaseFacts names them (it imports nothing of ours).
_FACT_FIELDS = tuple(f.name for f in fields(scoring.CaseFacts))


def case_facts(case: Case) -> scoring.CaseFacts:
    return scoring.CaseFacts(*(getattr(case, name) for name in _FACT_FIELDS))


def restriction_days_today(case: Case, now: datetime | None = None) -> int | None:
    """Days the case's family restriction has been in force (None if none is)."""
    return scoring.restriction_days(case_facts(case), (now or utcnow()).date())


def _latest_runs(session: Session, case_ids: Sequence[int] | None) -> Any:
    """The newest succeeded run of each exhibit (earlier runs are superseded)."""
    query = (
        select(func.max(TriageRun.id))
        .join(Exhibit, col(Exhibit.id) == col(TriageRun.exhibit_id))
        .where(TriageRun.state == RunState.succeeded)
        .group_by(col(TriageRun.exhibit_id))
    )
    if case_ids is not None:
        query = query.where(col(Exhibit.case_id).in_(case_ids))
    return query


def triage_facts(session: Session, case_ids: Sequence[int] | None = None) -> dict[int, scoring.TriageFacts]:
    latest = _latest_runs(session, case_ids)
    rows = session.exec(
        select(TriageHit.case_id, TriageHit.source, TriageHit.category, func.count())
        .where(col(TriageHit.run_id).in_(latest), col(TriageHit.alert))
        .group_by(col(TriageHit.case_id), col(TriageHit.source), col(TriageHit.category))
    ).all()
    bad: dict[int, dict[str, int]] = defaultdict(dict)
    yara: dict[int, int] = defaultdict(int)
    for case_id, source, category, count in rows:
        if source == "hashset":
            bad[case_id][category] = bad[case_id].get(category, 0) + int(count)
        elif any(m in (category or "").lower() for m in CHILD_RULE_MARKERS):
            yara[case_id] += int(count)
    return {
        cid: scoring.TriageFacts(dict(bad.get(cid, {})), yara.get(cid, 0)) for cid in set(bad) | set(yara)
    }


def active_overrides(
    session: Session, now: datetime, case_ids: Sequence[int] | None = None
) -> dict[int, list[scoring.Override]]:
    query = (
        select(PriorityOverride, Account.username)
        .join(Account, col(Account.id) == col(PriorityOverride.author_id))
        .where(col(PriorityOverride.expires_at) > now, col(PriorityOverride.revoked_at).is_(None))
    )
    if case_ids is not None:
        query = query.where(col(PriorityOverride.case_id).in_(case_ids))
    out: dict[int, list[scoring.Override]] = defaultdict(list)
    for row, author in session.exec(query).all():
        out[row.case_id].append(
            scoring.Override(scoring.OverrideKind(row.kind), row.reason, author, row.expires_at, row.points)
        )
    return out


# --- rescoring ---------------------------------------------------------------------------


_FACT_COLUMNS = ("id", *_FACT_FIELDS)  # read as plain rows, CaseFacts built positionally


def _as_stored(column: Any) -> Any:
    """``column`` read without its type's result conversion, when that type is an
    :class:`EnumString` (the SQL is unchanged)."""
    if isinstance(column.type, EnumString):
        return type_coerce(column, String(column.type.length)).label(column.name)
    return column


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (reference counting still frees everything).

    A whole-queue rescore keeps 100,000 fact rows alive while it makes some 600,000 small
    objects; each of the collector's full passes walks them all again, which was an eighth of
    the instructions of scoring alone, more with the rows. Scoring makes no reference
    cycles, so nothing waits for the collector; it is restored, as it was, at the end."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@_cyclic_gc_paused()
def rescore(
    session: Session,
    now: datetime | None = None,
    case_ids: Sequence[int] | None = None,
    policy_path: str | None = None,
) -> int:
    """Recompute the score of the given cases (all cases if None), store those that changed and
    carry them to their open tasks. Set-based: facts are read as plain rows (in case-id order);
    given cases, and every case on SQLite, are written in the caller's transaction with one
    multi-row upsert and one task update. A whole-queue rescore on PostgreSQL of more than a
    chunk of cases goes in chunks to writer threads on their own connections, which store and
    commit each chunk and its tasks while the scoring goes on (:mod:`triage.score_store`);
    its caller must not hold locks on tasks or scores (it would wait for itself). The figures
    for 100,000 cases are in the README's "Speed and memory" and docs/speed.md. A stored score
    whose total, factors and policy version are unchanged is left as it is (``computed_at`` is
    the time the score last changed). Returns the number of cases scored. The cyclic garbage
    collector is paused meanwhile (:func:`_cyclic_gc_paused`)."""
    now = now or utcnow()
    pol = policy(policy_path)
    case_table = Case.__table__  # type: ignore[attr-defined]
    # Enum columns are read as their plain text (scoring compares and prints them as text):
    # converting 100,000 of each to enum members was a tenth of the read.
    query = select(*[_as_stored(case_table.c[name]) for name in _FACT_COLUMNS])
    if case_ids is not None:
        query = query.where(case_table.c.id.in_(list(case_ids)))
    rows = session.execute(query.order_by(case_table.c.id)).all()  # chunks of neighbouring ids
    ids = [r[0] for r in rows] if case_ids is not None else None
    facts = triage_facts(session, ids)
    overrides = active_overrides(session, now, ids)
    if not rows:
        return 0
    empty = scoring.TriageFacts()

    def scored() -> Iterator[score_store.ScoreRow]:
        score, facts_of = scoring.score, scoring.CaseFacts  # (bound once: called for every case)
        for row in rows:
            case_id = row[0]
            found = facts.get(case_id, empty)
            result = score(facts_of(*row[1:]), found, now, pol, overrides.get(case_id, ()))
            yield (case_id, result.total, result.pinned, result.held, result.factors, result.policy_version)

    if session.get_bind().dialect.name == "postgresql" and case_ids is None and len(rows) > score_store.CHUNK:
        score_store.store_chunked(session.get_bind().engine, scored(), now, len(rows))
    else:  # SQLite, or given cases (a change's own rescore, in its transaction)
        score_store.store_in_transaction(session, list(scored()), now, ids)
    session.expire_all()
    return len(rows)


# Advisory lock key of whole-queue rescores (the audit chain's is 8015127; image paths being
# registered lock in the two-key space, intake.IMAGE_PATH_LOCKS).
RESCORE_LOCK = 8015128


def lock_rescore(session: Session, wait: bool) -> bool:
    """Take the whole-queue rescore's lock for this transaction, so that two rescores of every
    case never run at once (a scheduled one and `triage rescore`, say: both would rewrite the
    same rows and contend for their locks). ``wait=False``: False at once if another holds
    it. SQLite: always True (its transactions already write one at a time)."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    function = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    taken = session.execute(text(f"SELECT {function}(:key)"), {"key": RESCORE_LOCK}).scalar()
    return wait or bool(taken)


def _rescore_hook(session: Session, case_id: int) -> None:
    rescore(session, case_ids=[case_id])


hooks.on_triage_result.append(_rescore_hook)


# --- overrides ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    current_position: int | None
    new_position: int
    new_total: float
    factors: list[dict[str, Any]]


def _validate_override(data: OverrideCreate, now: datetime) -> None:
    if data.expires_at.tzinfo is None:
        raise FieldValidationError("expires_at", "needs a time zone (e.g. 2026-12-01T09:00:00Z)")
    if data.expires_at <= now:
        raise FieldValidationError("expires_at", "is in the past")
    if data.kind == "boost" and data.points <= 0:
        raise FieldValidationError("points", "a boost needs points > 0")


def queue_order(session: Session) -> list[tuple[int, bool, bool, float]]:
    """(case id, pinned, held, total) of every scored case with queued or claimed work, in order."""
    rows = session.exec(
        select(CaseScore.case_id, CaseScore.pinned, CaseScore.held, CaseScore.total).where(
            col(CaseScore.case_id).in_(
                select(ExaminationTask.case_id).where(
                    col(ExaminationTask.state).in_([TaskState.queued, TaskState.claimed])
                )
            )
        )
    ).all()
    return sorted(rows, key=lambda r: (-(1 if r[1] else -1 if r[2] else 0), -r[3], r[0]))


def preview_override(
    session: Session, ctx: Context, case: Case, data: OverrideCreate, now: datetime | None = None
) -> Preview:
    """Where the case would land with this override, without storing anything."""
    ctx.require(*MANAGERS)
    now = now or utcnow()
    _validate_override(data, now)
    assert case.id is not None
    order = queue_order(session)
    current = next((i + 1 for i, r in enumerate(order) if r[0] == case.id), None)
    extra = scoring.Override(
        scoring.OverrideKind(data.kind), data.reason, ctx.actor_name, data.expires_at, data.points
    )
    overrides = [*active_overrides(session, now, [case.id]).get(case.id, []), extra]
    facts = triage_facts(session, [case.id]).get(case.id, scoring.TriageFacts())
    result = scoring.score(case_facts(case), facts, now, policy(), overrides)
    others = [r for r in order if r[0] != case.id]
    mine = (1 if result.pinned else -1 if result.held else 0, result.total)
    position = 1 + sum(1 for r in others if (1 if r[1] else -1 if r[2] else 0, r[3]) > mine)
    return Preview(current, position, result.total, [f.as_dict() for f in result.factors])


def add_override(
    session: Session, ctx: Context, case: Case, data: OverrideCreate, now: datetime | None = None
) -> PriorityOverride:
    actor = ctx.require(*MANAGERS)
    now = now or utcnow()
    _validate_override(data, now)
    assert case.id is not None and actor.id is not None
    row = PriorityOverride(
        case_id=case.id,
        kind=data.kind,
        points=data.points if data.kind == "boost" else 0.0,
        reason=data.reason,
        author_id=actor.id,
        expires_at=data.expires_at,
    )
    audit.add_created(session, ctx, row, "override.add", "priority_override")
    rescore(session, now, [case.id])
    return row


def revoke_override(session: Session, ctx: Context, override: PriorityOverride) -> PriorityOverride:
    ctx.require(*MANAGERS)
    if override.revoked_at is not None:
        raise ConflictError("override already revoked")
    before = audit.snapshot(override)
    override.revoked_at = utcnow()
    audit.add_changed(session, ctx, override, before, "override.revoke", "priority_override")
    rescore(session, case_ids=[override.case_id])
    return override


# --- tasks ---------------------------------------------------------------------------------


def _needs_clearance(session: Session, exhibit_id: int) -> bool:
    latest = select(func.max(TriageRun.id)).where(
        TriageRun.exhibit_id == exhibit_id, TriageRun.state == RunState.succeeded
    )
    hit = session.exec(
        select(TriageHit.id)
        .where(col(TriageHit.run_id).in_(latest), TriageHit.source == "hashset", col(TriageHit.alert))
        .limit(1)
    ).first()
    return hit is not None


def open_task(session: Session, exhibit_id: int) -> ExaminationTask | None:
    return session.exec(
        select(ExaminationTask).where(
            ExaminationTask.exhibit_id == exhibit_id,
            col(ExaminationTask.state).in_([TaskState.queued, TaskState.claimed]),
        )
    ).first()


def on_exhibit_state(
    session: Session, ctx: Context, exhibit: Exhibit, old: ExhibitState, new: ExhibitState
) -> None:
    """Keep the exhibit's task in step with its lifecycle state (called by custody)."""
    task = open_task(session, exhibit.id or 0)
    if new == ExhibitState.awaiting_examination:
        if task is None:
            assert exhibit.id is not None
            task = ExaminationTask(
                exhibit_id=exhibit.id,
                case_id=exhibit.case_id,
                device_type=str(exhibit.device_type),
                needs_iioc_clearance=_needs_clearance(session, exhibit.id),
            )
            audit.add_created(session, ctx, task, "task.create", "examination_task")
            rescore(session, case_ids=[exhibit.case_id])
        elif task.state == TaskState.claimed and old == ExhibitState.in_examination:
            _requeue(session, ctx, task, "exhibit returned to the queue")
    elif task is not None and new == ExhibitState.in_examination and task.state == TaskState.queued:
        # Taken into examination by hand (not through claim-next): the task is theirs, no lease.
        before = audit.snapshot(task)
        task.state, task.claimed_by, task.claimed_at = TaskState.claimed, ctx.actor_id, utcnow()
        task.attempt += 1
        audit.add_changed(session, ctx, task, before, "task.claim", "examination_task")
    elif task is not None and new == ExhibitState.examined and task.state == TaskState.claimed:
        before = audit.snapshot(task)
        task.state, task.completed_at, task.lease_expires_at = TaskState.completed, utcnow(), None
        task.outcome = task.outcome or "examined"
        audit.add_changed(session, ctx, task, before, "task.complete", "examination_task")
    elif task is not None and new not in (ExhibitState.in_examination, ExhibitState.awaiting_examination):
        before = audit.snapshot(task)
        task.state, task.lease_expires_at = TaskState.withdrawn, None
        audit.add_changed(session, ctx, task, before, "task.withdraw", "examination_task")


def _requeue(session: Session, ctx: Context, task: ExaminationTask, reason: str) -> None:
    before = audit.snapshot(task)
    task.state, task.claimed_by, task.lease_expires_at = TaskState.queued, None, None
    audit.add_changed(
        session, ctx, task, before, "task.requeue", "examination_task", details={"reason": reason}
    )


@lru_cache(maxsize=32)
def _claim_statements(
    dialect: str, by_device: bool, cleared: bool, skip_locked: bool = True
) -> tuple[Any, Any]:
    """(pick, claim) for examiners of this kind, built once: claims are frequent and
    concurrent, and building a statement costs more than running it. Parameters: examiner,
    now, lease_until, device_types (if ``by_device``), and task_id (SQLite's claim).
    ``skip_locked=False`` (PostgreSQL): wait for locked rows instead of passing them by."""
    tasks, exhibits = ExaminationTask.__table__, Exhibit.__table__  # type: ignore[attr-defined]
    # Constants are literals, not parameters: PostgreSQL may then reuse one generic plan of the
    # prepared claim (a parameter in place of 'queued' hides the partial index it walks).
    conditions = [tasks.c.state == literal_column(f"'{TaskState.queued.value}'"), tasks.c.held.is_(False)]
    if by_device:
        conditions.append(tasks.c.device_type.in_(bindparam("device_types", expanding=True)))
    if not cleared:
        conditions.append(tasks.c.needs_iioc_clearance.is_(False))
    pick = (
        sa_select(tasks, *[c.label(f"exhibit__{c.name}") for c in exhibits.c])
        .join(exhibits, exhibits.c.id == tasks.c.exhibit_id)
        .where(*conditions)
        .order_by(tasks.c.pinned.desc(), tasks.c.priority.desc(), tasks.c.queued_at, tasks.c.id)
        .limit(literal_column("1"))
    )
    claim = update(tasks).values(
        state=TaskState.claimed.value,
        claimed_by=bindparam("examiner"),
        claimed_at=bindparam("now"),
        lease_expires_at=bindparam("lease_until"),
        attempt=tasks.c.attempt + 1,
    )
    if dialect != "postgresql":
        return pick, claim.where(tasks.c.id == bindparam("task_id"), tasks.c.state == TaskState.queued.value)
    # PostgreSQL: one statement picks the task (skipping rows other claims hold locked), claims
    # it, moves its exhibit to in_examination with the custody event custody.transition would
    # write, and returns the task and exhibit as they were, and whether the exhibit moved.
    picked = pick.with_for_update(skip_locked=skip_locked, of=tasks).cte("picked")
    claimed = claim.where(tasks.c.id == picked.c.id).cte("claimed")
    moved = (
        update(exhibits)
        .where(
            exhibits.c.id == picked.c.exhibit__id,
            exhibits.c.state == ExhibitState.awaiting_examination.value,
        )
        .values(state=ExhibitState.in_examination.value, state_changed_at=bindparam("now"))
        .returning(exhibits.c.id, exhibits.c.location)
        .cte("moved")
    )
    events = CustodyEvent.__table__  # type: ignore[attr-defined]
    trail = (
        insert(events)
        .from_select(
            [c.name for c in events.c if c.name != "id"],
            sa_select(
                moved.c.id,
                bindparam("examiner"),
                bindparam("now"),
                literal("state_change"),
                moved.c.location,
                moved.c.location,
                literal(ExhibitState.awaiting_examination.value),
                literal(ExhibitState.in_examination.value),
                literal("task ") + cast(picked.c.id, String) + literal(" claimed"),
            ).select_from(moved.join(picked, true())),
        )
        .returning(events.c.id)
        .cte("trail")
    )
    moved_count = sa_select(func.count()).select_from(trail).scalar_subquery().label("exhibit_moved")
    return None, sa_select(picked, moved_count).add_cte(claimed, moved, trail)


def claim_next(
    session: Session, ctx: Context, lease_seconds: float, now: datetime | None = None
) -> ExaminationTask | None:
    """The highest-priority task this examiner is qualified for, claimed for them alone, its
    exhibit moved to in_examination through the custody trail; audited.

    Examiners claim concurrently, so this is prepared statements rather than ORM work. On
    PostgreSQL all of it is one statement; SQLite (one writer at a time) selects, updates the
    task, then moves the exhibit with custody.transition. The audit events are chained at
    commit."""
    from triage import custody

    examiner = ctx.require(Role.examiner, Role.admin)
    now = now or utcnow()
    lease_until = now + timedelta(seconds=lease_seconds)
    pick, claim = _claim_statements(
        session.get_bind().dialect.name, bool(examiner.device_types), examiner.iioc_cleared
    )
    in_one_statement = pick is None  # PostgreSQL: claim does everything, exhibit move included
    params: dict[str, Any] = {"examiner": examiner.id, "now": now, "lease_until": lease_until}
    if examiner.device_types:
        params["device_types"] = list(examiner.device_types)
    if in_one_statement:
        row = session.execute(claim, params).first()
        if row is None:
            # Every task left for this examiner may be locked rather than gone: by the chunks a
            # whole-queue rescore is writing, or by other claims. Wait for those locks instead
            # of answering "nothing to examine" (an empty queue answers at once).
            kind = (bool(examiner.device_types), examiner.iioc_cleared)
            _, waiting = _claim_statements("postgresql", *kind, skip_locked=False)
            row = session.execute(waiting, params).first()
    else:
        row = session.execute(pick, params).first()
        if row is not None:
            session.execute(claim, {**params, "task_id": row.id})
    if row is None:
        return None
    values = row._mapping
    task = ExaminationTask.model_validate({c.name: values[c.name] for c in ExaminationTask.__table__.c})  # type: ignore[attr-defined]
    before = audit.snapshot(task)
    task.state, task.claimed_by, task.claimed_at = TaskState.claimed, examiner.id, now
    task.lease_expires_at, task.attempt = lease_until, task.attempt + 1
    audit.record(session, ctx, "task.claim", "examination_task", task.id, before, audit.snapshot(task))
    exhibit = Exhibit.model_validate(
        {c.name: values[f"exhibit__{c.name}"] for c in Exhibit.__table__.c}  # type: ignore[attr-defined]
    )
    target = ExhibitState.in_examination
    if not in_one_statement:
        custody.transition(session, ctx, exhibit, target, f"task {task.id} claimed", follow_queue=False)
    elif values["exhibit_moved"] != 1:
        raise ConflictError(f"exhibit {exhibit.id} of task {task.id} is not awaiting examination")
    else:
        lifecycle.check_transition(ExhibitState(exhibit.state), target)
        custody.record_moved(session, ctx, exhibit, audit.snapshot(exhibit), target, now)
    return task


def _held_by(ctx: Context, task: ExaminationTask, attempt: int) -> Account:
    actor = ctx.require(Role.examiner, Role.admin)
    if task.state != TaskState.claimed or task.claimed_by != actor.id or task.attempt != attempt:
        raise ConflictError(f"task {task.id} is not held by you (or your lease has lapsed)")
    return actor


def heartbeat(
    session: Session, ctx: Context, task: ExaminationTask, attempt: int, lease_seconds: float
) -> ExaminationTask:
    _held_by(ctx, task, attempt)
    task.lease_expires_at = utcnow() + timedelta(seconds=lease_seconds)
    session.add(task)
    session.flush()
    return task


def release(
    session: Session, ctx: Context, task: ExaminationTask, attempt: int, reason: str = "handed back"
) -> ExaminationTask:
    """Hand the job back: it returns to the queue, the exhibit to awaiting examination."""
    from triage import custody

    _held_by(ctx, task, attempt)
    exhibit = session.get(Exhibit, task.exhibit_id)
    assert exhibit is not None
    custody.transition(session, ctx, exhibit, ExhibitState.awaiting_examination, f"task {task.id}: {reason}")
    return task


def complete(
    session: Session, ctx: Context, task: ExaminationTask, attempt: int, outcome: str
) -> ExaminationTask:
    from triage import custody

    _held_by(ctx, task, attempt)
    task.outcome = outcome
    exhibit = session.get(Exhibit, task.exhibit_id)
    assert exhibit is not None
    custody.transition(session, ctx, exhibit, ExhibitState.examined, f"task {task.id} completed: {outcome}")
    return task


def sweep(session: Session, now: datetime | None = None) -> list[int]:
    """Return tasks whose examiner's lease lapsed to the queue."""
    from triage import custody

    now = now or utcnow()
    query = select(ExaminationTask).where(
        ExaminationTask.state == TaskState.claimed, col(ExaminationTask.lease_expires_at) < now
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ctx = system_context()
    returned = []
    for task in session.exec(query).all():
        exhibit = session.get(Exhibit, task.exhibit_id)
        assert exhibit is not None
        custody.transition(
            session,
            ctx,
            exhibit,
            ExhibitState.awaiting_examination,
            f"task {task.id}: examiner's lease lapsed",
        )
        returned.append(task.id or 0)
    return returned


# --- expected examination dates ------------------------------------------------------------


def completed_since(session: Session, since: datetime) -> int:
    """How many examination tasks were completed since ``since``."""
    done = session.exec(
        select(func.count())
        .select_from(ExaminationTask)
        .where(ExaminationTask.state == TaskState.completed, col(ExaminationTask.completed_at) >= since)
    ).one()
    return int(done)


def completion_rate(session: Session, now: datetime, weeks: int = RATE_WEEKS) -> float:
    """Tasks completed per day over the last ``weeks`` weeks."""
    return completed_since(session, now - timedelta(weeks=weeks)) / (weeks * 7)


# The order examiners will get queued tasks in (held ones last).
_QUEUE_ORDER = (
    col(ExaminationTask.held),
    col(ExaminationTask.pinned).desc(),
    col(ExaminationTask.priority).desc(),
    col(ExaminationTask.queued_at),
    col(ExaminationTask.id),
)


def positions(session: Session) -> list[ExaminationTask]:
    """Queued tasks in the order examiners will get them (held ones last)."""
    query = select(ExaminationTask).where(ExaminationTask.state == TaskState.queued).order_by(*_QUEUE_ORDER)
    return list(session.exec(query).all())


def queued_ids(session: Session) -> list[int]:
    """The ids of ``positions``, without loading the tasks."""
    queued = select(ExaminationTask.id).where(ExaminationTask.state == TaskState.queued)
    return [task_id or 0 for task_id in session.exec(queued.order_by(*_QUEUE_ORDER)).all()]


def expected_date(position: int, rate_per_day: float, today: date) -> date | None:
    """The day the task at ``position`` (1 = next) is expected to be taken, at the recent pace."""
    if rate_per_day <= 0:
        return None
    return today + timedelta(days=math.ceil(position / rate_per_day) - 1 if position > 0 else 0)


def queue_snapshot(
    session: Session, now: datetime | None = None, order: list[int] | None = None
) -> dict[int, tuple[int, date | None]]:
    """{task id: (position, expected date)} for every queued task (``order``: queued_ids, if
    the caller has it already)."""
    now = now or utcnow()
    rate = completion_rate(session, now)
    order = queued_ids(session) if order is None else order
    return {task_id: (i, expected_date(i, rate, now.date())) for i, task_id in enumerate(order, 1)}


def queue_entries(session: Session, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """A page of the queue in order, each task with its case, exhibit, score, place and
    expected date; and the length of the whole queue. Shared by the API, the pages and the CLI."""
    order = queued_ids(session)
    snapshot = queue_snapshot(session, order=order)
    page = order[offset : offset + limit]
    tasks = {t.id: t for t in session.exec(select(ExaminationTask).where(col(ExaminationTask.id).in_(page)))}
    chunk = [tasks[task_id] for task_id in page]
    case_ids = {t.case_id for t in chunk}
    scores = {
        s.case_id: s
        for s in session.exec(select(CaseScore).where(col(CaseScore.case_id).in_(case_ids))).all()
    }
    cases = {c.id: c for c in session.exec(select(Case).where(col(Case.id).in_(case_ids))).all()}
    exhibits = {
        e.id: e
        for e in session.exec(select(Exhibit).where(col(Exhibit.id).in_({t.exhibit_id for t in chunk}))).all()
    }
    entries = []
    for task in chunk:
        position, expected = snapshot[task.id or 0]
        entries.append(
            {
                "position": position,
                "expected": expected,
                "task": task,
                "case": cases[task.case_id],
                "exhibit": exhibits[task.exhibit_id],
                "score": scores.get(task.case_id) or CaseScore(case_id=task.case_id),
            }
        )
    return entries, len(order)


def device_statuses(
    session: Session, case: Case, snapshot: dict[int, tuple[int, date | None]]
) -> list[dict[str, Any]]:
    """Each exhibit of the case with its place in the queue and expected examination date
    (for an exhibit out with a vendor, the date the vendor is due to return it)."""
    out = []
    for exhibit in session.exec(
        select(Exhibit).where(Exhibit.case_id == case.id).order_by(col(Exhibit.id))
    ).all():
        task = open_task(session, exhibit.id or 0)
        position, expected = snapshot.get(task.id or 0, (None, None)) if task else (None, None)
        if exhibit.state == ExhibitState.outsourced:
            expected = session.exec(
                select(col(Outsourcing.due_date)).where(
                    Outsourcing.exhibit_id == exhibit.id, Outsourcing.state == OutsourcingState.with_vendor
                )
            ).first()
        out.append({"exhibit": exhibit, "position": position, "expected": expected})
    return out
