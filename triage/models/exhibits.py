"""Exhibits (seized devices), their lifecycle states and custody events."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField
from sqlmodel import Field, SQLModel

from triage.models.requests import RequestModel
from triage.models.types import EnumString, UTCDateTime, utcnow


class DeviceType(StrEnum):
    computer = "computer"
    laptop = "laptop"
    phone = "phone"
    tablet = "tablet"
    usb_stick = "usb_stick"
    external_disk = "external_disk"
    memory_card = "memory_card"
    other = "other"


class ExhibitState(StrEnum):
    registered = "registered"
    awaiting_imaging = "awaiting_imaging"
    imaged = "imaged"
    triage_queued = "triage_queued"
    triaging = "triaging"
    triaged = "triaged"
    awaiting_examination = "awaiting_examination"
    in_examination = "in_examination"
    examined = "examined"
    returned = "returned"
    disposed = "disposed"
    outsourced = "outsourced"


class Exhibit(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("case_id", "reference", name="uq_exhibit_case_ref"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    reference: str = Field(sa_type=sa.String(64))
    device_type: DeviceType = Field(sa_type=EnumString(DeviceType, 20))
    make: str = Field(default="", sa_type=sa.String(100))
    model: str = Field(default="", sa_type=sa.String(100))
    serial: str = Field(default="", sa_type=sa.String(100))
    seized_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    seized_from: str = Field(default="", sa_type=sa.String(300))
    location: str = Field(default="", sa_type=sa.String(200))
    state: ExhibitState = Field(
        default=ExhibitState.registered, sa_type=EnumString(ExhibitState, 24), index=True
    )
    state_changed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    integrity_flag: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CustodyEvent(SQLModel, table=True):
    __tablename__ = "custody_event"

    id: int | None = Field(default=None, primary_key=True)
    exhibit_id: int = Field(foreign_key="exhibit.id", index=True)
    actor_id: int | None = Field(default=None, foreign_key="account.id")  # None: a worker
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    action: str = Field(sa_type=sa.String(40))
    from_location: str = Field(default="", sa_type=sa.String(200))
    to_location: str = Field(default="", sa_type=sa.String(200))
    from_state: str | None = Field(default=None, sa_type=sa.String(24))
    to_state: str | None = Field(default=None, sa_type=sa.String(24))
    reason: str = Field(default="", sa_type=sa.Text)


class ExhibitCreate(RequestModel):
    reference: str = PField(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9/_.\-]+$")
    device_type: DeviceType
    make: str = PField(default="", max_length=100)
    model: str = PField(default="", max_length=100)
    serial: str = PField(default="", max_length=100)
    seized_at: datetime | None = None
    seized_from: str = PField(default="", max_length=300)
    location: str = PField(default="HTCU store", max_length=200)


class ExhibitUpdate(RequestModel):
    make: str | None = PField(default=None, max_length=100)
    model: str | None = PField(default=None, max_length=100)
    serial: str | None = PField(default=None, max_length=100)
    seized_at: datetime | None = None
    seized_from: str | None = PField(default=None, max_length=300)


class ExhibitPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    case_id: int
    reference: str
    device_type: DeviceType
    make: str
    model: str
    serial: str
    seized_at: datetime | None
    seized_from: str
    location: str
    state: ExhibitState
    state_changed_at: datetime
    integrity_flag: bool
    created_at: datetime


class TransitionRequest(RequestModel):
    to_state: ExhibitState
    reason: str = PField(default="", max_length=2000)


class MovementRequest(RequestModel):
    """A physical movement of the device (store, lab, vendor, court) without a state change."""

    to_location: str = PField(min_length=1, max_length=200)
    reason: str = PField(min_length=1, max_length=2000)


class CustodyEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    exhibit_id: int
    actor_id: int | None
    at: datetime
    action: str
    from_location: str
    to_location: str
    from_state: str | None
    to_state: str | None
    reason: str
