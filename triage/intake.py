"""Registering cases, exhibits and evidence images. The caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import text
from sqlmodel import Session, col, select

from triage import audit, custody
from triage.access import case_visibility_clause, get_case
from triage.context import Context
from triage.db import end_read_transaction
from triage.errors import (
    ConflictError,
    EvidenceError,
    FieldValidationError,
    InvalidInputError,
)
from triage.evidence.formats import detect
from triage.evidence.paths import confine, confine_all
from triage.models.accounts import Account, Role
from triage.models.cases import Case, CaseCreate, CaseMember, CaseUpdate, check_restriction
from triage.models.exhibits import Exhibit, ExhibitCreate, ExhibitState, ExhibitUpdate
from triage.models.images import EvidenceImage, ImageRegister
from triage.models.types import utcnow
from triage.pagination import Page, paginate
from triage.scan.engine import probe_image

CASE_WRITERS = (Role.admin, Role.manager)
EXHIBIT_WRITERS = (Role.admin, Role.manager, Role.examiner)


def _investigator(session: Session, account_id: int, field: str = "officer_id") -> Account:
    account = session.get(Account, account_id)
    if account is None or not account.is_active:
        raise FieldValidationError(field, f"no active account {account_id}")
    if account.role != Role.investigator:
        raise FieldValidationError(field, f"account {account_id} is not an investigator")
    return account


# --- cases -------------------------------------------------------------------------------


def create_case(session: Session, ctx: Context, data: CaseCreate) -> Case:
    ctx.require(*CASE_WRITERS)
    _investigator(session, data.officer_id)
    if session.exec(select(Case.id).where(Case.crime_reference == data.crime_reference)).first():
        raise ConflictError(f"crime reference {data.crime_reference!r} is already registered")
    case = Case(**data.model_dump())
    audit.add_created(session, ctx, case, "case.create", "case")
    return case


def update_case(session: Session, ctx: Context, case: Case, data: CaseUpdate) -> Case:
    ctx.require(*CASE_WRITERS)
    changes = data.model_dump(exclude_unset=True)
    required = {
        "offence_category",
        "officer_id",
        "status",
        "received_date",
        "team",
        "children_in_household",
        "safeguarding_notes",
    }
    for key in required & changes.keys():
        if changes[key] is None:
            raise FieldValidationError(key, "cannot be null")
    if "officer_id" in changes:
        _investigator(session, changes["officer_id"])
    try:
        check_restriction(
            changes.get("restriction_kind", case.restriction_kind),
            changes.get("restriction_start", case.restriction_start),
            changes.get("restriction_end", case.restriction_end),
        )
    except ValueError as exc:
        raise FieldValidationError("restriction", str(exc)) from None
    before = audit.snapshot(case)
    for key, value in changes.items():
        setattr(case, key, value)
    case.updated_at = utcnow()
    audit.add_changed(session, ctx, case, before, "case.update", "case")
    return case


def list_cases(
    session: Session,
    ctx: Context,
    page: Page,
    status: str | None = None,
    offence_category: str | None = None,
    officer_id: int | None = None,
    team: str | None = None,
) -> tuple[list[Case], int]:
    query = select(Case).order_by(col(Case.id))
    clause = case_visibility_clause(ctx)
    if clause is not None:
        query = query.where(clause)
    if status:
        query = query.where(Case.status == status)
    if offence_category:
        query = query.where(Case.offence_category == offence_category)
    if officer_id is not None:
        query = query.where(Case.officer_id == officer_id)
    if team:
        query = query.where(Case.team == team)
    return paginate(session, query, page)


def add_member(session: Session, ctx: Context, case: Case, account_id: int) -> CaseMember:
    ctx.require(*CASE_WRITERS)
    _investigator(session, account_id, field="account_id")
    if session.get(CaseMember, (case.id, account_id)) is not None:
        raise ConflictError(f"account {account_id} is already on case {case.id}")
    assert ctx.actor is not None and case.id is not None
    member = CaseMember(case_id=case.id, account_id=account_id, added_by=ctx.actor.id or 0)
    audit.add_created(session, ctx, member, "case.member_add", "case", case.id)
    return member


# --- exhibits ----------------------------------------------------------------------------


def create_exhibit(session: Session, ctx: Context, case: Case, data: ExhibitCreate) -> Exhibit:
    actor = ctx.require(*EXHIBIT_WRITERS)
    clash = session.exec(
        select(Exhibit.id).where(Exhibit.case_id == case.id, Exhibit.reference == data.reference)
    ).first()
    if clash:
        raise ConflictError(f"exhibit reference {data.reference!r} already exists in this case")
    assert case.id is not None and actor.id is not None
    exhibit = Exhibit(case_id=case.id, **data.model_dump())
    audit.add_created(session, ctx, exhibit, "exhibit.create", "exhibit")
    custody.add_event(
        session,
        exhibit,
        actor.id,
        action="registered",
        to_location=exhibit.location,
        to_state=ExhibitState.registered,
        reason="exhibit registered",
    )
    return exhibit


def update_exhibit(session: Session, ctx: Context, exhibit: Exhibit, data: ExhibitUpdate) -> Exhibit:
    ctx.require(*EXHIBIT_WRITERS)
    before = audit.snapshot(exhibit)
    for key, value in data.model_dump(exclude_unset=True).items():
        if value is None and key != "seized_at":
            raise FieldValidationError(key, "cannot be null")
        setattr(exhibit, key, value)
    audit.add_changed(session, ctx, exhibit, before, "exhibit.update", "exhibit")
    return exhibit


def list_exhibits(
    session: Session,
    ctx: Context,
    page: Page,
    case_id: int | None = None,
    state: str | None = None,
    device_type: str | None = None,
) -> tuple[list[Exhibit], int]:
    query = select(Exhibit).join(Case, col(Case.id) == col(Exhibit.case_id)).order_by(col(Exhibit.id))
    clause = case_visibility_clause(ctx)
    if clause is not None:
        query = query.where(clause)
    if case_id is not None:
        get_case(session, ctx, case_id)
        query = query.where(Exhibit.case_id == case_id)
    if state:
        query = query.where(Exhibit.state == state)
    if device_type:
        query = query.where(Exhibit.device_type == device_type)
    return paginate(session, query, page)


# --- evidence images ---------------------------------------------------------------------


def register_image(
    session: Session, ctx: Context, exhibit: Exhibit, data: ImageRegister, roots: Sequence[Path]
) -> EvidenceImage:
    """Register an image found under an evidence root; nothing is stored if any check fails."""
    actor = ctx.require(*EXHIBIT_WRITERS)
    path = confine(data.path, roots)
    # Opening the image takes a child process, and a hostile container may run to its time
    # limit: not inside the request's transaction, which on SQLite holds every writer off.
    end_read_transaction(session)
    try:
        detected = detect(path)
    except EvidenceError as exc:
        raise InvalidInputError(str(exc)) from exc
    segments = confine_all(detected.segments, roots)
    declared = {
        "md5": (data.acquisition_md5 or "").lower() or None,
        "sha1": (data.acquisition_sha1 or "").lower() or None,
        "sha256": (data.acquisition_sha256 or "").lower() or None,
    }
    try:
        probed = probe_image(detected)
    except (EvidenceError, OSError) as exc:
        raise InvalidInputError(f"{path.name}: cannot be opened as an image: {exc}") from exc
    media_size, stored = probed["media_size"], probed["stored_hashes"]
    for algo, value in stored.items():
        if declared.get(algo) and declared[algo] != value:
            raise InvalidInputError(
                f"acquisition_{algo} differs from the {algo} stored inside the image ({value})"
            )
        declared[algo] = declared.get(algo) or value
    session.refresh(exhibit)  # it may have moved on while the image was opened
    _refuse_registered_image(session, exhibit, path)
    assert exhibit.id is not None and actor.id is not None
    image = EvidenceImage(
        exhibit_id=exhibit.id,
        path=str(path),
        format=detected.format.value,
        segments=[str(s) for s in segments],
        size_bytes=detected.size_bytes,
        media_size_bytes=media_size,
        acquisition_md5=declared["md5"],
        acquisition_sha1=declared["sha1"],
        acquisition_sha256=declared["sha256"],
        registered_by=actor.id,
    )
    audit.add_created(session, ctx, image, "image.register", "evidence_image")
    if exhibit.state in (ExhibitState.registered, ExhibitState.awaiting_imaging):
        if exhibit.state == ExhibitState.registered:
            custody.transition(session, ctx, exhibit, ExhibitState.awaiting_imaging, "image registered")
        custody.transition(session, ctx, exhibit, ExhibitState.imaged, f"image {path.name} registered")
    return image


# Advisory lock space (the first of two keys) of image paths being registered.
IMAGE_PATH_LOCKS = 8015129


def _refuse_registered_image(session: Session, exhibit: Exhibit, path: Path) -> None:
    """An image belongs to one exhibit. The same file given for another (a path mistyped, a
    folder confused) would put one device's files, hits and findings on another exhibit,
    perhaps of another case: refused, naming the exhibit it belongs to. (A segment other than
    the first is refused before this: images are opened at their first segment.) The check
    and the insert after it hold a lock on the path until the transaction ends, so that two
    registrations of one path at the same moment cannot both pass (a path may be longer than
    a unique index's entry allows; on SQLite every transaction already writes alone)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:space, hashtext(:path))"),
            {"space": IMAGE_PATH_LOCKS, "path": str(path)},
        )
    existing = session.exec(select(EvidenceImage).where(EvidenceImage.path == str(path))).first()
    if existing is None:
        return
    if existing.exhibit_id == exhibit.id:
        raise ConflictError(f"{path} is already registered for this exhibit")
    owner = session.get_one(Exhibit, existing.exhibit_id)
    case = session.get_one(Case, owner.case_id)
    raise ConflictError(
        f"{path.name} is already the image of exhibit {owner.reference} (case {case.crime_reference}); "
        "an image belongs to one exhibit"
    )


def list_images(session: Session, exhibit: Exhibit) -> list[EvidenceImage]:
    return list(
        session.exec(
            select(EvidenceImage)
            .where(EvidenceImage.exhibit_id == exhibit.id)
            .order_by(col(EvidenceImage.id))
        ).all()
    )
