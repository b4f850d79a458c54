"""Engine and session creation. Nothing connects at import; callers pass sessions in."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlmodel import Session, create_engine

from triage.clock import utcnow
from triage.errors import ConfigurationError
from triage.settings import without_password

AUDIT_PENDING = "triage.audit.pending"
"""Where ``audit.record`` keeps a session's events until they are chained at commit."""


def json_text(value: Any) -> str:
    """How every JSON column is written: compact, by orjson. One serialiser everywhere means
    equal values are equal text, so bulk writes can skip unchanged rows by comparing text."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def database_trouble(exc: BaseException, database_url: str) -> str | None:
    """One line for a database that cannot be reached or used (not running, a wrong password,
    locked, full) or that has no tables yet, naming it without its password; None for any
    other error. Commands answer with it rather than with a page of traceback."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    if not isinstance(exc, OperationalError | ProgrammingError):
        return None
    reason = (str(exc.orig) if exc.orig is not None else str(exc)).strip().splitlines()[0]
    where = without_password(database_url)
    if "no such table" in reason or ("relation" in reason and "does not exist" in reason):
        return f"the database {where} has no tables yet, or older ones ({reason}): run `triage db upgrade`"
    if isinstance(exc, ProgrammingError):
        return None  # a statement of ours that is wrong: its traceback is wanted
    return f"the database {where} cannot be used: {reason}"


def database_now(session: Session) -> datetime:
    """Now by the database's clock: the one clock that every worker and API machine shares,
    for leases that one machine sets and another sweeps (on a laboratory network without a
    time server, machines' clocks drift apart by minutes, and a run's lease is one). SQLite is
    one machine's file: its clock is this machine's."""
    if session.get_bind().dialect.name == "postgresql":
        value: datetime = session.execute(text("SELECT clock_timestamp()")).scalar_one()
        return value.astimezone(UTC)
    return utcnow()


def dialect_insert(dialect: str) -> Any:
    """``insert`` of the database's own dialect, which has ``on_conflict_do_*`` (PostgreSQL's
    and SQLite's spell it alike)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    return insert


_URL_FORMS = "sqlite:///path/to/triage.db or postgresql+psycopg://user@host/database"


def _usable_url(database_url: str) -> URL:
    """``database_url`` parsed, its kind of database known; a one-line refusal otherwise (it was
    SQLAlchemy's traceback at the start of every command and of the server). The URL itself is
    not repeated: it may hold a password."""
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise ConfigurationError(f"TRIAGE_DATABASE_URL is not a database URL; give {_URL_FORMS}") from None
    try:
        url.get_dialect()
    except NoSuchModuleError:
        kind = url.drivername
        raise ConfigurationError(
            f"TRIAGE_DATABASE_URL names {kind!r}, a database this system cannot use; give {_URL_FORMS}"
        ) from None
    return url


def make_engine(database_url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL and ``BEGIN IMMEDIATE`` transactions
    so that concurrent writers (audit chain, queue claims) serialise instead of failing late."""
    kwargs.setdefault("json_serializer", json_text)
    url = _usable_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            database_url,
            connect_args={"check_same_thread": False, "timeout": 30},
            **kwargs,
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(database_url, pool_pre_ping=True, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def end_read_transaction(session: Session) -> None:
    """End the transaction a session holds for what it has only read (an API request's, begun
    by loading its caller) before work that takes minutes, such as indexing a hash set.

    On SQLite every transaction holds the database's write lock (``BEGIN IMMEDIATE``), so
    every other writer (workers' heartbeats, claims, intake) would wait and then fail; on
    PostgreSQL the session would sit idle in a transaction, holding back vacuum, or be ended
    by a server's ``idle_in_transaction_session_timeout``. The next statement begins a new
    transaction. Objects loaded stay usable (the application's sessions do not even expire
    them on commit; elsewhere the next access reloads them)."""
    # Every change here is audited, so audit events waiting for the commit mean a change too
    # (one made with a statement, which the session's own bookkeeping does not show).
    if session.new or session.dirty or session.deleted or session.info.get(AUDIT_PENDING):
        raise RuntimeError("the session has unsaved changes: commit or roll them back first")
    session.commit()
