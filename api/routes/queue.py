"""The examination queue: priority order with reasons, overrides with preview, claims."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel
from sqlmodel import col, select

from api.deps import CaseDep, CtxDep, PageDep, RowId, SessionDep, SettingsDep
from api.schemas import Paged
from triage import access, queue
from triage.models.accounts import STAFF_ROLES
from triage.models.cases import Case
from triage.models.queue import (
    CaseScore,
    CompleteRequest,
    ExaminationTask,
    LeaseRequest,
    OverrideCreate,
    OverridePublic,
    PriorityOverride,
    TaskPublic,
)

router = APIRouter(tags=["queue"])


class QueueEntry(BaseModel):
    position: int
    expected_date: date | None
    task: TaskPublic
    crime_reference: str
    exhibit_reference: str
    total: float
    factors: list[dict[str, Any]]
    policy_version: str


class ScorePublic(BaseModel):
    case_id: int
    total: float
    pinned: bool
    held: bool
    factors: list[dict[str, Any]]
    policy_version: str


class PreviewPublic(BaseModel):
    current_position: int | None
    new_position: int
    new_total: float
    factors: list[dict[str, Any]]


def visible_task(task_id: RowId, session: SessionDep, ctx: CtxDep) -> ExaminationTask:
    return access.get_scoped(session, ctx, ExaminationTask, task_id, "task")


def visible_override(override_id: RowId, session: SessionDep, ctx: CtxDep) -> PriorityOverride:
    return access.get_scoped(session, ctx, PriorityOverride, override_id, "override")


TaskDep = Annotated[ExaminationTask, Depends(visible_task)]
OverrideDep = Annotated[PriorityOverride, Depends(visible_override)]


@router.get("/queue", response_model=Paged[QueueEntry])
def list_queue(session: SessionDep, ctx: CtxDep, page: PageDep) -> Paged[QueueEntry]:
    """Queued tasks in the order examiners will get them, with every score's reasons."""
    ctx.require(*STAFF_ROLES)
    entries, total = queue.queue_entries(session, page.offset, page.limit)
    items = [
        QueueEntry(
            position=e["position"],
            expected_date=e["expected"],
            task=TaskPublic.model_validate(e["task"]),
            crime_reference=e["case"].crime_reference,
            exhibit_reference=e["exhibit"].reference,
            total=e["score"].total,
            factors=e["score"].factors,
            policy_version=e["score"].policy_version,
        )
        for e in entries
    ]
    return Paged(items=items, total=total, offset=page.offset, limit=page.limit)


@router.get("/cases/{case_id}/score", response_model=ScorePublic)
def case_score(case: CaseDep, session: SessionDep) -> ScorePublic:
    score = session.get(CaseScore, case.id)
    if score is None:
        queue.rescore(session, case_ids=[case.id or 0])
        session.commit()
        score = session.get(CaseScore, case.id)
    assert score is not None
    return ScorePublic(
        case_id=score.case_id,
        total=score.total,
        pinned=score.pinned,
        held=score.held,
        factors=score.factors,
        policy_version=score.policy_version,
    )


@router.get("/cases/{case_id}/overrides", response_model=list[OverridePublic])
def list_overrides(case: CaseDep, session: SessionDep, ctx: CtxDep) -> list[OverridePublic]:
    ctx.require(*STAFF_ROLES)
    rows = session.exec(
        select(PriorityOverride).where(PriorityOverride.case_id == case.id).order_by(col(PriorityOverride.id))
    ).all()
    return [OverridePublic.model_validate(r) for r in rows]


@router.post("/cases/{case_id}/overrides/preview", response_model=PreviewPublic)
def preview_override(case: CaseDep, data: OverrideCreate, session: SessionDep, ctx: CtxDep) -> PreviewPublic:
    """Where the case would land with this override; nothing is stored."""
    p = queue.preview_override(session, ctx, case, data)
    return PreviewPublic(**p.__dict__)


@router.post("/cases/{case_id}/overrides", response_model=OverridePublic, status_code=201)
def add_override(case: CaseDep, data: OverrideCreate, session: SessionDep, ctx: CtxDep) -> OverridePublic:
    """Boost, pin or hold a case, with a reason and an expiry (managers)."""
    row = queue.add_override(session, ctx, case, data)
    session.commit()
    return OverridePublic.model_validate(row)


