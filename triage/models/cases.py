"""Cases and their safeguarding facts."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, model_validator
from pydantic import Field as PField
from sqlmodel import Field, SQLModel

from triage.models.requests import RequestModel
from triage.models.types import EnumString, RowRef, UTCDateTime, utcnow


class OffenceCategory(StrEnum):
    iioc = "iioc"  # indecent images of children
    child_sexual_abuse = "child_sexual_abuse"
    child_sexual_exploitation = "child_sexual_exploitation"
    grooming = "grooming"
    other_sexual_offence = "other_sexual_offence"
    terrorism = "terrorism"
    homicide = "homicide"
    violence = "violence"
    fraud = "fraud"
    drugs = "drugs"
    other = "other"


class CaseStatus(StrEnum):
    open = "open"
    closed = "closed"


class RestrictionKind(StrEnum):
    no_contact_own_children = "no_contact_own_children"
    excluded_from_family_home = "excluded_from_family_home"
    supervised_contact_only = "supervised_contact_only"


class Case(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    crime_reference: str = Field(sa_type=sa.String(64), unique=True, index=True)
    offence_category: OffenceCategory = Field(sa_type=EnumString(OffenceCategory, 40))
    officer_id: int = Field(foreign_key="account.id", index=True)
    team: str = Field(default="", sa_type=sa.String(100))
    status: CaseStatus = Field(default=CaseStatus.open, sa_type=EnumString(CaseStatus, 16))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    received_date: date
    # Safeguarding facts
    children_in_household: int = 0
    suspect_access_children_home: bool = False
    suspect_access_children_work: bool = False
    section47_open: bool = False
    child_protection_plan: bool = False
    restriction_kind: RestrictionKind | None = Field(default=None, sa_type=EnumString(RestrictionKind, 40))
    restriction_start: date | None = None
    restriction_end: date | None = None
    bail_return_date: date | None = None
    next_court_date: date | None = None
    safeguarding_notes: str = Field(default="", sa_type=sa.Text)


class CaseMember(SQLModel, table=True):
    """An investigator added to a case besides its officer in the case."""

    __tablename__ = "case_member"

    case_id: int = Field(foreign_key="case.id", primary_key=True)
    account_id: int = Field(foreign_key="account.id", primary_key=True, index=True)
    added_by: int = Field(foreign_key="account.id")
    added_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class _SafeguardingFields(BaseModel):
    children_in_household: int = PField(default=0, ge=0, le=50)
    suspect_access_children_home: bool = False
    suspect_access_children_work: bool = False
    section47_open: bool = False
    child_protection_plan: bool = False
    restriction_kind: RestrictionKind | None = None
    restriction_start: date | None = None
    restriction_end: date | None = None
    bail_return_date: date | None = None
    next_court_date: date | None = None
    safeguarding_notes: str = PField(default="", max_length=10_000)


def check_restriction(kind: object, start: date | None, end: date | None) -> None:
    """A restriction needs a kind and a start date together; it cannot end before it starts."""
    if (kind is None) != (start is None):
        raise ValueError("restriction_kind and restriction_start must be given together")
    if end is not None and start is None:
        raise ValueError("restriction_end needs restriction_start")
    if start is not None and end is not None and end < start:
        raise ValueError("restriction_end is before restriction_start")


class CaseCreate(RequestModel, _SafeguardingFields):
    crime_reference: str = PField(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9/_.\-]+$")
    offence_category: OffenceCategory
    officer_id: RowRef
    team: str = PField(default="", max_length=100)
    received_date: date

    @model_validator(mode="after")
    def _restriction(self) -> CaseCreate:
        check_restriction(self.restriction_kind, self.restriction_start, self.restriction_end)
        return self


class CaseUpdate(RequestModel):
    """Every field optional; only those sent change. The combined result is re-validated."""

    offence_category: OffenceCategory | None = None
    officer_id: RowRef | None = None
    team: str | None = PField(default=None, max_length=100)
    status: CaseStatus | None = None
    received_date: date | None = None
    children_in_household: int | None = PField(default=None, ge=0, le=50)
    suspect_access_children_home: bool | None = None
    suspect_access_children_work: bool | None = None
    section47_open: bool | None = None
    child_protection_plan: bool | None = None
    restriction_kind: RestrictionKind | None = None
    restriction_start: date | None = None
    restriction_end: date | None = None
    bail_return_date: date | None = None
    next_court_date: date | None = None
    safeguarding_notes: str | None = PField(default=None, max_length=10_000)


class CasePublic(_SafeguardingFields):
    model_config = ConfigDict(from_attributes=True)

    id: int
    crime_reference: str
    offence_category: OffenceCategory
    officer_id: int
    team: str
    status: CaseStatus
    created_at: datetime
    updated_at: datetime
    received_date: date


class CaseMemberAdd(RequestModel):
    account_id: RowRef
