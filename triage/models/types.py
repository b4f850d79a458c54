"""Column types shared by every table."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field as PField
from sqlalchemy import DateTime, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from triage.clock import utcnow

__all__ = ["INT32_MAX", "EnumString", "Int32", "RowRef", "UTCDateTime", "utcnow"]

INT32_MAX = 2**31 - 1
"""The largest value of an ``integer`` column on PostgreSQL: every id, and amounts in pence.
Larger numbers in a request are refused with 422 before any query; the database drivers cannot
even bind them (SQLite's raises OverflowError, which was a 500)."""

RowRef = Annotated[int, PField(ge=1, le=INT32_MAX)]
"""An id given in a request body (the API's path ids are :data:`api.deps.RowId`)."""

Int32 = Annotated[int, PField(ge=0, le=INT32_MAX)]
"""A count or amount stored in an ``integer`` column (or in JSON read back as one)."""


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class EnumString(TypeDecorator[Any]):
    """A ``StrEnum`` stored as plain text (no native database enum to migrate), read back as
    the enum member."""

    impl = String
    cache_ok = True

    def __init__(self, enum_class: type[StrEnum], length: int = 32) -> None:
        super().__init__(length)
        self.enum_class = enum_class
        self.length = length

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else self.enum_class(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else self.enum_class(value)
