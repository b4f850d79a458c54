"""Approved vendors and outsourcing: every refusal says why, every change is audited, and an
exhibit comes back only after its image hash is checked again."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func
from sqlmodel import Session, col, select

from triage import audit, custody
from triage.context import Context
from triage.db import end_read_transaction
from triage.errors import ConflictError, CorruptImageError, InvalidInputError, NotFoundError
from triage.evidence.formats import detect
from triage.models.accounts import Role
from triage.models.cases import Case
from triage.models.exhibits import Exhibit, ExhibitState
from triage.models.images import EvidenceImage
from triage.models.runs import RunState, TriageHit, TriageRun
from triage.models.types import utcnow
from triage.models.vendors import (
    Budget,
    Outsourcing,
    OutsourcingState,
    Vendor,
    VendorCreate,
    VendorStatus,
    VendorUpdate,
)

MANAGERS = (Role.admin, Role.manager)
CHILD_OFFENCES = {"iioc", "child_sexual_abuse", "child_sexual_exploitation", "grooming"}


def financial_year(day: date) -> str:
    """UK financial year (April to March) holding ``day``, e.g. "2026-27"."""
    start = day.year if day.month >= 4 else day.year - 1
    return f"{start}-{(start + 1) % 100:02d}"


def get_vendor(session: Session, vendor_id: int) -> Vendor:
    vendor = session.get(Vendor, vendor_id)
    if vendor is None:
        raise NotFoundError(f"vendor {vendor_id} not found")
    return vendor


def create_vendor(session: Session, ctx: Context, data: VendorCreate) -> Vendor:
    ctx.require(*MANAGERS)
    if session.exec(select(Vendor.id).where(Vendor.name == data.name)).first():
        raise ConflictError(f"a vendor named {data.name!r} exists")
    vendor = Vendor(**data.model_dump())
    audit.add_created(session, ctx, vendor, "vendor.create", "vendor")
    return vendor


def update_vendor(session: Session, ctx: Context, vendor: Vendor, data: VendorUpdate) -> Vendor:
    ctx.require(*MANAGERS)
    before = audit.snapshot(vendor)
    for key, value in data.model_dump(exclude_unset=True).items():
        if value is not None:
            setattr(vendor, key, value)
    audit.add_changed(session, ctx, vendor, before, "vendor.update", "vendor")
    return vendor


def set_status(
    session: Session, ctx: Context, vendor: Vendor, status: VendorStatus, today: date | None = None
) -> Vendor:
    """Approve (only with a current ISO/IEC 17025 digital scope and FSR Code compliance) or suspend."""
    ctx.require(*MANAGERS)
    today = today or utcnow().date()
    if status is VendorStatus.approved:
        missing = [
            what
            for what, ok in (
                ("ISO/IEC 17025 digital forensics scope", vendor.iso17025_digital),
                ("Forensic Science Regulator Code compliance", vendor.fsr_code_compliant),
                ("current accreditation", vendor.accreditation_expires >= today),
            )
            if not ok
        ]
        if missing:
            raise ConflictError(f"vendor {vendor.name!r} cannot be approved without: {', '.join(missing)}")
    before = audit.snapshot(vendor)
    vendor.status = status
    audit.add_changed(session, ctx, vendor, before, f"vendor.{status.value}", "vendor")
    return vendor


def used_this_month(session: Session, vendor: Vendor, today: date) -> int:
    first = datetime(today.year, today.month, 1, tzinfo=utcnow().tzinfo)
    return int(
        session.exec(
            select(func.count())
            .select_from(Outsourcing)
            .where(Outsourcing.vendor_id == vendor.id, col(Outsourcing.dispatched_at) >= first)
        ).one()
    )


def needs_iioc_authority(session: Session, exhibit: Exhibit) -> bool:
    """Material a vendor needs authority for: a child-related offence or known-bad hits."""
    case = session.get(Case, exhibit.case_id)
    if case is not None and str(case.offence_category) in CHILD_OFFENCES:
        return True
    latest = select(func.max(TriageRun.id)).where(
        TriageRun.exhibit_id == exhibit.id, TriageRun.state == RunState.succeeded
    )
    return (
        session.exec(
            select(TriageHit.id)
            .where(col(TriageHit.run_id).in_(latest), TriageHit.source == "hashset", col(TriageHit.alert))
            .limit(1)
        ).first()
        is not None
    )


def refusal(session: Session, vendor: Vendor, exhibit: Exhibit, today: date) -> str | None:
    """Why this vendor may not take this exhibit now, or None."""
    if vendor.status is not VendorStatus.approved:
        return f"vendor {vendor.name!r} is {vendor.status.value}, not approved"
    if vendor.accreditation_expires < today:
        return f"vendor {vendor.name!r}'s accreditation expired on {vendor.accreditation_expires}"
    if needs_iioc_authority(session, exhibit) and not vendor.iioc_authorised:
        return f"vendor {vendor.name!r} is not authorised to handle indecent imagery"
    if used_this_month(session, vendor, today) >= vendor.capacity_per_month:
        return f"vendor {vendor.name!r} has no capacity left this month ({vendor.capacity_per_month})"
    return None


def _image_md5(image: EvidenceImage) -> str:
    """The image's MD5 now, computed in an isolated child like every read of evidence."""
    from triage.scan import phases
    from triage.scan.options import ScanOptions
    from triage.scan.pool import ChildFailed, run_child

    limits = ScanOptions()
    try:
        hashes: dict[str, str] = run_child(
            phases.hash_image, (detect(Path(image.path)),), limits.walk_timeout, limits.memory_limit
        )
    except ChildFailed as exc:
        raise CorruptImageError(f"{Path(image.path).name}: cannot be read to hash it: {exc}") from exc
    return hashes["md5"]


