"""Extension points called inside the transaction that stores a result.

The scoring issue registers its rescoring here, so that triage results raise a case's
priority without the triage code knowing about scoring.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session

TriageResultHook = Callable[[Session, int], None]
"""hook(session, case_id): called after a run's hits are stored for that case."""

on_triage_result: list[TriageResultHook] = []


def triage_result_stored(session: Session, case_id: int) -> None:
    for hook in on_triage_result:
        hook(session, case_id)
