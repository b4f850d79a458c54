"""Approved external forensic providers, exhibits sent to them, and the outsourcing budget."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField
from sqlmodel import Field, SQLModel

from triage.models.requests import RequestModel
from triage.models.types import INT32_MAX, EnumString, Int32, RowRef, UTCDateTime, utcnow


class VendorStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    suspended = "suspended"


class OutsourcingState(StrEnum):
    with_vendor = "with_vendor"
    returned = "returned"
    returned_flagged = "returned_flagged"  # the image hash changed while away


class Vendor(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=sa.String(200), unique=True)
    iso17025_digital: bool = False  # ISO/IEC 17025 scope covering digital forensics
    fsr_code_compliant: bool = False  # Forensic Science Regulator Code
    accreditation_expires: date
    security_vetted: bool = False
    iioc_authorised: bool = False
    capacity_per_month: int = 0
    turnaround_days: int = 30
    price_pence: dict[str, int] = Field(default_factory=dict, sa_type=sa.JSON)  # by device type
    contacts: str = Field(default="", sa_type=sa.Text)
    status: VendorStatus = Field(default=VendorStatus.pending, sa_type=EnumString(VendorStatus, 12))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Outsourcing(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    exhibit_id: int = Field(foreign_key="exhibit.id", index=True)
    vendor_id: int = Field(foreign_key="vendor.id", index=True)
    state: OutsourcingState = Field(
        default=OutsourcingState.with_vendor, sa_type=EnumString(OutsourcingState, 20)
    )
    dispatched_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    dispatched_by: int | None = Field(default=None, foreign_key="account.id")
    due_date: date
    image_id: int | None = Field(default=None, foreign_key="evidence_image.id")
    dispatch_md5: str | None = Field(default=None, sa_type=sa.String(32))
    cost_pence: int = 0
    financial_year: str = Field(sa_type=sa.String(9))  # e.g. "2026-27"
    returned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    report_reference: str = Field(default="", sa_type=sa.String(200))
    return_md5: str | None = Field(default=None, sa_type=sa.String(32))


class Budget(SQLModel, table=True):
    financial_year: str = Field(sa_type=sa.String(9), primary_key=True)
    amount_pence: int = 0


class VendorCreate(RequestModel):
    name: str = PField(min_length=2, max_length=200)
    iso17025_digital: bool = False
    fsr_code_compliant: bool = False
    accreditation_expires: date
    security_vetted: bool = False
    iioc_authorised: bool = False
    capacity_per_month: int = PField(ge=0, le=100_000)
    turnaround_days: int = PField(ge=1, le=3650)
    price_pence: dict[str, Int32] = PField(default_factory=dict)
    contacts: str = PField(default="", max_length=4000)


class VendorUpdate(RequestModel):
    iso17025_digital: bool | None = None
    fsr_code_compliant: bool | None = None
    accreditation_expires: date | None = None
    security_vetted: bool | None = None
    iioc_authorised: bool | None = None
    capacity_per_month: int | None = PField(default=None, ge=0, le=100_000)
    turnaround_days: int | None = PField(default=None, ge=1, le=3650)
    price_pence: dict[str, Int32] | None = None
    contacts: str | None = PField(default=None, max_length=4000)


class VendorPublic(VendorCreate):
    model_config = ConfigDict(from_attributes=True, extra="ignore")

    id: int
    status: VendorStatus
    created_at: datetime


class DispatchRequest(RequestModel):
    vendor_id: RowRef
    reason: str = PField(default="outsourced to meet the backlog", max_length=2000)


class ReturnRequest(RequestModel):
    report_reference: str = PField(min_length=1, max_length=200)
    examined: bool = True  # False: the vendor could not finish; back to the in-house queue


class OutsourcingPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    exhibit_id: int
    vendor_id: int
    state: OutsourcingState
    dispatched_at: datetime
    due_date: date
    dispatch_md5: str | None
    cost_pence: int
    financial_year: str
    returned_at: datetime | None
    report_reference: str
    return_md5: str | None
    overdue: bool = False


class BudgetSet(RequestModel):
    amount_pence: int = PField(ge=0, le=INT32_MAX)