def _latest_image(session: Session, exhibit: Exhibit) -> EvidenceImage | None:
    return session.exec(
        select(EvidenceImage)
        .where(EvidenceImage.exhibit_id == exhibit.id)
        .order_by(col(EvidenceImage.id).desc())
    ).first()


def dispatch(
    session: Session, ctx: Context, exhibit: Exhibit, vendor: Vendor, reason: str, today: date | None = None
) -> Outsourcing:
    """Send the exhibit to the vendor: 409 with the reason if it may not go."""
    return dispatch_all(session, ctx, [exhibit], vendor, reason, today)[0]


def dispatch_all(
    session: Session,
    ctx: Context,
    exhibits: Sequence[Exhibit],
    vendor: Vendor,
    reason: str,
    today: date | None = None,
) -> list[Outsourcing]:
    """Send the exhibits to the vendor, all or none: 409 with the reason if one may not go
    (the caller rolls back)."""
    actor = ctx.require(*MANAGERS)
    today = today or utcnow().date()
    for exhibit in exhibits:  # refused at once, before any image is read
        if (why := refusal(session, vendor, exhibit, today)) is not None:
            raise ConflictError(why)
    images = {exhibit.id: _latest_image(session, exhibit) for exhibit in exhibits}
    md5s = {
        key: (image.computed_md5 or image.acquisition_md5) if image else None for key, image in images.items()
    }
    unhashed = {key: image for key, image in images.items() if image is not None and md5s[key] is None}
    if unhashed:
        # An image never hashed (no acquisition hash, not triaged) is read whole, which takes
        # minutes for a large one: not inside a transaction (on SQLite it would hold the write
        # lock throughout).
        end_read_transaction(session)
        for key, unread in unhashed.items():
            md5s[key] = _image_md5(unread)
    # The vendor's row is locked until the commit, so that two managers sending at once
    # cannot both take its last places this month; then everything is checked again (each
    # exhibit sent counts against the capacity of the next).
    session.refresh(vendor, with_for_update=True)
    records = []
    for exhibit in exhibits:
        session.refresh(exhibit)
        if (why := refusal(session, vendor, exhibit, today)) is not None:
            raise ConflictError(why)
        assert exhibit.id is not None and vendor.id is not None
        image = images[exhibit.id]
        record = Outsourcing(
            exhibit_id=exhibit.id,
            vendor_id=vendor.id,
            dispatched_by=actor.id,
            due_date=today + timedelta(days=vendor.turnaround_days),
            image_id=image.id if image else None,
            dispatch_md5=md5s[exhibit.id],
            cost_pence=int(vendor.price_pence.get(str(exhibit.device_type), 0)),
            financial_year=financial_year(today),
        )
        audit.add_created(session, ctx, record, "outsourcing.dispatch", "outsourcing")
        custody.transition(session, ctx, exhibit, ExhibitState.outsourced, f"sent to {vendor.name}: {reason}")
        custody.move(
            session, ctx, exhibit, f"vendor: {vendor.name}", f"outsourcing {record.id}, due {record.due_date}"
        )
        records.append(record)
    return records


