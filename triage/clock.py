"""The one clock of the program (UTC, timezone-aware). Kept apart from the database types so
that code with no database, such as the scan and its worker processes, need not load them."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
