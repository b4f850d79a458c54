"""Append-only audit log with a SHA-256 hash chain.

Each event stores the hash of the event before it; ``verify_chain`` recomputes every link
and names the first one that does not hold, so a row edited or removed by hand is found.
The application has no code path that updates or deletes an event.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import sql
from sqlalchemy import event as sa_event
from sqlalchemy import insert
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, select

from triage.context import Context
from triage.db import AUDIT_PENDING, end_read_transaction
from triage.models.audit import AuditEvent
from triage.models.types import utcnow

GENESIS = "0" * 64


def snapshot(obj: Any, exclude: set[str] | None = None) -> dict[str, Any]:
    """A JSON-ready copy of a model's fields, for before/after values."""
    data: dict[str, Any] = obj.model_dump(mode="json", exclude=exclude or set())
    return data


def _canonical_time(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_body(event: AuditEvent | PendingEvent) -> str:
    """The event's content as canonical JSON (sorted keys, no spaces, ASCII only)."""
    body = {
        "at": _canonical_time(event.at),
        "actor_id": event.actor_id,
        "actor_name": event.actor_name,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "before": event.before,
        "after": event.after,
        "request_id": event.request_id,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def link(prev_hash: str, body: str) -> str:
    """One link of the chain. PostgreSQL's ``triage_audit_append`` (migration 0005) computes
    the same: sha256(prev_hash || '\\n' || body), hex."""
    return hashlib.sha256((prev_hash + "\n" + body).encode()).hexdigest()


def event_hash(prev_hash: str, event: AuditEvent | PendingEvent) -> str:
    """The SHA-256 over the previous hash and this event's content, canonically serialised."""
    return link(prev_hash, canonical_body(event))


def add_created(
    session: Session, ctx: Context, obj: Any, action: str, object_type: str, object_id: object = None
) -> None:
    """Insert a new row (flushed, so it has its id) and audit its creation; the event names
    ``object_id`` if given, else the row's own id."""
    session.add(obj)
    session.flush()
    record(session, ctx, action, object_type, obj.id if object_id is None else object_id, None, snapshot(obj))


def add_changed(
    session: Session,
    ctx: Context,
    obj: Any,
    before: dict[str, Any],
    action: str,
    object_type: str,
    object_id: object = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Write a changed row (flushed) and audit the change from ``before`` (its snapshot taken
    before the change) to now, with ``details`` added to the after side; the event names
    ``object_id`` if given, else the row's id."""
    session.add(obj)
    session.flush()
    after = {**snapshot(obj), **(details or {})}
    record(session, ctx, action, object_type, obj.id if object_id is None else object_id, before, after)


@dataclass(frozen=True)
class PendingEvent:
    """An event recorded in a transaction, not yet chained (the columns of AuditEvent but
    its id and links; a plain object, as many are made on busy paths such as claims)."""

    at: datetime
    actor_id: int | None
    actor_name: str
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str


def record(
    session: Session,
    ctx: Context,
    action: str,
    object_type: str,
    object_id: object,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Add one event to the caller's transaction; it is chained and written at commit, so it
    commits or rolls back with the change it describes."""
    event = PendingEvent(
        at=utcnow(),
        actor_id=ctx.actor_id,
        actor_name=ctx.actor_name,
        action=action,
        object_type=object_type,
        object_id=str(object_id) if object_id is not None else "",
        before=before,
        after=after,
        request_id=ctx.request_id,
    )
    session.info.setdefault(_PENDING, []).append(event)


_PENDING = AUDIT_PENDING


_TABLE = AuditEvent.__table__  # type: ignore[attr-defined]
_LAST_HASH = select(_TABLE.c.hash).order_by(_TABLE.c.id.desc()).limit(1)
_INSERT = insert(_TABLE)


def _chain_pending(session: Session) -> None:
    """Chain and insert the transaction's events as it commits, so the lock that keeps the chain
    linear (PostgreSQL advisory lock; SQLite's single writer) is held only for these inserts and
    the commit, not for the whole transaction.

    PostgreSQL: one message carries ``triage_audit_append`` and ``COMMIT`` (a simple query of
    two statements, the events as a quoted literal), so the lock is released in the round trip
    that takes it. Concurrent writers such as examiners claiming work queue on that lock, so its
    holder must not wait on the network. Should the append fail, PostgreSQL skips the COMMIT
    and the error rolls the transaction back; the driver's own commit that follows finds
    nothing left to commit. So this must be the last ``before_commit`` listener that writes: a
    later one's writes would fall outside the committed transaction (there is none)."""
    session.flush()  # the transaction's last writes, before its events are chained
    pending: list[PendingEvent] = session.info.pop(_PENDING, [])
    if not pending:
        return
    if session.get_bind().dialect.name == "postgresql":
        events = [
            {**vars(event), "at": _canonical_time(event.at), "body": canonical_body(event)}
            for event in pending
        ]
        connection = session.connection()
        quoted = sql.Literal(json.dumps(events)).as_string(connection.connection.driver_connection)
        # Sent without parameters, so that the driver reads no '%' in the text as a placeholder.
        connection.exec_driver_sql(
            f"SELECT triage_audit_append({quoted}::json); COMMIT", execution_options={"no_parameters": True}
        )
        return
    prev = session.execute(_LAST_HASH).scalar() or GENESIS
    rows = []
    for event in pending:
        link_hash = event_hash(prev, event)
        rows.append({**vars(event), "prev_hash": prev, "hash": link_hash})
        prev = link_hash
    session.execute(_INSERT, rows)  # outside the ORM's unit of work


def _discard_pending(session: Session, *_: Any) -> None:
    session.info.pop(_PENDING, None)


sa_event.listen(OrmSession, "before_commit", _chain_pending)
sa_event.listen(OrmSession, "after_rollback", _discard_pending)


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    events: int
    first_broken_id: int | None = None
    reason: str = ""


def _iter_events(session: Session, batch: int = 1000) -> Iterator[AuditEvent]:
    """Every event in order, a batch per transaction: a log of millions takes minutes to walk,
    and on SQLite a transaction holds every writer off. (The log is only ever appended to, so
    the batches still make one chain.)"""
    last_id = 0
    while True:
        rows = session.exec(
            select(AuditEvent).where(col(AuditEvent.id) > last_id).order_by(col(AuditEvent.id)).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last_id = rows[-1].id or last_id
        end_read_transaction(session)


def verify_chain(session: Session, batch: int = 1000) -> ChainReport:
    """Walk the log in order, ``batch`` events a transaction; report the first event whose
    link or content does not match."""
    prev = GENESIS
    count = 0
    for event in _iter_events(session, batch):
        count += 1
        if event.prev_hash != prev:
            return ChainReport(False, count, event.id, "previous-hash link broken (row removed or reordered)")
        if event_hash(prev, event) != event.hash:
            return ChainReport(False, count, event.id, "content does not match its hash (row edited)")
        prev = event.hash
    return ChainReport(True, count)