def receive(
    session: Session, ctx: Context, record: Outsourcing, report_reference: str, examined: bool
) -> Outsourcing:
    """The exhibit comes back: the image hash is computed again; a changed hash is flagged,
    audited and the exhibit returns to the queue instead of counting as examined."""
    ctx.require(*MANAGERS)
    if record.state is not OutsourcingState.with_vendor:
        raise ConflictError(f"outsourcing {record.id} was returned already")
    image = session.get(EvidenceImage, record.image_id) if record.image_id else None
    # Hashing the image again takes minutes for a large one: not inside a transaction (on
    # SQLite it would hold the write lock throughout). Then the record is read again, locked:
    # another manager may have recorded the return meanwhile.
    end_read_transaction(session)
    return_md5 = _image_md5(image) if image else None
    session.refresh(record, with_for_update=True)
    if record.state is not OutsourcingState.with_vendor:
        raise ConflictError(f"outsourcing {record.id} was returned already")
    exhibit = session.get(Exhibit, record.exhibit_id)
    assert exhibit is not None
    before = audit.snapshot(record)
    record.returned_at, record.report_reference = utcnow(), report_reference
    record.return_md5 = return_md5
    changed = record.dispatch_md5 is not None and record.return_md5 != record.dispatch_md5
    record.state = OutsourcingState.returned_flagged if changed else OutsourcingState.returned
    audit.add_changed(session, ctx, record, before, "outsourcing.return", "outsourcing")
    custody.move(session, ctx, exhibit, "HTCU store", f"returned, vendor report {report_reference}")
    if changed:
        custody.flag_integrity(
            session,
            ctx,
            exhibit,
            "outsourcing.hash_mismatch",
            dispatch_md5=record.dispatch_md5,
            return_md5=record.return_md5,
        )
        custody.transition(
            session,
            ctx,
            exhibit,
            ExhibitState.awaiting_examination,
            "image hash changed while with the vendor; examination in house",
        )
    else:
        target = ExhibitState.examined if examined else ExhibitState.awaiting_examination
        custody.transition(session, ctx, exhibit, target, f"returned by vendor, report {report_reference}")
    return record


def is_overdue(record: Outsourcing, today: date) -> bool:
    return record.state is OutsourcingState.with_vendor and record.due_date < today


def set_budget(session: Session, ctx: Context, year: str, amount_pence: int) -> Budget:
    ctx.require(*MANAGERS)
    start = year[:4]
    if not (start.isdigit() and 1 <= int(start) < 9999 and financial_year(date(int(start), 4, 1)) == year):
        raise InvalidInputError(f"{year[:20]!r} is not a financial year (April to March), such as 2026-27")
    budget = session.get(Budget, year) or Budget(financial_year=year)
    before = audit.snapshot(budget)
    budget.amount_pence = amount_pence
    audit.add_changed(session, ctx, budget, before, "budget.set", "budget", year)
    return budget
