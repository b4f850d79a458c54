"""Rows for tests: synthetic queues in bulk (many cases, each with one exhibit awaiting
examination and its queued task; used by the rescore tests and by ``bench/queue_bench.py``),
a case with one exhibit put straight into a state, and an exhibit in a state with its task."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlmodel import Session

from triage.models.cases import Case, OffenceCategory
from triage.models.exhibits import DeviceType, Exhibit, ExhibitState
from triage.models.queue import ExaminationTask


def queued_cases(
    engine: Engine,
    n: int,
    officer_id: int,
    *,
    seed: int,
    today: date,
    restricted_share: float = 0.3,
    bail_share: float = 0.0,
) -> None:
    """Insert cases 1..n (a share of them with children at home under a family restriction,
    a share with a bail date coming up), one exhibit and one queued task each."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    cases: list[dict[str, Any]] = []
    exhibits: list[dict[str, Any]] = []
    tasks: list[dict[str, Any]] = []
    for i in range(1, n + 1):
        restricted = rng.random() < restricted_share
        bail = rng.random() < bail_share
        cases.append(
            {
                "id": i,
                "crime_reference": f"CR/{i}",
                "offence_category": rng.choice(["iioc", "fraud", "grooming"]),
                "officer_id": officer_id,
                "team": "",
                "status": "open",
                "received_date": today - timedelta(days=rng.randint(0, 400)),
                "children_in_household": rng.randint(0, 4) if restricted else 0,
                "suspect_access_children_home": restricted,
                "suspect_access_children_work": False,
                "section47_open": rng.random() < 0.1,
                "child_protection_plan": False,
                "restriction_kind": "no_contact_own_children" if restricted else None,
                "restriction_start": today - timedelta(days=rng.randint(0, 300)) if restricted else None,
                "bail_return_date": today + timedelta(days=rng.randint(1, 60)) if bail else None,
                "safeguarding_notes": "",
                "created_at": now,
                "updated_at": now,
            }
        )
        exhibits.append(
            {
                "id": i,
                "case_id": i,
                "reference": "E/1",
                "device_type": "laptop",
                "make": "",
                "model": "",
                "serial": "",
                "seized_from": "",
                "location": "",
                "state": "awaiting_examination",
                "state_changed_at": now,
                "integrity_flag": False,
                "created_at": now,
            }
        )
        tasks.append(
            {
                "exhibit_id": i,
                "case_id": i,
                "device_type": "laptop",
                "needs_iioc_clearance": False,
                "state": "queued",
                "priority": 0.0,
                "pinned": False,
                "held": False,
                "attempt": 0,
                "queued_at": now,
                "outcome": "",
            }
        )
    with Session(engine) as s:
        for model, rows in ((Case, cases), (Exhibit, exhibits), (ExaminationTask, tasks)):
            table = model.__table__  # type: ignore[attr-defined,union-attr]
            for start in range(0, len(rows), 10_000):
                s.execute(insert(table), rows[start : start + 10_000])
        s.commit()


def row_id(row: Any) -> int:
    """The id of a row the database has numbered (flushed or loaded): mypy sees model ids as
    ``int | None``, since a row has none until it is flushed."""
    assert row.id is not None, f"{type(row).__name__} has no id yet: flush it first"
    return int(row.id)


def case_with_exhibit(
    session: Session,
    officer_id: int,
    reference: str,
    exhibit_state: ExhibitState = ExhibitState.registered,
    offence: OffenceCategory = OffenceCategory.iioc,
    device: DeviceType = DeviceType.laptop,
) -> tuple[Case, Exhibit]:
    """A case received today with one exhibit ``E/1`` already in ``exhibit_state``, added and
    flushed in ``session`` (no custody event: for tests that set up a state directly)."""
    case = Case(
        crime_reference=reference,
        offence_category=offence,
        officer_id=officer_id,
        received_date=datetime.now(UTC).date(),
    )
    session.add(case)
    session.flush()
    return case, _exhibit(session, row_id(case), "E/1", device, exhibit_state)


def _exhibit(
    session: Session, case_id: int, reference: str, device: DeviceType, state: ExhibitState
) -> Exhibit:
    """An exhibit put straight into ``state``, added and flushed (so it has its id)."""
    exhibit = Exhibit(case_id=case_id, reference=reference, device_type=device, state=state)
    session.add(exhibit)
    session.flush()
    return exhibit


def exhibit_with_task(
    session: Session,
    case_id: int,
    reference: str,
    device: DeviceType = DeviceType.laptop,
    exhibit_state: ExhibitState = ExhibitState.awaiting_examination,
    **task: Any,
) -> tuple[Exhibit, ExaminationTask]:
    """An exhibit of case ``case_id`` already in ``exhibit_state`` and its examination task
    (queued unless ``task`` says otherwise: state, priority, completed_at, ...), added and
    flushed in ``session`` (no custody event or audit: for tests that set up a queue directly)."""
    exhibit = _exhibit(session, case_id, reference, device, exhibit_state)
    examination = ExaminationTask(exhibit_id=row_id(exhibit), case_id=case_id, device_type=device, **task)
    session.add(examination)
    session.flush()
    return exhibit, examination
