"""The audit log's hash chain: intact logs verify; edited or removed rows are found."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from tests.conftest import Users
from triage import audit
from triage.cli import app as cli
from triage.context import system_context
from triage.settings import get_settings


def _write_events(engine: Engine, n: int) -> None:
    with Session(engine) as session:
        for i in range(n):
            audit.record(session, system_context(), "test.event", "thing", i, {"v": i}, {"v": i + 1})
        session.commit()


def _verify(engine: Engine) -> audit.ChainReport:
    with Session(engine) as session:
        return audit.verify_chain(session)


def test_an_untouched_log_verifies(engine: Engine) -> None:
    _write_events(engine, 25)
    report = _verify(engine)
    assert report.ok and report.events == 25


def test_editing_a_row_by_hand_is_found_at_that_row(engine: Engine) -> None:
    _write_events(engine, 10)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_event SET actor_name = 'mallory' WHERE id = 4"))
    report = _verify(engine)
    assert not report.ok and report.first_broken_id == 4 and "edited" in report.reason


def test_removing_a_row_by_hand_is_found_at_the_next_row(engine: Engine) -> None:
    _write_events(engine, 10)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_event WHERE id = 6"))
    report = _verify(engine)
    assert not report.ok and report.first_broken_id == 7 and "removed" in report.reason


def test_rewriting_a_row_and_its_own_hash_still_breaks_the_next_link(engine: Engine) -> None:
    _write_events(engine, 5)
    with Session(engine) as session:
        from triage.models.audit import AuditEvent

        row = session.get(AuditEvent, 2)
        assert row is not None
        row.after = {"v": 999}
        row.hash = audit.event_hash(row.prev_hash, row)
        session.add(row)
        session.commit()
    report = _verify(engine)
    assert not report.ok and report.first_broken_id == 3


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> CliRunner:
    monkeypatch.setenv("TRIAGE_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_triage_audit_verify_passes_then_fails_after_a_hand_edit(
    engine: Engine, users: Users, cli_env: CliRunner
) -> None:
    result = cli_env.invoke(cli, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "intact" in result.output
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_event SET action = 'nothing.happened' WHERE id = 2"))
    result = cli_env.invoke(cli, ["audit", "verify"])
    assert result.exit_code == 1
    assert "broken at event 2" in result.output
