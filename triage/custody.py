"""The custody trail: every movement and state change of an exhibit, who, when, why."""

from __future__ import annotations

from sqlmodel import Session, col, select

from triage import audit, lifecycle
from triage.context import Context
from triage.models.accounts import Role
from triage.models.exhibits import CustodyEvent, Exhibit, ExhibitState
from triage.models.types import utcnow

MOVERS = (Role.admin, Role.manager, Role.examiner)


def add_event(
    session: Session,
    exhibit: Exhibit,
    actor_id: int | None,
    *,
    action: str,
    from_location: str = "",
    to_location: str = "",
    from_state: ExhibitState | None = None,
    to_state: ExhibitState | None = None,
    reason: str = "",
) -> CustodyEvent:
    assert exhibit.id is not None
    event = CustodyEvent(
        exhibit_id=exhibit.id,
        actor_id=actor_id,
        action=action,
        from_location=from_location,
        to_location=to_location,
        from_state=from_state.value if from_state else None,
        to_state=to_state.value if to_state else None,
        reason=reason,
    )
    session.add(event)
    session.flush()
    return event


def transition(
    session: Session, ctx: Context, exhibit: Exhibit, target: ExhibitState, reason: str = ""
) -> Exhibit:
    """Move an exhibit to ``target`` if the state machine allows it (else 409, nothing changed)."""
    if ctx.actor is not None:
        ctx.require(*MOVERS)
    current = ExhibitState(exhibit.state)
    lifecycle.check_transition(current, target)
    before = audit.snapshot(exhibit)
    exhibit.state = target
    exhibit.state_changed_at = utcnow()
    session.add(exhibit)
    session.flush()
    add_event(
        session,
        exhibit,
        ctx.actor_id,
        action="state_change",
        from_location=exhibit.location,
        to_location=exhibit.location,
        from_state=current,
        to_state=target,
        reason=reason,
    )
    audit.record(session, ctx, "exhibit.transition", "exhibit", exhibit.id, before, audit.snapshot(exhibit))
    from triage import queue  # the queue follows the lifecycle; imported here to avoid a cycle

    queue.on_exhibit_state(session, ctx, exhibit, current, target)
    return exhibit


def move(session: Session, ctx: Context, exhibit: Exhibit, to_location: str, reason: str) -> Exhibit:
    """Record a physical movement of the device."""
    actor = ctx.require(*MOVERS)
    before = audit.snapshot(exhibit)
    previous = exhibit.location
    exhibit.location = to_location
    session.add(exhibit)
    session.flush()
    add_event(
        session,
        exhibit,
        actor.id,
        action="moved",
        from_location=previous,
        to_location=to_location,
        reason=reason,
    )
    audit.record(session, ctx, "exhibit.move", "exhibit", exhibit.id, before, audit.snapshot(exhibit))
    return exhibit


def flag_integrity(session: Session, ctx: Context, exhibit: Exhibit, action: str, **details: object) -> None:
    """Mark the exhibit's evidence as failing its integrity check, audited with the details."""
    before = audit.snapshot(exhibit)
    exhibit.integrity_flag = True
    session.add(exhibit)
    session.flush()
    audit.record(session, ctx, action, "exhibit", exhibit.id, before, {**audit.snapshot(exhibit), **details})


def trail(session: Session, exhibit: Exhibit) -> list[CustodyEvent]:
    return list(
        session.exec(
            select(CustodyEvent).where(CustodyEvent.exhibit_id == exhibit.id).order_by(col(CustodyEvent.id))
        ).all()
    )
