"""The audit log's hash chain: intact logs verify; edited or removed rows are found."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from tests.conftest import Users
from triage import audit
from triage.cli import app as cli
from triage.context import system_context
from triage.db import end_read_transaction
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
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[CliRunner]:
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


def test_a_change_and_its_events_commit_together_or_not_at_all(engine: Engine) -> None:
    """The events are chained as the transaction commits (on PostgreSQL in the same message as
    COMMIT): writes not yet flushed still belong to that transaction, and an append that
    fails (here: an event naming an account that does not exist) commits nothing."""
    from sqlalchemy.exc import IntegrityError
    from sqlmodel import select

    from triage.context import Context
    from triage.models.accounts import Account, Role
    from triage.models.audit import AuditEvent

    ghost = Context(actor=Account(id=999_999, username="ghost", role=Role.admin, password_hash="x"))
    with Session(engine) as session:
        session.add(Account(username="lost", role=Role.examiner, password_hash="x"))  # not flushed
        audit.record(session, ghost, "test.event", "thing", 1)
        with pytest.raises(IntegrityError):
            session.commit()
        session.rollback()
    with Session(engine) as session:
        assert session.exec(select(Account).where(Account.username == "lost")).first() is None
        assert session.exec(select(AuditEvent)).first() is None
        session.add(Account(username="kept", role=Role.examiner, password_hash="x"))
        audit.record(session, system_context(), "test.event", "thing", 2)
        session.commit()
    with Session(engine) as session:
        assert session.exec(select(Account).where(Account.username == "kept")).first() is not None
        assert [e.object_id for e in session.exec(select(AuditEvent)).all()] == ["2"]
    assert _verify(engine).ok


def test_on_postgresql_the_chain_lock_is_free_once_the_append_returns(engine: Engine) -> None:
    """Every audited write takes the chain's advisory lock; examiners claiming at once queue on
    it. The append and the COMMIT travel in one message, so by the time the client has the
    append's answer the lock is already released: no round trip is spent holding it."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the chain's advisory lock is PostgreSQL's")
    from sqlalchemy import event

    free: list[bool] = []

    def probe(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if "triage_audit_append" in statement:
            with engine.connect() as other:
                free.append(bool(other.execute(text("SELECT pg_try_advisory_xact_lock(8015127)")).scalar()))
                other.rollback()

    event.listen(engine, "after_cursor_execute", probe)
    try:
        _write_events(engine, 3)
    finally:
        event.remove(engine, "after_cursor_execute", probe)
    assert free == [True]
    assert _verify(engine).ok


def test_verifying_ends_its_transaction_after_each_batch(engine: Engine) -> None:
    # A log of millions takes minutes to verify; on SQLite a transaction holds every writer
    # off, so one transaction for the whole walk stopped the workers and the API meanwhile.
    _write_events(engine, 25)
    ended: list[int] = []
    with Session(engine) as session:
        event.listen(session, "after_commit", lambda _s: ended.append(1))
        report = audit.verify_chain(session, batch=10)
    assert report.ok and report.events == 25
    assert len(ended) == 3  # after the batches of 10, 10 and 5


def test_a_read_transaction_is_not_ended_over_a_change_waiting_for_its_commit(engine: Engine) -> None:
    # end_read_transaction commits: it must refuse when the session holds a change, even one
    # made with a statement (the session's bookkeeping misses those; their audit events don't).
    with Session(engine) as session:
        audit.record(session, system_context(), "test.event", "thing", 1, None, {"v": 1})
        with pytest.raises(RuntimeError, match="unsaved changes"):
            end_read_transaction(session)
        session.rollback()
    assert _verify(engine).events == 0
