"""Backlog figures and the forecast of clearance.

Figures are counted from the database as it is now; the forecast divides the backlog by the
recent in-house pace plus the vendors' monthly capacity, with what-ifs for more examiners
and more outsourcing. Everything takes ``now`` so it can be checked by hand.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

import scoring
from triage.models.accounts import Account, Role
from triage.models.cases import Case
from triage.models.exhibits import Exhibit, ExhibitState
from triage.models.vendors import Budget, Outsourcing, OutsourcingState, Vendor, VendorStatus
from triage.queue import case_facts, completed_since
from triage.vendors import financial_year

WAITING = (
    ExhibitState.registered,
    ExhibitState.awaiting_imaging,
    ExhibitState.imaged,
    ExhibitState.triage_queued,
    ExhibitState.triaging,
    ExhibitState.triaged,
    ExhibitState.awaiting_examination,
    ExhibitState.in_examination,
)
AGE_BUCKETS = ((0, 30, "0-30"), (31, 90, "31-90"), (91, 180, "91-180"), (181, 10**6, "over 180"))
WEEKS_PER_MONTH = 52 / 12


def completions_per_week(session: Session, now: datetime, weeks: int) -> float:
    return completed_since(session, now - timedelta(weeks=weeks)) / weeks


def is_child_welfare(case: Case) -> bool:
    return bool(
        case.children_in_household
        or case.suspect_access_children_home
        or case.suspect_access_children_work
        or case.section47_open
        or case.child_protection_plan
        or case.restriction_kind
    )


DONE_STATES = (ExhibitState.examined.value, ExhibitState.returned.value, ExhibitState.disposed.value)


def backlog_by_week(session: Session, now: datetime, weeks: int = 12) -> list[dict[str, Any]]:
    """Exhibits waiting at the end of each of the last ``weeks`` weeks, rebuilt from the custody
    trail: an exhibit waits from its registration until it is first examined (or returned or
    disposed of)."""
    from triage.models.exhibits import CustodyEvent

    finished = dict(
        session.exec(
            select(CustodyEvent.exhibit_id, func.min(CustodyEvent.at))
            .where(col(CustodyEvent.to_state).in_(DONE_STATES))
            .group_by(col(CustodyEvent.exhibit_id))
        ).all()
    )
    created = [(int(i or 0), at) for i, at in session.exec(select(Exhibit.id, Exhibit.created_at)).all()]
    points = []
    for back in range(weeks - 1, -1, -1):
        moment = now - timedelta(weeks=back)
        waiting = 0
        for exhibit_id, at in created:
            done = finished.get(exhibit_id)
            if at <= moment and (done is None or done > moment):
                waiting += 1
        points.append({"week_ending": moment.date().isoformat(), "waiting": waiting})
    return points


def figures(session: Session, now: datetime) -> dict[str, Any]:
    today = now.date()
    waiting = session.exec(
        select(Exhibit, Case)
        .join(Case, col(Case.id) == col(Exhibit.case_id))
        .where(col(Exhibit.state).in_([s.value for s in WAITING]))
    ).all()
    by_state = Counter(str(e.state) for e, _ in waiting)
    by_device = Counter(str(e.device_type) for e, _ in waiting)
    ages: Counter[str] = Counter()
    oldest: dict[str, Any] | None = None
    for exhibit, case in waiting:
        age = (today - case.received_date).days
        ages[next(label for lo, hi, label in AGE_BUCKETS if lo <= age <= hi)] += 1
        if oldest is None or age > oldest["days"]:
            oldest = {
                "exhibit_id": exhibit.id,
                "crime_reference": case.crime_reference,
                "reference": exhibit.reference,
                "days": age,
            }
    welfare_cases = {case.id: case for _, case in waiting if is_child_welfare(case)}
    restriction_days = [
        d
        for d in (scoring.restriction_days(case_facts(c), today) for c in welfare_cases.values())
        if d is not None
    ]
    out = session.exec(select(Outsourcing).where(Outsourcing.state == OutsourcingState.with_vendor)).all()
    year = financial_year(today)
    spent = int(
        session.exec(
            select(func.coalesce(func.sum(Outsourcing.cost_pence), 0)).where(
                Outsourcing.financial_year == year
            )
        ).one()
    )
    budget = session.get(Budget, year)
    return {
        "as_of": now.isoformat(),
        "waiting_exhibits": len(waiting),
        "by_state": dict(by_state),
        "by_device_type": dict(by_device),
        "age_buckets_days": {label: ages.get(label, 0) for _, _, label in AGE_BUCKETS},
        "oldest": oldest,
        "child_welfare_cases_waiting": len(welfare_cases),
        "days_under_family_restriction": {
            "cases": len(restriction_days),
            "total": sum(restriction_days),
            "max": max(restriction_days, default=0),
            "mean": round(sum(restriction_days) / len(restriction_days), 1) if restriction_days else 0.0,
        },
        "in_house_completions_per_week": {
            "last_4_weeks": completions_per_week(session, now, 4),
            "last_12_weeks": completions_per_week(session, now, 12),
        },
        "with_vendors": len(out),
        "overdue_with_vendors": sum(1 for o in out if o.due_date < today),
        "spend": {
            "financial_year": year,
            "spent_pence": spent,
            "budget_pence": budget.amount_pence if budget else None,
        },
        "backlog_by_week": backlog_by_week(session, now),
    }


# A cell a spreadsheet would read as a formula starts with one of these (OWASP, "CSV
# injection"); a reference such as "-A1" may.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: Any) -> Any:
    """``value`` as a spreadsheet shows it as text: text that would start a formula gets a
    leading apostrophe. Numbers are left as numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def figures_csv(data: dict[str, Any]) -> str:
    """The figures as ``section,key,value`` rows (for spreadsheets)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["section", "key", "value"])
    rows: list[list[Any]] = []
    for key, value in data.items():
        if key == "backlog_by_week":
            rows.extend([key, point["week_ending"], point["waiting"]] for point in value)
        elif isinstance(value, dict):
            rows.extend([key, sub, inner] for sub, inner in value.items())
        else:
            rows.append(["total", key, value])
    writer.writerows([spreadsheet_cell(cell) for cell in row] for row in rows)
    return buffer.getvalue()


@dataclass(frozen=True)
class Forecast:
    backlog: int
    in_house_per_week: float
    vendor_per_week: float
    weeks_to_clear: float | None
    clears_on: date | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def forecast_from(backlog: int, in_house_per_week: float, vendor_per_week: float, today: date) -> Forecast:
    """Weeks to clear = backlog / (in-house + vendor exhibits per week); None if nothing moves."""
    rate = in_house_per_week + vendor_per_week
    if backlog == 0:
        return Forecast(0, in_house_per_week, vendor_per_week, 0.0, today)
    if rate <= 0:
        return Forecast(backlog, in_house_per_week, vendor_per_week, None, None)
    weeks = backlog / rate
    return Forecast(
        backlog,
        in_house_per_week,
        vendor_per_week,
        round(weeks, 2),
        today + timedelta(days=math.ceil(weeks * 7)),
    )


def forecast(
    session: Session, now: datetime, extra_examiners: int = 0, extra_outsourcing_per_month: int = 0
) -> dict[str, Any]:
    """Clearance date at the current pace and with more examiners and/or more outsourcing."""
    today = now.date()
    backlog = int(
        session.exec(
            select(func.count())
            .select_from(Exhibit)
            .where(col(Exhibit.state).in_([s.value for s in WAITING]))
        ).one()
    )
    in_house = completions_per_week(session, now, 4)
    examiners = int(
        session.exec(
            select(func.count())
            .select_from(Account)
            .where(Account.role == Role.examiner, col(Account.is_active))
        ).one()
    )
    per_examiner = in_house / examiners if examiners else 0.0
    vendors = session.exec(
        select(Vendor).where(
            Vendor.status == VendorStatus.approved, col(Vendor.accreditation_expires) >= today
        )
    ).all()
    vendor_week = sum(v.capacity_per_month for v in vendors) / WEEKS_PER_MONTH
    current = forecast_from(backlog, in_house, vendor_week, today)
    what_if = forecast_from(
        backlog,
        in_house + extra_examiners * per_examiner,
        vendor_week + extra_outsourcing_per_month / WEEKS_PER_MONTH,
        today,
    )
    return {
        "current": current.to_dict(),
        "what_if": what_if.to_dict(),
        "examiners": examiners,
        "per_examiner_per_week": round(per_examiner, 3),
        "extra_examiners": extra_examiners,
        "extra_outsourcing_per_month": extra_outsourcing_per_month,
    }


def recommend(session: Session, now: datetime, target: date) -> dict[str, Any]:
    """Which queued exhibits to send to which vendor so that everything is examined by
    ``target``, and what that does to the waits of child-welfare cases.

    In house, the task at position p is expected after p / (completions a day) days. Tasks
    expected after the target go, in queue order, to an approved vendor that may take them
    (authority for the material, capacity left this month, back before the target).
    """
    from triage import queue as exam_queue
    from triage import vendors as vendor_rules

    today = now.date()
    per_day = completions_per_week(session, now, 4) / 7
    tasks = exam_queue.positions(session)
    exhibits = {
        e.id: e
        for e in session.exec(select(Exhibit).where(col(Exhibit.id).in_([t.exhibit_id for t in tasks]))).all()
    }
    cases = {
        c.id: c for c in session.exec(select(Case).where(col(Case.id).in_({t.case_id for t in tasks}))).all()
    }
    candidates = [
        v
        for v in session.exec(select(Vendor).where(Vendor.status == VendorStatus.approved)).all()
        if today + timedelta(days=v.turnaround_days) <= target
    ]
    room = {v.id: v.capacity_per_month - vendor_rules.used_this_month(session, v, today) for v in candidates}

    def expected(position: int) -> date | None:
        return today + timedelta(days=math.ceil(position / per_day) - 1) if per_day > 0 else None

    picks: list[dict[str, Any]] = []
    unplaced, kept = 0, 0  # kept: tasks staying in house so far (their new positions)
    before: list[int] = []
    after: list[int] = []
    for position, task in enumerate(tasks, 1):
        exhibit, case = exhibits[task.exhibit_id], cases[task.case_id]
        welfare = is_child_welfare(case)
        in_house = expected(kept + 1)
        vendor = None
        if in_house is None or in_house > target:
            vendor = next(
                (
                    v
                    for v in candidates
                    if room[v.id] > 0 and vendor_rules.refusal(session, v, exhibit, today) is None
                ),
                None,
            )
            unplaced += vendor is None
        if vendor is None:
            kept += 1
            finish = in_house
        else:
            room[vendor.id] -= 1
            finish = today + timedelta(days=vendor.turnaround_days)
            picks.append(
                {
                    "exhibit_id": exhibit.id,
                    "crime_reference": case.crime_reference,
                    "reference": exhibit.reference,
                    "vendor_id": vendor.id,
                    "vendor": vendor.name,
                    "due_date": finish.isoformat(),
                    "in_house_expected": in_house.isoformat() if in_house else None,
                    "child_welfare": welfare,
                }
            )
        original = expected(position)
        if welfare and original is not None and finish is not None:
            before.append((original - today).days)
            after.append((finish - today).days)

    def stats(days: list[int]) -> dict[str, float]:
        return {
            "cases": len(days),
            "mean_days": round(sum(days) / len(days), 1) if days else 0.0,
            "max_days": max(days, default=0),
        }

    return {
        "target_date": target.isoformat(),
        "queued": len(tasks),
        "in_house_per_day": round(per_day, 3),
        "outsource": picks,
        "cannot_place": unplaced,
        "child_welfare_wait_before": stats(before),
        "child_welfare_wait_after": stats(after),
    }
