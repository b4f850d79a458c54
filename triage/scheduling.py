"""Small clock helpers shared by the queue and the pages."""

from __future__ import annotations

from datetime import datetime

import scoring
from triage.models.cases import Case
from triage.models.types import utcnow


def restriction_days_today(case: Case, now: datetime | None = None) -> int | None:
    """Days the case's family restriction has been in force (None if none is)."""
    from triage.queue import case_facts

    return scoring.restriction_days(case_facts(case), (now or utcnow()).date())
