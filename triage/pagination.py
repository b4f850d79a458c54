"""Capped pagination shared by every listing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import func
from sqlmodel import Session, select

T = TypeVar("T")


@dataclass(frozen=True)
class Page:
    offset: int
    limit: int

    @classmethod
    def clamp(cls, offset: int, limit: int | None, default: int, cap: int) -> Page:
        """Negative offsets become 0; a page size over the cap is clamped, not refused."""
        size = default if limit is None else limit
        return cls(max(offset, 0), max(1, min(size, cap)))


def paginate(session: Session, query: Any, page: Page) -> tuple[list[Any], int]:
    """Rows of ``query`` for this page and the total count without paging."""
    total = session.exec(select(func.count()).select_from(query.order_by(None).subquery())).one()
    rows = session.exec(query.offset(page.offset).limit(page.limit)).all()
    return list(rows), int(total)