@router.post("/overrides/{override_id}/revoke", response_model=OverridePublic)
def revoke_override(override: OverrideDep, session: SessionDep, ctx: CtxDep) -> OverridePublic:
    row = queue.revoke_override(session, ctx, override)
    session.commit()
    return OverridePublic.model_validate(row)


@router.post(
    "/tasks/claim-next", response_model=TaskPublic, responses={204: {"description": "no job for you"}}
)
def claim_next(session: SessionDep, ctx: CtxDep, settings: SettingsDep) -> TaskPublic | Response:
    """The highest-priority job you are qualified for, claimed for you alone (204: none)."""
    task = queue.claim_next(session, ctx, settings.task_lease_seconds)
    session.commit()
    if task is None:
        return Response(status_code=204)
    return TaskPublic.model_validate(task)


@router.get("/tasks/{task_id}", response_model=TaskPublic)
def get_task(task: TaskDep, ctx: CtxDep) -> TaskPublic:
    return TaskPublic.model_validate(task)


@router.post("/tasks/{task_id}/heartbeat", response_model=TaskPublic, responses={409: {}})
def heartbeat(
    task: TaskDep, data: LeaseRequest, session: SessionDep, ctx: CtxDep, settings: SettingsDep
) -> TaskPublic:
    task = queue.heartbeat(session, ctx, task, data.attempt, settings.task_lease_seconds)
    session.commit()
    return TaskPublic.model_validate(task)


@router.post("/tasks/{task_id}/release", response_model=TaskPublic, responses={409: {}})
def release(task: TaskDep, data: LeaseRequest, session: SessionDep, ctx: CtxDep) -> TaskPublic:
    """Hand the job back to the queue."""
    task = queue.release(session, ctx, task, data.attempt)
    session.commit()
    return TaskPublic.model_validate(task)


@router.post("/tasks/{task_id}/complete", response_model=TaskPublic, responses={409: {}})
def complete(task: TaskDep, data: CompleteRequest, session: SessionDep, ctx: CtxDep) -> TaskPublic:
    task = queue.complete(session, ctx, task, data.attempt, data.outcome)
    session.commit()
    return TaskPublic.model_validate(task)


class DeviceStatus(BaseModel):
    exhibit_id: int
    reference: str
    device_type: str
    state: str
    queue_position: int | None
    expected_examination_date: date | None


class CaseStatus(BaseModel):
    case_id: int
    crime_reference: str
    restriction_kind: str | None
    days_under_restriction: int | None
    devices: list[DeviceStatus]


def _status(session: Any, case: Case, snapshot: dict[int, Any]) -> CaseStatus:
    devices = [
        DeviceStatus(
            exhibit_id=d["exhibit"].id or 0,
            reference=d["exhibit"].reference,
            device_type=str(d["exhibit"].device_type),
            state=str(d["exhibit"].state),
            queue_position=d["position"],
            expected_examination_date=d["expected"],
        )
        for d in queue.device_statuses(session, case, snapshot)
    ]
    return CaseStatus(
        case_id=case.id or 0,
        crime_reference=case.crime_reference,
        restriction_kind=str(case.restriction_kind) if case.restriction_kind else None,
        days_under_restriction=queue.restriction_days_today(case),
        devices=devices,
    )


@router.get("/cases/{case_id}/status", response_model=CaseStatus)
def case_status(case: CaseDep, session: SessionDep) -> CaseStatus:
    """For the officer in the case: where each device is, its place in the queue and the
    expected examination date, and how long a family restriction has run."""
    return _status(session, case, queue.queue_snapshot(session))


@router.get("/my/cases", response_model=list[CaseStatus])
def my_cases(session: SessionDep, ctx: CtxDep) -> list[CaseStatus]:
    """The caller's own cases (investigators: where they are officer or added) with status."""
    snapshot = queue.queue_snapshot(session)
    return [_status(session, c, snapshot) for c in session.exec(access.own_cases(ctx)).all()]
