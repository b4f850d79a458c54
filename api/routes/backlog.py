"""Vendors, outsourcing, backlog figures and the forecast (managers)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import PlainTextResponse
from sqlmodel import col, select

from api.deps import CaseDep, CtxDep, ExhibitDep, RowId, SessionDep
from triage import access, backlog, vendors
from triage.errors import ConflictError, FieldValidationError
from triage.models.accounts import Role
from triage.models.exhibits import Exhibit
from triage.models.types import utcnow
from triage.models.vendors import (
    BudgetSet,
    DispatchRequest,
    Outsourcing,
    OutsourcingPublic,
    ReturnRequest,
    Vendor,
    VendorCreate,
    VendorPublic,
    VendorStatus,
    VendorUpdate,
)

router = APIRouter(tags=["backlog"])
MANAGERS = (Role.admin, Role.manager)


def _out(record: Outsourcing) -> OutsourcingPublic:
    public = OutsourcingPublic.model_validate(record)
    public.overdue = vendors.is_overdue(record, utcnow().date())
    return public


@router.get("/vendors", response_model=list[VendorPublic])
def list_vendors(session: SessionDep, ctx: CtxDep) -> list[VendorPublic]:
    ctx.require(*MANAGERS)
    return [
        VendorPublic.model_validate(v) for v in session.exec(select(Vendor).order_by(col(Vendor.id))).all()
    ]


@router.post("/vendors", response_model=VendorPublic, status_code=201)
def create_vendor(data: VendorCreate, session: SessionDep, ctx: CtxDep) -> VendorPublic:
    vendor = vendors.create_vendor(session, ctx, data)
    session.commit()
    return VendorPublic.model_validate(vendor)


@router.patch("/vendors/{vendor_id}", response_model=VendorPublic)
def update_vendor(vendor_id: RowId, data: VendorUpdate, session: SessionDep, ctx: CtxDep) -> VendorPublic:
    vendor = vendors.update_vendor(session, ctx, vendors.get_vendor(session, vendor_id), data)
    session.commit()
    return VendorPublic.model_validate(vendor)


@router.post("/vendors/{vendor_id}/approve", response_model=VendorPublic, responses={409: {}})
def approve_vendor(vendor_id: RowId, session: SessionDep, ctx: CtxDep) -> VendorPublic:
    vendor = vendors.set_status(session, ctx, vendors.get_vendor(session, vendor_id), VendorStatus.approved)
    session.commit()
    return VendorPublic.model_validate(vendor)


@router.post("/vendors/{vendor_id}/suspend", response_model=VendorPublic)
def suspend_vendor(vendor_id: RowId, session: SessionDep, ctx: CtxDep) -> VendorPublic:
    vendor = vendors.set_status(session, ctx, vendors.get_vendor(session, vendor_id), VendorStatus.suspended)
    session.commit()
    return VendorPublic.model_validate(vendor)


@router.post(
    "/exhibits/{exhibit_id}/outsource",
    response_model=OutsourcingPublic,
    status_code=201,
    responses={409: {"description": "the vendor may not take it; the reason is given"}},
)
def outsource(
    exhibit: ExhibitDep, data: DispatchRequest, session: SessionDep, ctx: CtxDep
) -> OutsourcingPublic:
    """Send an exhibit to an approved vendor (custody event, image hash, due date, cost)."""
    record = vendors.dispatch(session, ctx, exhibit, vendors.get_vendor(session, data.vendor_id), data.reason)
    session.commit()
    return _out(record)


@router.post(
    "/cases/{case_id}/outsource",
    response_model=list[OutsourcingPublic],
    status_code=201,
    responses={409: {"description": "one exhibit may not go: none is sent; the reason is given"}},
)
def outsource_case(
    case: CaseDep, data: DispatchRequest, session: SessionDep, ctx: CtxDep
) -> list[OutsourcingPublic]:
    """Send every exhibit of the case not yet examined to the vendor, all or none."""
    vendor = vendors.get_vendor(session, data.vendor_id)
    waiting = session.exec(
        select(Exhibit)
        .where(
            Exhibit.case_id == case.id,
            col(Exhibit.state).in_(
                [
                    s.value
                    for s in backlog.WAITING
                    if s.value not in ("triage_queued", "triaging", "in_examination")
                ]
            ),
        )
        .order_by(col(Exhibit.id))
    ).all()
    if not waiting:
        raise ConflictError("this case has no exhibit that can be sent to a vendor now")
    records = vendors.dispatch_all(session, ctx, waiting, vendor, data.reason)
    session.commit()
    return [_out(r) for r in records]


@router.get("/outsourcings", response_model=list[OutsourcingPublic])
def list_outsourcings(session: SessionDep, ctx: CtxDep, overdue: bool = False) -> list[OutsourcingPublic]:
    ctx.require(*MANAGERS)
    rows = [_out(r) for r in session.exec(select(Outsourcing).order_by(col(Outsourcing.id))).all()]
    return [r for r in rows if r.overdue] if overdue else rows


def visible_outsourcing(outsourcing_id: RowId, session: SessionDep, ctx: CtxDep) -> Outsourcing:
    return access.get_scoped(session, ctx, Outsourcing, outsourcing_id, "outsourcing")


@router.post("/outsourcings/{outsourcing_id}/return", response_model=OutsourcingPublic, responses={409: {}})
def receive(
    record: Annotated[Outsourcing, Depends(visible_outsourcing)],
    data: ReturnRequest,
    session: SessionDep,
    ctx: CtxDep,
) -> OutsourcingPublic:
    """Record the return: the vendor's report and a fresh check of the image hash."""
    record = vendors.receive(session, ctx, record, data.report_reference, data.examined)
    session.commit()
    return _out(record)


@router.put("/budgets/{financial_year}", status_code=204)
def set_budget(
    financial_year: Annotated[str, Path(pattern=r"^[0-9]{4}-[0-9]{2}$", examples=["2026-27"])],
    data: BudgetSet,
    session: SessionDep,
    ctx: CtxDep,
) -> None:
    vendors.set_budget(session, ctx, financial_year, data.amount_pence)
    session.commit()


@router.get("/backlog")
def backlog_figures(session: SessionDep, ctx: CtxDep) -> dict[str, object]:
    """Today's backlog: by state and device, age buckets, child-welfare waits, pace, vendors, spend."""
    ctx.require(*MANAGERS)
    return backlog.figures(session, utcnow())


@router.get("/backlog.csv", response_class=PlainTextResponse)
def backlog_csv(session: SessionDep, ctx: CtxDep) -> PlainTextResponse:
    ctx.require(*MANAGERS)
    return PlainTextResponse(backlog.figures_csv(backlog.figures(session, utcnow())), media_type="text/csv")


@router.get("/backlog/forecast")
def forecast(
    session: SessionDep,
    ctx: CtxDep,
    extra_examiners: Annotated[int, Query(ge=0, le=1000)] = 0,
    extra_outsourcing_per_month: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> dict[str, object]:
    """The date the backlog clears at the current pace, and with more examiners or outsourcing."""
    ctx.require(*MANAGERS)
    return backlog.forecast(session, utcnow(), extra_examiners, extra_outsourcing_per_month)


@router.get("/backlog/recommendation")
def recommendation(session: SessionDep, ctx: CtxDep, target_date: date) -> dict[str, object]:
    """Which exhibits to outsource to which vendor to meet ``target_date``, and the effect on
    the waits of child-welfare cases."""
    ctx.require(*MANAGERS)
    if target_date <= utcnow().date():
        raise FieldValidationError("target_date", "must be in the future")
    return backlog.recommend(session, utcnow(), target_date)
