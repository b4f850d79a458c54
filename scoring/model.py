"""What goes into a score and what comes out. Plain data: no database, no clock.

The types made once per case and factor in a rescore (:class:`CaseFacts`, :class:`Factor`,
:class:`Score`) are plain dataclasses, neither frozen nor slotted. A frozen dataclass's
``__init__`` sets each field through ``object.__setattr__``: building them was a third of
scoring 100,000 cases (1.7 us against 0.3 us for a four-field value here). A slotted one
builds as fast, but orjson writes it at a third of the speed of one with a ``__dict__`` (3.8 us
against 1.2 us for a case's factors). Treat them as values all the same: nothing changes one
after it is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum


@dataclass
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


@dataclass
class Factor:
    code: str
    label: str
    points: float
    source: str  # the fact it came from, in words

    def as_dict(self) -> dict[str, str | float]:
        """The factor as stored (``case_score.factors``) and shown in the API."""
        return {"code": self.code, "label": self.label, "points": self.points, "source": self.source}


@dataclass
class Score:
    total: float
    factors: tuple[Factor, ...]
    policy_version: str
    pinned: bool = False
    held: bool = False

    def sort_key(self) -> tuple[int, float]:
        """Higher first: pinned cases, then by points; held cases last."""
        return (1 if self.pinned else -1 if self.held else 0, self.total)
