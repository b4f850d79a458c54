"""Object-level access: investigators reach only their own cases; others answer 404."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import or_
from sqlmodel import Session, col, select

from triage.context import Context
from triage.errors import NotFoundError
from triage.models.accounts import STAFF_ROLES
from triage.models.cases import Case, CaseMember
from triage.models.exhibits import Exhibit
from triage.models.images import EvidenceImage


def case_visibility_clause(ctx: Context) -> Any:
    """A WHERE clause limiting ``Case`` rows to those the actor may see (None: all)."""
    actor = ctx.actor
    if actor is None or actor.role in STAFF_ROLES:
        return None
    member_cases = select(CaseMember.case_id).where(CaseMember.account_id == actor.id)
    return or_(col(Case.officer_id) == actor.id, col(Case.id).in_(member_cases))


def own_cases(ctx: Context, limit: int = 200) -> Any:
    """The caller's own cases: for an investigator those they are officer in or were added
    to; for anyone else those they are officer in (staff see every case elsewhere)."""
    assert ctx.actor is not None
    clause = case_visibility_clause(ctx)
    query = select(Case).where(clause if clause is not None else col(Case.officer_id) == ctx.actor.id)
    return query.order_by(col(Case.id)).limit(limit)


def can_see_case(session: Session, ctx: Context, case: Case) -> bool:
    actor = ctx.actor
    if actor is None or actor.role in STAFF_ROLES:
        return True
    if case.officer_id == actor.id:
        return True
    return session.get(CaseMember, (case.id, actor.id)) is not None


def get_case(session: Session, ctx: Context, case_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None or not can_see_case(session, ctx, case):
        raise NotFoundError(f"case {case_id} not found")
    return case


def get_exhibit(session: Session, ctx: Context, exhibit_id: int) -> Exhibit:
    exhibit = session.get(Exhibit, exhibit_id)
    if exhibit is None:
        raise NotFoundError(f"exhibit {exhibit_id} not found")
    case = session.get(Case, exhibit.case_id)
    if case is None or not can_see_case(session, ctx, case):
        raise NotFoundError(f"exhibit {exhibit_id} not found")
    return exhibit


T = TypeVar("T")


def get_scoped(session: Session, ctx: Context, model: type[T], object_id: int, label: str) -> T:
    """An object that belongs to a case through its ``case_id`` or ``exhibit_id``; one the
    caller may not see answers exactly like one that does not exist (404)."""
    obj = session.get(model, object_id)
    missing = NotFoundError(f"{label} {object_id} not found")
    if obj is None:
        raise missing
    try:
        case_id = getattr(obj, "case_id", None)
        if case_id is not None:
            get_case(session, ctx, case_id)
        else:
            get_exhibit(session, ctx, obj.exhibit_id)  # type: ignore[attr-defined]
    except NotFoundError:
        raise missing from None
    return obj


def get_image(session: Session, ctx: Context, image_id: int) -> EvidenceImage:
    return get_scoped(session, ctx, EvidenceImage, image_id, "evidence image")
