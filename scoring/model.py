"""What goes into a score and what comes out. Plain data: no database, no clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum


@dataclass(frozen=True)
class CaseFacts:
    offence_category: str
    received_date: date
    children_in_household: int = 0
    suspect_access_children_home: bool = False
    suspect_access_children_work: bool = False
    section47_open: bool = False
    child_protection_plan: bool = False
    restriction_kind: str | None = None
    restriction_start: date | None = None
    restriction_end: date | None = None
    bail_return_date: date | None = None
    next_court_date: date | None = None


@dataclass(frozen=True)
class TriageFacts:
    """What triage found on the case's devices."""

    known_bad_by_category: dict[str, int] = field(default_factory=dict)
    child_yara_hits: int = 0


class OverrideKind(StrEnum):
    boost = "boost"
    pin = "pin"
    hold = "hold"


@dataclass(frozen=True)
class Override:
    kind: OverrideKind
    reason: str
    author: str
    expires_at: datetime
    points: float = 0.0


@dataclass(frozen=True)
class Factor:
    code: str
    label: str
    points: float
    source: str  # the fact it came from, in words


@dataclass(frozen=True)
class Score:
    total: float
    factors: tuple[Factor, ...]
    policy_version: str
    pinned: bool = False
    held: bool = False

    def sort_key(self) -> tuple[int, float]:
        """Higher first: pinned cases, then by points; held cases last."""
        return (1 if self.pinned else -1 if self.held else 0, self.total)
