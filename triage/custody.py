"""The custody trail: every movement and state change of an exhibit, who, when, why."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from triage import audit, lifecycle
from triage.context import Context
from triage.errors import ConflictError
from triage.models.accounts import Role
from triage.models.exhibits import CustodyEvent, Exhibit, ExhibitState
from triage.models.types import utcnow

MOVERS = (Role.admin, Role.manager, Role.examiner)


# Built once: these run on every claim and every move.
_EVENTS = CustodyEvent.__table__  # type: ignore[attr-defined]
_EVENT_COLUMNS = [c.name for c in _EVENTS.c if c.name != "id"]
_EXHIBITS = Exhibit.__table__  # type: ignore[attr-defined]
_INSERT_EVENT = insert(_EVENTS).values(
    {n: bindparam(f"event_{n}", type_=_EVENTS.c[n].type) for n in _EVENT_COLUMNS}
)
_MOVE = (
    update(_EXHIBITS)
    .where(_EXHIBITS.c.id == bindparam("exhibit_id"), _EXHIBITS.c.state == bindparam("current"))
    .values(state=bindparam("target"), state_changed_at=bindparam("now"))
)
# PostgreSQL: the guarded move and its custody event in one statement (the event is written
# only if the move was); SQLite runs _MOVE, then _INSERT_EVENT.
_MOVED = _MOVE.returning(_EXHIBITS.c.id).cte("moved")
_MOVE_AND_RECORD = (
    insert(_EVENTS)
    .from_select(
        _EVENT_COLUMNS,
        select(*[bindparam(f"event_{n}", type_=_EVENTS.c[n].type) for n in _EVENT_COLUMNS]).select_from(
            _MOVED
        ),
    )
    .add_cte(_MOVED)
    .returning(_EVENTS.c.id)
)


def _event(
    exhibit: Exhibit,
    actor_id: int | None,
    *,
    action: str,
    from_location: str = "",
    to_location: str = "",
    from_state: ExhibitState | None = None,
    to_state: ExhibitState | None = None,
    reason: str = "",
) -> dict[str, object]:
    """A custody event's values, as parameters of _INSERT_EVENT / _MOVE_AND_RECORD."""
    assert exhibit.id is not None
    event = {
        "exhibit_id": exhibit.id,
        "actor_id": actor_id,
        "at": utcnow(),
        "action": action,
        "from_location": from_location,
        "to_location": to_location,
        "from_state": from_state.value if from_state else None,
        "to_state": to_state.value if to_state else None,
        "reason": reason,
    }
    return {f"event_{name}": value for name, value in event.items()}


def add_event(session: Session, exhibit: Exhibit, actor_id: int | None, **fields: Any) -> None:
    """Append an event to the exhibit's custody trail (one INSERT, in the caller's transaction);
    ``fields`` as for ``_event``."""
    session.execute(_INSERT_EVENT, _event(exhibit, actor_id, **fields))


def transition(
    session: Session,
    ctx: Context,
    exhibit: Exhibit,
    target: ExhibitState,
    reason: str = "",
    *,
    follow_queue: bool = True,
) -> Exhibit:
    """Move an exhibit to ``target`` if the state machine allows it (else 409, nothing changed).

    The UPDATE is guarded by the state the exhibit was read in, so two concurrent moves cannot
    both succeed. The examination queue follows the move unless ``follow_queue`` is False
    (claim-next has already put the task in step)."""
    if ctx.actor is not None:
        ctx.require(*MOVERS)
    current = ExhibitState(exhibit.state)
    lifecycle.check_transition(current, target)
    before = audit.snapshot(exhibit)
    now = utcnow()
    event = _event(
        exhibit,
        ctx.actor_id,
        action="state_change",
        from_location=exhibit.location,
        to_location=exhibit.location,
        from_state=current,
        to_state=target,
        reason=reason,
    )
    params = {"exhibit_id": exhibit.id, "current": current.value, "target": target.value, "now": now, **event}
    if session.get_bind().dialect.name == "postgresql":
        moved = len(session.execute(_MOVE_AND_RECORD, params).all())
    else:
        moved = session.execute(_MOVE, params).rowcount  # type: ignore[attr-defined]
        if moved == 1:
            session.execute(_INSERT_EVENT, event)
    if moved != 1:
        raise ConflictError(f"exhibit {exhibit.id} changed state meanwhile; reload it and try again")
    record_moved(session, ctx, exhibit, before, target, now)
    if follow_queue:
        from triage import queue  # the queue follows the lifecycle; imported here to avoid a cycle

        queue.on_exhibit_state(session, ctx, exhibit, current, target)
    return exhibit


def record_moved(
    session: Session,
    ctx: Context,
    exhibit: Exhibit,
    before: dict[str, Any],
    target: ExhibitState,
    now: datetime,
) -> None:
    """After a state change was written (with its custody event): bring the object in hand in
    step, without a second UPDATE at the next flush, and audit the change."""
    set_committed_value(exhibit, "state", target)
    set_committed_value(exhibit, "state_changed_at", now)
    audit.record(session, ctx, "exhibit.transition", "exhibit", exhibit.id, before, audit.snapshot(exhibit))


def move(session: Session, ctx: Context, exhibit: Exhibit, to_location: str, reason: str) -> Exhibit:
    """Record a physical movement of the device."""
    actor = ctx.require(*MOVERS)
    before = audit.snapshot(exhibit)
    previous = exhibit.location
    exhibit.location = to_location
    audit.add_changed(session, ctx, exhibit, before, "exhibit.move", "exhibit")
    add_event(
        session,
        exhibit,
        actor.id,
        action="moved",
        from_location=previous,
        to_location=to_location,
        reason=reason,
    )
    return exhibit


def flag_integrity(session: Session, ctx: Context, exhibit: Exhibit, action: str, **details: object) -> None:
    """Mark the exhibit's evidence as failing its integrity check, audited with the details."""
    before = audit.snapshot(exhibit)
    exhibit.integrity_flag = True
    audit.add_changed(session, ctx, exhibit, before, action, "exhibit", details=details)


def trail(session: Session, exhibit: Exhibit) -> list[CustodyEvent]:
    return list(
        session.exec(
            select(CustodyEvent).where(CustodyEvent.exhibit_id == exhibit.id).order_by(col(CustodyEvent.id))
        ).all()
    )
