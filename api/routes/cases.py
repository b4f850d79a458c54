"""Cases, their members and their exhibits."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlmodel import select

from api.deps import CaseDep, CtxDep, PageDep, RowIdFilter, SessionDep
from api.schemas import Paged
from triage import intake
from triage.models.cases import (
    CaseCreate,
    CaseMember,
    CaseMemberAdd,
    CasePublic,
    CaseStatus,
    CaseUpdate,
    OffenceCategory,
)
from triage.models.exhibits import DeviceType, ExhibitCreate, ExhibitPublic, ExhibitState

router = APIRouter(prefix="/cases", tags=["cases"])


class CaseMemberPublic(BaseModel):
    case_id: int
    account_id: int
    added_by: int


@router.get("", response_model=Paged[CasePublic])
def list_cases(
    session: SessionDep,
    ctx: CtxDep,
    page: PageDep,
    status: CaseStatus | None = None,
    offence_category: OffenceCategory | None = None,
    officer_id: RowIdFilter = None,
    team: str | None = None,
) -> Paged[CasePublic]:
    """Cases the caller may see (investigators: their own), filtered and paged."""
    rows, total = intake.list_cases(session, ctx, page, status, offence_category, officer_id, team)
    return Paged(
        items=[CasePublic.model_validate(c) for c in rows],
        total=total,
        offset=page.offset,
        limit=page.limit,
    )


@router.post("", response_model=CasePublic, status_code=201)
def create_case(data: CaseCreate, session: SessionDep, ctx: CtxDep) -> CasePublic:
    case = intake.create_case(session, ctx, data)
    session.commit()
    return CasePublic.model_validate(case)


@router.get("/{case_id}", response_model=CasePublic)
def get_case(case: CaseDep) -> CasePublic:
    return CasePublic.model_validate(case)


@router.patch("/{case_id}", response_model=CasePublic)
def update_case(case: CaseDep, data: CaseUpdate, session: SessionDep, ctx: CtxDep) -> CasePublic:
    case = intake.update_case(session, ctx, case, data)
    session.commit()
    return CasePublic.model_validate(case)


@router.get("/{case_id}/members", response_model=list[CaseMemberPublic])
def list_members(case: CaseDep, session: SessionDep) -> list[CaseMemberPublic]:
    rows = session.exec(select(CaseMember).where(CaseMember.case_id == case.id)).all()
    return [CaseMemberPublic(case_id=m.case_id, account_id=m.account_id, added_by=m.added_by) for m in rows]


@router.post("/{case_id}/members", response_model=CaseMemberPublic, status_code=201)
def add_member(case: CaseDep, data: CaseMemberAdd, session: SessionDep, ctx: CtxDep) -> CaseMemberPublic:
    member = intake.add_member(session, ctx, case, data.account_id)
    session.commit()
    return CaseMemberPublic(case_id=member.case_id, account_id=member.account_id, added_by=member.added_by)


@router.get("/{case_id}/exhibits", response_model=Paged[ExhibitPublic])
def list_case_exhibits(
    case: CaseDep,
    session: SessionDep,
    ctx: CtxDep,
    page: PageDep,
    state: ExhibitState | None = None,
    device_type: DeviceType | None = None,
) -> Paged[ExhibitPublic]:
    rows, total = intake.list_exhibits(session, ctx, page, case.id, state, device_type)
    return Paged(
        items=[ExhibitPublic.model_validate(e) for e in rows],
        total=total,
        offset=page.offset,
        limit=page.limit,
    )


@router.post("/{case_id}/exhibits", response_model=ExhibitPublic, status_code=201)
def create_exhibit(case: CaseDep, data: ExhibitCreate, session: SessionDep, ctx: CtxDep) -> ExhibitPublic:
    exhibit = intake.create_exhibit(session, ctx, case, data)
    session.commit()
    return ExhibitPublic.model_validate(exhibit)
