"""Evidence images registered against exhibits."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField
from sqlmodel import Field, SQLModel

from triage.models.requests import RequestModel
from triage.models.types import EnumString, UTCDateTime, utcnow


class VerificationState(StrEnum):
    unverified = "unverified"
    verified = "verified"
    failed = "failed"


class EvidenceImage(SQLModel, table=True):
    __tablename__ = "evidence_image"

    id: int | None = Field(default=None, primary_key=True)
    exhibit_id: int = Field(foreign_key="exhibit.id", index=True)
    path: str = Field(sa_type=sa.Text)
    format: str = Field(sa_type=sa.String(16))
    segments: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    size_bytes: int = Field(sa_type=sa.BigInteger)
    media_size_bytes: int | None = Field(default=None, sa_type=sa.BigInteger)
    acquisition_md5: str | None = Field(default=None, sa_type=sa.String(32))
    acquisition_sha1: str | None = Field(default=None, sa_type=sa.String(40))
    acquisition_sha256: str | None = Field(default=None, sa_type=sa.String(64))
    verification_state: VerificationState = Field(
        default=VerificationState.unverified, sa_type=EnumString(VerificationState, 16)
    )
    verified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    computed_md5: str | None = Field(default=None, sa_type=sa.String(32))
    computed_sha1: str | None = Field(default=None, sa_type=sa.String(40))
    computed_sha256: str | None = Field(default=None, sa_type=sa.String(64))
    registered_by: int = Field(foreign_key="account.id")
    registered_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ImageRegister(RequestModel):
    path: str = PField(min_length=1, max_length=4096)
    acquisition_md5: str | None = PField(default=None, pattern=r"^[0-9a-fA-F]{32}$")
    acquisition_sha1: str | None = PField(default=None, pattern=r"^[0-9a-fA-F]{40}$")
    acquisition_sha256: str | None = PField(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    start_triage: bool = PField(default=True, description="queue a triage run of the image at once")


class ImagePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    exhibit_id: int
    path: str
    format: str
    segments: list[str]
    size_bytes: int
    media_size_bytes: int | None
    acquisition_md5: str | None
    acquisition_sha1: str | None
    acquisition_sha256: str | None
    verification_state: VerificationState
    verified_at: datetime | None
    computed_md5: str | None
    computed_sha1: str | None
    computed_sha256: str | None
    registered_by: int
    registered_at: datetime
