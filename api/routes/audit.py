"""Reading and verifying the audit log (admins and managers). There is no write endpoint."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlmodel import col, select

from api.deps import CtxDep, PageDep, SessionDep
from api.schemas import Paged
from triage import audit
from triage.models.accounts import Role
from triage.models.audit import AuditEvent, AuditEventPublic
from triage.pagination import paginate

router = APIRouter(prefix="/audit", tags=["audit"])


class ChainReportPublic(BaseModel):
    ok: bool
    events: int
    first_broken_id: int | None
    reason: str


@router.get("", response_model=Paged[AuditEventPublic])
def list_events(
    session: SessionDep,
    ctx: CtxDep,
    page: PageDep,
    object_type: str | None = None,
    object_id: str | None = None,
    action: str | None = None,
) -> Paged[AuditEventPublic]:
    ctx.require(Role.admin, Role.manager)
    query = select(AuditEvent).order_by(col(AuditEvent.id).desc())
    if object_type:
        query = query.where(AuditEvent.object_type == object_type)
    if object_id:
        query = query.where(AuditEvent.object_id == object_id)
    if action:
        query = query.where(AuditEvent.action == action)
    rows, total = paginate(session, query, page)
    return Paged(
        items=[AuditEventPublic.model_validate(e) for e in rows],
        total=total,
        offset=page.offset,
        limit=page.limit,
    )


@router.get("/verify", response_model=ChainReportPublic)
def verify(session: SessionDep, ctx: CtxDep) -> ChainReportPublic:
    ctx.require(Role.admin, Role.manager)
    report = audit.verify_chain(session)
    return ChainReportPublic(**report.__dict__)
