"""The scheduled rescore every worker's sweeper runs: one at a time across workers."""

from __future__ import annotations

from datetime import date

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from tests.conftest import make_account
from tests.factories import queued_cases
from triage import queue
from triage.models.accounts import Role
from triage.models.queue import CaseScore
from triage.settings import Settings
from workers.sweeper import rescore_all

CASES = 5


def _scores(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(CaseScore)).one())


def test_a_scheduled_rescore_skips_while_another_runs_then_scores_every_case(
    engine: Engine, settings: Settings
) -> None:
    officer = make_account(engine, "officer", Role.investigator)
    assert officer.id is not None
    queued_cases(engine, CASES, officer.id, seed=3, today=date(2026, 11, 20))
    if engine.dialect.name == "postgresql":
        # Another worker's rescore holds the lock for the length of its transaction.
        with engine.connect() as other:
            other.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": queue.RESCORE_LOCK})
            assert rescore_all(engine, settings) == 0
            assert _scores(engine) == 0  # skipped: nothing written
            other.rollback()  # that rescore's transaction ends, and the lock with it
    assert rescore_all(engine, settings) == CASES
    assert _scores(engine) == CASES
