"""Priority scores, manager overrides and examination tasks."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField
from sqlmodel import Field, SQLModel

from triage.models.requests import RequestModel
from triage.models.types import EnumString, UTCDateTime, utcnow


class TaskState(StrEnum):
    queued = "queued"
    claimed = "claimed"
    completed = "completed"
    withdrawn = "withdrawn"  # the exhibit left the queue another way (outsourced, ...)


class CaseScore(SQLModel, table=True):
    __tablename__ = "case_score"

    case_id: int = Field(foreign_key="case.id", primary_key=True)
    total: float = 0.0
    pinned: bool = False
    held: bool = False
    factors: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON)
    policy_version: str = Field(default="", sa_type=sa.String(40))
    computed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PriorityOverride(SQLModel, table=True):
    __tablename__ = "priority_override"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    kind: str = Field(sa_type=sa.String(8))
    points: float = 0.0
    reason: str = Field(sa_type=sa.Text)
    author_id: int = Field(foreign_key="account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ExaminationTask(SQLModel, table=True):
    __tablename__ = "examination_task"
    __table_args__ = (
        # claim-next walks queued tasks in exactly this order and stops at the first it may take
        sa.Index(
            "ix_task_claim_order",
            sa.text("pinned DESC"),
            sa.text("priority DESC"),
            "queued_at",
            "id",
            postgresql_where=sa.text("state = 'queued'"),
            sqlite_where=sa.text("state = 'queued'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    exhibit_id: int = Field(foreign_key="exhibit.id", index=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    device_type: str = Field(sa_type=sa.String(20))
    needs_iioc_clearance: bool = False
    state: TaskState = Field(default=TaskState.queued, sa_type=EnumString(TaskState, 12))
    priority: float = 0.0
    pinned: bool = False
    held: bool = False
    claimed_by: int | None = Field(default=None, foreign_key="account.id")
    lease_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempt: int = 0
    queued_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: str = Field(default="", sa_type=sa.Text)


class OverrideCreate(RequestModel):
    kind: str = PField(pattern="^(boost|pin|hold)$")
    points: float = PField(default=0.0, ge=0, le=10_000)
    reason: str = PField(min_length=3, max_length=2000)
    expires_at: datetime


class OverridePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    case_id: int
    kind: str
    points: float
    reason: str
    author_id: int
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class TaskPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    exhibit_id: int
    case_id: int
    device_type: str
    needs_iioc_clearance: bool
    state: TaskState
    priority: float
    pinned: bool
    held: bool
    claimed_by: int | None
    lease_expires_at: datetime | None
    attempt: int
    queued_at: datetime
    claimed_at: datetime | None
    completed_at: datetime | None
    outcome: str


class CompleteRequest(RequestModel):
    attempt: int
    outcome: str = PField(min_length=1, max_length=4000)


class LeaseRequest(RequestModel):
    attempt: int
