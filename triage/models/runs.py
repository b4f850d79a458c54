"""Triage runs (the record of truth for every run), their hits, and the registered hash sets
and YARA rule sets runs use."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField
from sqlmodel import Field, SQLModel

from triage.models.requests import RequestModel
from triage.models.types import EnumString, RowRef, UTCDateTime, utcnow


class RunState(StrEnum):
    queued = "queued"
    verifying = "verifying"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    integrity_failed = "integrity_failed"
    quarantined = "quarantined"
    cancelled = "cancelled"


ACTIVE_RUN_STATES = frozenset({RunState.queued, RunState.verifying, RunState.running})
FINAL_RUN_STATES = frozenset(set(RunState) - ACTIVE_RUN_STATES)


class TriageRun(SQLModel, table=True):
    __tablename__ = "triage_run"

    id: int | None = Field(default=None, primary_key=True)
    exhibit_id: int = Field(foreign_key="exhibit.id", index=True)
    image_id: int = Field(foreign_key="evidence_image.id")
    state: RunState = Field(default=RunState.queued, sa_type=EnumString(RunState, 20), index=True)
    attempts: int = 0
    max_attempts: int = 3
    worker_id: str | None = Field(default=None, sa_type=sa.String(200))
    lease_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    heartbeat_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cancel_requested: bool = False
    phase: str = Field(default="", sa_type=sa.String(20))
    bytes_done: int = Field(default=0, sa_type=sa.BigInteger)
    bytes_total: int = Field(default=0, sa_type=sa.BigInteger)
    files_done: int = 0
    files_total: int = 0
    hashset_ids: list[int] = Field(default_factory=list, sa_type=sa.JSON)
    ruleset_id: int | None = Field(default=None, foreign_key="rule_set.id")
    summary: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    provenance: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    error: str = Field(default="", sa_type=sa.Text)
    listing_path: str | None = Field(default=None, sa_type=sa.Text)
    dfxml_path: str | None = Field(default=None, sa_type=sa.Text)
    requested_by: int | None = Field(default=None, foreign_key="account.id")
    queued_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    dispatched_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class TriageHit(SQLModel, table=True):
    """A hash-set match or a YARA match of one file. Written with the run's success, all
    at once, so a second attempt replaces the first and nothing is doubled."""

    __tablename__ = "triage_hit"
    __table_args__ = (sa.UniqueConstraint("run_id", "partition", "path", "source", "name", name="uq_hit"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="triage_run.id", index=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    source: str = Field(sa_type=sa.String(10))  # "hashset" or "yara"
    name: str = Field(sa_type=sa.String(200))  # hash-set name or rule name
    category: str = Field(default="", sa_type=sa.String(200))
    alert: bool = True
    partition: int = 0
    path: str = Field(sa_type=sa.Text)
    inode: int = Field(default=0, sa_type=sa.BigInteger)
    size: int = Field(default=0, sa_type=sa.BigInteger)
    md5: str | None = Field(default=None, sa_type=sa.String(32))
    sha1: str | None = Field(default=None, sa_type=sa.String(40))
    sha256: str | None = Field(default=None, sa_type=sa.String(64))
    mime: str | None = Field(default=None, sa_type=sa.String(100))


class HashSetRecord(SQLModel, table=True):
    __tablename__ = "hash_set"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=sa.String(200))
    kind: str = Field(sa_type=sa.String(16))
    format: str = Field(sa_type=sa.String(16))
    source_path: str = Field(sa_type=sa.Text)
    sha256: str = Field(sa_type=sa.String(64), unique=True)
    entries: int = Field(default=0, sa_type=sa.BigInteger)
    store_path: str = Field(sa_type=sa.Text)
    active: bool = True
    created_by: int | None = Field(default=None, foreign_key="account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RuleSetRecord(SQLModel, table=True):
    __tablename__ = "rule_set"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=sa.String(200))
    sha256: str = Field(sa_type=sa.String(64), unique=True)
    path: str = Field(sa_type=sa.Text)  # folder holding the rule files as registered
    files: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    rule_count: int = 0
    active: bool = True
    created_by: int | None = Field(default=None, foreign_key="account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RunStart(RequestModel):
    image_id: RowRef | None = None  # default: the exhibit's newest image
    hashset_ids: list[RowRef] | None = PField(default=None, max_length=1000)  # default: every active hash set
    ruleset_id: RowRef | None = None  # default: the newest active rule set


class RunPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    exhibit_id: int
    image_id: int
    state: RunState
    attempts: int
    max_attempts: int
    worker_id: str | None
    lease_expires_at: datetime | None
    heartbeat_at: datetime | None
    cancel_requested: bool
    phase: str
    bytes_done: int
    bytes_total: int
    files_done: int
    files_total: int
    hashset_ids: list[int]
    ruleset_id: int | None
    summary: dict[str, Any] | None
    provenance: dict[str, Any] | None
    error: str
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    seconds_left: float | None = None
    has_listing: bool = False
    has_dfxml: bool = False


class HitPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    run_id: int
    source: str
    name: str
    category: str
    alert: bool
    partition: int
    path: str
    inode: int
    size: int
    md5: str | None
    sha1: str | None
    sha256: str | None
    mime: str | None


class HashSetRegister(RequestModel):
    path: str = PField(min_length=1, max_length=4096)
    name: str | None = PField(default=None, max_length=200)
    kind: str | None = PField(default=None, pattern="^(known_bad|known_good)$")


class HashSetPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: str
    format: str
    sha256: str
    entries: int
    active: bool
    created_at: datetime


class RuleSetRegister(RequestModel):
    path: str = PField(min_length=1, max_length=4096)
    name: str | None = PField(default=None, max_length=200)


class RuleSetPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    sha256: str
    files: list[str]
    rule_count: int
    active: bool
    created_at: datetime
    in_use: bool = False  # new runs use it: the newest active rule set
