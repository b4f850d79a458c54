"""Accounts and roles."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlmodel import Field, SQLModel

from triage.models.types import EnumString, UTCDateTime, utcnow


class Role(StrEnum):
    admin = "admin"
    manager = "manager"
    examiner = "examiner"
    investigator = "investigator"


STAFF_ROLES = frozenset({Role.admin, Role.manager, Role.examiner})


class Account(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(sa_type=sa.String(64), unique=True, index=True)
    full_name: str = Field(default="", sa_type=sa.String(200))
    role: Role = Field(sa_type=EnumString(Role, 16))
    team: str = Field(default="", sa_type=sa.String(100))
    password_hash: str = Field(sa_type=sa.String(200))
    is_active: bool = True
    # Carried by each token issued; raised when the password changes or the account is
    # disabled, so that every token issued before stops working (see ``account_from_token``).
    token_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # Examiner qualifications: device kinds examined (empty = all) and IIOC clearance.
    device_types: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    iioc_cleared: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WithdrawnToken(SQLModel, table=True):
    """A token signed out before it expired: refused until its expiry, after which it would be
    refused anyway and the row may go (``accounts.sign_out`` clears such rows)."""

    __tablename__ = "withdrawn_token"

    jti: str = Field(primary_key=True, sa_type=sa.String(64))
    account_id: int = Field(foreign_key="account.id", index=True)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    withdrawn_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AccountPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    full_name: str
    role: Role
    team: str
    is_active: bool
    device_types: list[str]
    iioc_cleared: bool
    created_at: datetime
    disabled_at: datetime | None
