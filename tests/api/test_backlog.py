"""Vendors, outsourcing and the backlog: refusals with reasons, hash re-verification,
figures, and a forecast checked by hand."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import shutil
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tests.api.helpers import create_case, create_exhibit, probing
from tests.conftest import PASSWORD, TESTDATA, Users, make_account
from tests.factories import exhibit_with_task, row_id
from triage import backlog, vendors
from triage.context import Context
from triage.errors import ConflictError
from triage.models.accounts import Role
from triage.models.exhibits import CustodyEvent, DeviceType, Exhibit, ExhibitState
from triage.models.queue import TaskState
from triage.models.vendors import Outsourcing, Vendor, VendorStatus

NEXT_YEAR = (date.today() + timedelta(days=365)).isoformat()


def _vendor(client: TestClient, h: dict[str, str], name: str = "Acme Forensics", **kw: Any) -> dict[str, Any]:
    body = {
        "name": name,
        "iso17025_digital": True,
        "fsr_code_compliant": True,
        "accreditation_expires": NEXT_YEAR,
        "security_vetted": True,
        "iioc_authorised": True,
        "capacity_per_month": 2,
        "turnaround_days": 20,
        "price_pence": {"laptop": 45000, "phone": 30000},
    }
    body.update(kw)
    r = client.post("/api/v1/vendors", json=body, headers=h)
    assert r.status_code == 201, r.text
    approved = client.post(f"/api/v1/vendors/{r.json()['id']}/approve", headers=h)
    assert approved.status_code == 200, approved.text
    return dict(approved.json())


def test_vendor_cannot_be_approved_without_accreditation(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    h = headers["manager"]
    r = client.post(
        "/api/v1/vendors",
        headers=h,
        json={
            "name": "Cheap Ltd",
            "accreditation_expires": NEXT_YEAR,
            "capacity_per_month": 5,
            "turnaround_days": 10,
        },
    )
    r = client.post(f"/api/v1/vendors/{r.json()['id']}/approve", headers=h)
    assert r.status_code == 409 and "ISO/IEC 17025" in r.json()["detail"]
    assert client.get("/api/v1/vendors", headers=headers["examiner"]).status_code == 403


def test_suspended_or_expired_vendors_are_refused_with_the_reason(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]], engine: Engine
) -> None:
    h = headers["manager"]
    case = create_case(client, h, users.investigator.id, offence_category="fraud")  # type: ignore[arg-type]
    exhibit = create_exhibit(client, h, case["id"])
    vendor = _vendor(client, h)
    client.post(f"/api/v1/vendors/{vendor['id']}/suspend", headers=h)
    r = client.post(
        f"/api/v1/exhibits/{exhibit['id']}/outsource", json={"vendor_id": vendor["id"]}, headers=h
    )
    assert r.status_code == 409 and "suspended" in r.json()["detail"]
    expired = _vendor(client, h, "Old Labs")
    with Session(engine) as s:  # accreditation lapses after approval
        row = s.get(Vendor, expired["id"])
        assert row is not None
        row.accreditation_expires = date.today() - timedelta(days=1)
        s.add(row)
        s.commit()
    r = client.post(
        f"/api/v1/exhibits/{exhibit['id']}/outsource", json={"vendor_id": expired["id"]}, headers=h
    )
    assert r.status_code == 409 and "expired" in r.json()["detail"]
    no_iioc = _vendor(client, h, "General Digital", iioc_authorised=False)
    child_case = create_case(client, h, users.investigator.id, "CR/CHILD")  # type: ignore[arg-type]
    child_exhibit = create_exhibit(client, h, child_case["id"])
    r = client.post(
        f"/api/v1/exhibits/{child_exhibit['id']}/outsource", json={"vendor_id": no_iioc["id"]}, headers=h
    )
    assert r.status_code == 409 and "indecent imagery" in r.json()["detail"]
    assert client.get(f"/api/v1/exhibits/{exhibit['id']}", headers=h).json()["state"] == "registered"
    assert client.get("/api/v1/outsourcings", headers=h).json() == []


def test_capacity_is_enforced_per_month(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    h = headers["manager"]
    vendor = _vendor(client, h, capacity_per_month=2)
    case = create_case(client, h, users.investigator.id)  # type: ignore[arg-type]
    exhibits = [create_exhibit(client, h, case["id"], f"JB/{n}") for n in range(3)]
    for exhibit in exhibits[:2]:
        r = client.post(
            f"/api/v1/exhibits/{exhibit['id']}/outsource", json={"vendor_id": vendor["id"]}, headers=h
        )
        assert r.status_code == 201, r.text
        assert (
            r.json()["cost_pence"] == 45000
            and r.json()["due_date"] == (date.today() + timedelta(days=20)).isoformat()
        )
    r = client.post(
        f"/api/v1/exhibits/{exhibits[2]['id']}/outsource", json={"vendor_id": vendor["id"]}, headers=h
    )
    assert r.status_code == 409 and "no capacity left this month" in r.json()["detail"]
    trail = client.get(f"/api/v1/exhibits/{exhibits[0]['id']}/custody", headers=h).json()
    assert trail[-1]["to_location"] == "vendor: Acme Forensics"
    figures = client.get("/api/v1/backlog", headers=h).json()
    assert figures["with_vendors"] == 2 and figures["spend"]["spent_pence"] == 90000


def test_returning_an_exhibit_whose_image_hash_changed_is_flagged_and_audited(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]], evidence_root: Path
) -> None:
    h = headers["manager"]
    vendor = _vendor(client, h)
    case = create_case(client, h, users.investigator.id)  # type: ignore[arg-type]
    good, bad = create_exhibit(client, h, case["id"], "G/1"), create_exhibit(client, h, case["id"], "B/1")
    for exhibit, name in ((good, "good.raw"), (bad, "disk.raw")):  # an image belongs to one exhibit
        shutil.copyfile(TESTDATA / "iso9660.raw", evidence_root / name)
        r = client.post(
            f"/api/v1/exhibits/{exhibit['id']}/images",
            json={"path": name, "start_triage": False},
            headers=h,
        )
        assert r.status_code == 201, r.text
    image = evidence_root / "disk.raw"
    sent_good = client.post(
        f"/api/v1/exhibits/{good['id']}/outsource", json={"vendor_id": vendor["id"]}, headers=h
    ).json()
    back = client.post(
        f"/api/v1/outsourcings/{sent_good['id']}/return", json={"report_reference": "ACME-1"}, headers=h
    )
    assert back.status_code == 200 and back.json()["state"] == "returned"
    assert back.json()["return_md5"] == sent_good["dispatch_md5"]
    assert client.get(f"/api/v1/exhibits/{good['id']}", headers=h).json()["state"] == "examined"

    sent_bad = client.post(
        f"/api/v1/exhibits/{bad['id']}/outsource", json={"vendor_id": vendor["id"]}, headers=h
    ).json()
    data = bytearray(image.read_bytes())
    data[100] ^= 0xFF
    image.write_bytes(bytes(data))
    back = client.post(
        f"/api/v1/outsourcings/{sent_bad['id']}/return", json={"report_reference": "ACME-2"}, headers=h
    )
    assert (
        back.json()["state"] == "returned_flagged" and back.json()["return_md5"] != sent_bad["dispatch_md5"]
    )
    exhibit = client.get(f"/api/v1/exhibits/{bad['id']}", headers=h).json()
    assert exhibit["integrity_flag"] is True and exhibit["state"] == "awaiting_examination"
    events = client.get("/api/v1/audit?action=outsourcing.hash_mismatch", headers=h).json()["items"]
    assert len(events) == 1 and events[0]["object_id"] == str(bad["id"])
    again = client.post(
        f"/api/v1/outsourcings/{sent_bad['id']}/return", json={"report_reference": "X"}, headers=h
    )
    assert again.status_code == 409


def test_forecast_on_a_constructed_history_matches_a_hand_computation(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]], engine: Engine
) -> None:
    h = headers["manager"]
    make_account(engine, "examiner2", Role.examiner)  # two examiners in all
    case = create_case(client, h, users.investigator.id)  # type: ignore[arg-type]
    now = datetime.now(UTC)
    with Session(engine) as s:
        for n in range(10):  # the backlog: ten exhibits waiting
            s.add(
                Exhibit(
                    case_id=case["id"],
                    reference=f"W/{n}",
                    device_type=DeviceType.laptop,
                    state=ExhibitState.awaiting_examination,
                )
            )
        for n in range(8):  # eight examinations done in the last four weeks: 2 a week in house
            exhibit_with_task(
                s,
                case["id"],
                f"D/{n}",
                exhibit_state=ExhibitState.examined,
                state=TaskState.completed,
                completed_at=now - timedelta(days=3 * n + 1),
            )
        s.add(
            Vendor(
                name="V",
                accreditation_expires=date.today() + timedelta(days=90),
                capacity_per_month=13,
                status=VendorStatus.approved,
                iso17025_digital=True,
                fsr_code_compliant=True,
            )
        )
        s.commit()
    today = now.date()
    # By hand: vendor 13 a month = 13 / (52/12) = 3 a week; 10 / (2 + 3) = 2 weeks = 14 days.
    current = client.get("/api/v1/backlog/forecast", headers=h).json()
    assert current["current"]["backlog"] == 10
    assert current["current"]["in_house_per_week"] == 2.0
    assert abs(current["current"]["vendor_per_week"] - 3.0) < 1e-9
    assert current["current"]["weeks_to_clear"] == 2.0
    assert current["current"]["clears_on"] == (today + timedelta(days=14)).isoformat()
    # Two more examiners at 1 a week each: 10 / (4 + 3) = 1.43 weeks -> 10 days.
    more = client.get("/api/v1/backlog/forecast?extra_examiners=2", headers=h).json()
    assert more["what_if"]["clears_on"] == (today + timedelta(days=10)).isoformat()
    # Thirteen more outsourced a month: 10 / (2 + 6) = 1.25 weeks -> 9 days.
    out = client.get("/api/v1/backlog/forecast?extra_outsourcing_per_month=13", headers=h).json()
    assert out["what_if"]["clears_on"] == (today + timedelta(days=9)).isoformat()
    assert backlog.forecast_from(0, 0, 0, today).clears_on == today
    assert backlog.forecast_from(5, 0, 0, today).clears_on is None  # nothing moves: no date


def test_backlog_figures_as_json_and_csv(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    h = headers["manager"]
    old = create_case(client, h, users.investigator.id, "CR/OLD", received_date="2026-01-05")  # type: ignore[arg-type]
    create_exhibit(client, h, old["id"], "O/1", "phone")
    data = client.get("/api/v1/backlog", headers=h).json()
    assert data["waiting_exhibits"] == 1 and data["by_device_type"] == {"phone": 1}
    assert data["age_buckets_days"]["over 180"] == 1 and data["oldest"]["crime_reference"] == "CR/OLD"
    assert data["child_welfare_cases_waiting"] == 1 and data["days_under_family_restriction"]["cases"] == 1
    weeks = data["backlog_by_week"]
    assert len(weeks) == 12 and weeks[-1]["waiting"] == 1 and weeks[0]["waiting"] == 0  # registered today
    csv_text = client.get("/api/v1/backlog.csv", headers=h).text
    assert csv_text.splitlines()[0] == "section,key,value" and "age_buckets_days,over 180,1" in csv_text
    assert client.get("/api/v1/backlog", headers=headers["investigator"]).status_code == 403


def test_backlog_csv_cells_never_start_a_spreadsheet_formula() -> None:
    data = {
        "waiting_exhibits": 3,
        "oldest": {"crime_reference": "-A1/B2", "reference": "JB/1", "days": -4},
        "by_state": {"=cmd": 1, "@x": 2},
    }
    rows = list(csv.reader(io.StringIO(backlog.figures_csv(data))))
    assert ["total", "waiting_exhibits", "3"] in rows
    assert ["oldest", "crime_reference", "'-A1/B2"] in rows and ["oldest", "reference", "JB/1"] in rows
    assert ["oldest", "days", "-4"] in rows  # a number stays a number
    assert ["by_state", "'=cmd", "1"] in rows and ["by_state", "'@x", "2"] in rows


def test_recommendation_to_meet_a_target_date_matches_a_hand_computation(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]], engine: Engine
) -> None:
    h = headers["manager"]
    now = datetime.now(UTC)
    today = now.date()
    done_cases = [create_case(client, h, users.investigator.id, f"CR/D{n}")["id"] for n in range(8)]  # type: ignore[arg-type]
    with Session(engine) as s:
        for n, case_id in enumerate(done_cases):  # pace: 8 in 4 weeks = 2 a week in house
            exhibit_with_task(
                s,
                case_id,
                "D",
                exhibit_state=ExhibitState.examined,
                state=TaskState.completed,
                completed_at=now - timedelta(days=2 + n),
            )
        s.commit()
    # Queue, by priority: welfare, plain, welfare, plain (fraud cases: no IIOC authority needed).
    welfare = {"children_in_household": 1, "restriction_kind": None, "restriction_start": None}
    plain = {
        "children_in_household": 0,
        "suspect_access_children_home": False,
        "restriction_kind": None,
        "restriction_start": None,
    }
    cases = [
        create_case(
            client,
            h,
            row_id(users.investigator),
            f"CR/Q{n}",
            offence_category="fraud",  # type: ignore[arg-type]
            **(welfare if n in (0, 2) else plain),
        )
        for n in range(4)
    ]
    with Session(engine) as s:
        for n, case in enumerate(cases):
            exhibit_with_task(s, case["id"], "Q", DeviceType.phone, priority=400.0 - 100 * n)
        s.add(
            Vendor(
                name="Quick",
                accreditation_expires=today + timedelta(days=300),
                capacity_per_month=1,
                turnaround_days=5,
                status=VendorStatus.approved,
                iso17025_digital=True,
                fsr_code_compliant=True,
            )
        )
        s.add(
            Vendor(
                name="Slow",
                accreditation_expires=today + timedelta(days=300),
                capacity_per_month=50,
                turnaround_days=10,
                status=VendorStatus.approved,
                iso17025_digital=True,
                fsr_code_compliant=True,
            )
        )
        s.commit()
    target = today + timedelta(days=7)
    r = client.get(f"/api/v1/backlog/recommendation?target_date={target.isoformat()}", headers=h)
    assert r.status_code == 200, r.text
    plan = r.json()
    # By hand: 2/7 a day; position p is expected after ceil(3.5 p) - 1 days: 3, 6, 10, 13.
    # Positions 3 and 4 miss the target; "Slow" returns after it; "Quick" has room for one.
    assert [(p["crime_reference"], p["vendor"], p["due_date"]) for p in plan["outsource"]] == [
        ("CR/Q2", "Quick", (today + timedelta(days=5)).isoformat())
    ]
    assert plan["cannot_place"] == 1
    assert plan["child_welfare_wait_before"] == {"cases": 2, "mean_days": 6.5, "max_days": 10}
    assert plan["child_welfare_wait_after"] == {"cases": 2, "mean_days": 4.0, "max_days": 5}
    past = client.get(f"/api/v1/backlog/recommendation?target_date={today.isoformat()}", headers=h)
    assert past.status_code == 422


def test_a_cases_exhibits_go_together_or_not_at_all(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    h = headers["manager"]
    vendor = _vendor(client, h, capacity_per_month=2)
    big = create_case(client, h, users.investigator.id, "CR/BIG")  # type: ignore[arg-type]
    for n in range(3):
        create_exhibit(client, h, big["id"], f"B/{n}")
    r = client.post(f"/api/v1/cases/{big['id']}/outsource", json={"vendor_id": vendor["id"]}, headers=h)
    assert r.status_code == 409 and "capacity" in r.json()["detail"]
    assert client.get("/api/v1/outsourcings", headers=h).json() == []  # none sent
    small = create_case(client, h, users.investigator.id, "CR/SMALL")  # type: ignore[arg-type]
    for n in range(2):
        create_exhibit(client, h, small["id"], f"S/{n}")
    r = client.post(f"/api/v1/cases/{small['id']}/outsource", json={"vendor_id": vendor["id"]}, headers=h)
    assert r.status_code == 201 and len(r.json()) == 2


def test_a_budget_is_set_per_financial_year_and_shown_against_spend(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    from triage.vendors import financial_year

    year = financial_year(date.today())
    h = headers["manager"]
    r = client.put(f"/api/v1/budgets/{year}", json={"amount_pence": 250_000_00}, headers=h)
    assert r.status_code == 204, r.text
    spend = client.get("/api/v1/backlog", headers=h).json()["spend"]
    assert (spend["financial_year"], spend["budget_pence"]) == (year, 250_000_00)
    assert (
        client.put(
            f"/api/v1/budgets/{year}", json={"amount_pence": 1}, headers=headers["examiner"]
        ).status_code
        == 403
    )
    for bad, status in [("2026-29", 400), ("0000-01", 400), ("2026-2027", 422), ("x" * 40, 422)]:
        r = client.put(f"/api/v1/budgets/{bad}", json={"amount_pence": 1}, headers=h)
        assert r.status_code == status, (bad, r.text)
    r = client.put(f"/api/v1/budgets/{year}", json={"amount_pence": 2**31}, headers=h)
    assert r.status_code == 422, r.text
    assert client.get("/api/v1/backlog", headers=h).json()["spend"]["budget_pence"] == 250_000_00


def test_the_vendors_page_names_exhibits_out_by_their_references(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    # It showed the exhibit's row id, which a manager never sees anywhere else.
    h = headers["manager"]
    vendor = _vendor(client, h)
    case = create_case(client, h, users.investigator.id, "CR/2026/0077")  # type: ignore[arg-type]
    exhibit = create_exhibit(client, h, case["id"], "JB/7")
    r = client.post(
        f"/api/v1/exhibits/{exhibit['id']}/outsource", json={"vendor_id": vendor["id"]}, headers=h
    )
    assert r.status_code == 201, r.text
    client.post("/login", data={"username": "manager", "password": PASSWORD})
    page = client.get("/vendors").text
    due = (date.today() + timedelta(days=20)).isoformat()
    assert f"<td>CR/2026/0077 / JB/7</td><td>Acme Forensics</td><td>{date.today()}</td><td>{due}</td>" in page
    assert "<td>approved</td>" in page


def _unhashed_images(client: TestClient, h: dict[str, str], evidence_root: Path, case_id: int) -> list[str]:
    """Two exhibits of the case, each with a raw image given no acquisition hash and not
    triaged: sending one reads the whole image to hash it. Their MD5s, in order."""
    digests = []
    for n in range(2):
        image = evidence_root / f"disk{n}.raw"
        image.write_bytes(TESTDATA.joinpath("iso9660.raw").read_bytes() + bytes([n]) * 512)
        exhibit = create_exhibit(client, h, case_id, f"U/{n}")
        r = client.post(
            f"/api/v1/exhibits/{exhibit['id']}/images",
            json={"path": image.name, "start_triage": False},
            headers=h,
        )
        assert r.status_code == 201, r.text
        digests.append(hashlib.md5(image.read_bytes()).hexdigest())  # noqa: S324 - what vendors are given
    return digests


def test_hashing_an_image_for_a_vendor_holds_no_transaction(
    client: TestClient,
    users: Users,
    headers: dict[str, dict[str, str]],
    evidence_root: Path,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An image is read whole when it is sent (if never hashed) and when it comes back: minutes
    # for a large one, which held SQLite's write lock (or a PostgreSQL transaction) throughout.
    h = headers["manager"]
    vendor = _vendor(client, h)
    case = create_case(client, h, users.investigator.id)  # type: ignore[arg-type]
    digests = _unhashed_images(client, h, evidence_root, case["id"])
    probes: list[bool] = []
    monkeypatch.setattr(vendors, "_image_md5", probing(vendors._image_md5, engine, probes))
    sent = client.post(f"/api/v1/cases/{case['id']}/outsource", json={"vendor_id": vendor["id"]}, headers=h)
    assert sent.status_code == 201, sent.text
    assert [r["dispatch_md5"] for r in sent.json()] == digests
    back = client.post(
        f"/api/v1/outsourcings/{sent.json()[0]['id']}/return", json={"report_reference": "R-1"}, headers=h
    )
    assert back.status_code == 200 and back.json()["return_md5"] == digests[0]
    assert probes == [True, True, True]


def test_a_return_recorded_by_someone_else_while_hashing_is_a_conflict(
    client: TestClient,
    users: Users,
    headers: dict[str, dict[str, str]],
    evidence_root: Path,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = headers["manager"]
    vendor = _vendor(client, h)
    case = create_case(client, h, users.investigator.id)  # type: ignore[arg-type]
    _unhashed_images(client, h, evidence_root, case["id"])
    sent = client.post(f"/api/v1/cases/{case['id']}/outsource", json={"vendor_id": vendor["id"]}, headers=h)
    outsourcing_id = sent.json()[0]["id"]
    real = vendors._image_md5
    theirs = Context(actor=users.manager, request_id="theirs")

    def hashing_while_another_returns(image: Any) -> str:
        monkeypatch.setattr(vendors, "_image_md5", real)  # theirs hashes as usual
        with Session(engine, expire_on_commit=False) as other:
            vendors.receive(other, theirs, other.get_one(Outsourcing, outsourcing_id), "THEIRS", True)
            other.commit()
        return real(image)

    monkeypatch.setattr(vendors, "_image_md5", hashing_while_another_returns)
    r = client.post(
        f"/api/v1/outsourcings/{outsourcing_id}/return", json={"report_reference": "MINE"}, headers=h
    )
    assert r.status_code == 409 and "returned already" in r.json()["detail"]
    with Session(engine) as s:
        record = s.get(Outsourcing, outsourcing_id)
        assert record is not None and record.report_reference == "THEIRS"
    events = client.get(
        "/api/v1/audit", params={"action": "outsourcing.return", "object_id": str(outsourcing_id)}, headers=h
    ).json()
    assert events["total"] == 1


def test_two_managers_sending_at_once_cannot_both_take_a_vendor_s_last_place(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]], engine: Engine
) -> None:
    h = headers["manager"]
    vendor_id = _vendor(client, h, capacity_per_month=1)["id"]
    case = create_case(client, h, users.investigator.id)  # type: ignore[arg-type]
    first_id, second_id = (create_exhibit(client, h, case["id"], f"C/{n}")["id"] for n in range(2))
    ctx = Context(actor=users.manager, request_id="race")
    outcome: dict[str, str] = {}

    def second_manager() -> None:
        with Session(engine, expire_on_commit=False) as s:
            try:
                vendors.dispatch(
                    s, ctx, s.get_one(Exhibit, second_id), s.get_one(Vendor, vendor_id), "second"
                )
                s.commit()
                outcome["second"] = "sent"
            except ConflictError as exc:
                s.rollback()
                outcome["second"] = str(exc)

    with Session(engine, expire_on_commit=False) as first:
        vendors.dispatch(
            first, ctx, first.get_one(Exhibit, first_id), first.get_one(Vendor, vendor_id), "first"
        )
        other = threading.Thread(target=second_manager)
        other.start()
        other.join(0.5)
        assert other.is_alive()  # waiting for the first to finish, not counting beside it
        first.commit()
    other.join(30)
    assert "no capacity left this month" in outcome["second"]
    with Session(engine) as s:
        assert len(s.exec(select(Outsourcing)).all()) == 1


def test_managers_outsource_and_record_returns_from_the_pages(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]], engine: Engine
) -> None:
    # The API and CLI could do both; a manager working from the pages could only look.
    h = headers["manager"]
    vendor = _vendor(client, h, capacity_per_month=2)
    case = create_case(client, h, users.investigator.id, "CR/2026/0088")  # type: ignore[arg-type]
    for n in range(3):
        exhibit = create_exhibit(client, h, case["id"], f"JB/{n}")
        r = client.post(
            f"/api/v1/exhibits/{exhibit['id']}/transitions",
            json={"to_state": "awaiting_examination", "reason": "cannot be imaged"},
            headers=headers["examiner"],
        )
        assert r.status_code == 200, r.text
    client.post("/login", data={"username": "manager", "password": PASSWORD})
    past, target = date.today().isoformat(), (date.today() + timedelta(days=30)).isoformat()
    r = client.get("/backlog", params={"target": past})
    assert r.status_code == 422 and f"The target date {past} must be in the future" in r.text

    plan = client.get("/backlog", params={"target": target}).text
    assert "2 of 3 queued exhibit(s) to send; 1 would still miss the date" in plan  # capacity 2
    first = re.search(
        r'name="exhibit_id" value="(\d+)"><input type="hidden" name="vendor_id" value="(\d+)"', plan
    )
    assert first is not None
    exhibit_id, vendor_id = first.groups()
    assert vendor_id == str(vendor["id"])
    form = {"exhibit_id": exhibit_id, "vendor_id": vendor_id, "target": target}
    due = (date.today() + timedelta(days=20)).isoformat()
    r = client.post("/backlog/outsource", data=form)
    assert r.status_code == 200 and f"sent to the vendor, due back {due}." in r.text, r.text[-800:]
    assert "1 of 2 queued exhibit(s) to send" in r.text  # back on the plan, recomputed
    again = client.post("/backlog/outsource", data=form)
    assert again.status_code == 409 and 'role="alert"' in again.text
    assert client.post("/backlog/outsource", data={**form, "vendor_id": "x"}).status_code == 422
    assert client.post("/backlog/outsource", data={**form, "exhibit_id": "999999"}).status_code == 404
    with Session(engine) as s:
        (record,) = s.exec(select(Outsourcing)).all()
        assert str(record.exhibit_id) == exhibit_id and "target of " + target in _custody_reasons(s, record)

    page = client.get("/vendors").text
    assert f'action="/vendors/outsourcings/{record.id}/return"' in page
    r = client.post(
        f"/vendors/outsourcings/{record.id}/return", data={"report_reference": " ", "examined": "yes"}
    )
    assert r.status_code == 422 and "report_reference" in r.text
    r = client.post(
        f"/vendors/outsourcings/{record.id}/return", data={"report_reference": "ACME-1", "examined": "yes"}
    )
    assert r.status_code == 200 and "Returned with report ACME-1: examined." in r.text
    assert "Nothing is out with a vendor." in r.text
    r = client.post(f"/vendors/outsourcings/{record.id}/return", data={"report_reference": "ACME-2"})
    assert r.status_code == 409 and "returned already" in r.text
    assert client.get(f"/api/v1/exhibits/{exhibit_id}", headers=h).json()["state"] == "examined"

    client.post("/logout")
    client.post("/login", data={"username": "examiner", "password": PASSWORD})
    assert client.post("/backlog/outsource", data=form).status_code == 403
    r = client.post(f"/vendors/outsourcings/{record.id}/return", data={"report_reference": "X"})
    assert r.status_code == 403


def _custody_reasons(session: Session, record: Outsourcing) -> str:
    events = session.exec(select(CustodyEvent).where(CustodyEvent.exhibit_id == record.exhibit_id)).all()
    return " | ".join(e.reason for e in events)


def test_an_investigator_sees_when_a_vendor_is_due_to_return_their_device(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    # Out with a vendor, a device has no place in the queue: its expected date was blank.
    h = headers["manager"]
    vendor = _vendor(client, h, turnaround_days=25)
    case = create_case(client, h, users.investigator.id)  # type: ignore[arg-type]
    sent = create_exhibit(client, h, case["id"], "V/1")
    create_exhibit(client, h, case["id"], "V/2")
    r = client.post(f"/api/v1/exhibits/{sent['id']}/outsource", json={"vendor_id": vendor["id"]}, headers=h)
    assert r.status_code == 201, r.text
    status = client.get(f"/api/v1/cases/{case['id']}/status", headers=headers["investigator"]).json()
    devices = {d["reference"]: d for d in status["devices"]}
    assert devices["V/1"]["state"] == "outsourced" and devices["V/1"]["queue_position"] is None
    assert devices["V/1"]["expected_examination_date"] == (date.today() + timedelta(days=25)).isoformat()
    assert devices["V/2"]["expected_examination_date"] is None  # registered, not yet waiting
    client.post(f"/api/v1/outsourcings/{r.json()['id']}/return", json={"report_reference": "R"}, headers=h)
    status = client.get(f"/api/v1/cases/{case['id']}/status", headers=headers["investigator"]).json()
    assert {d["reference"]: d["expected_examination_date"] for d in status["devices"]} == {
        "V/1": None,
        "V/2": None,
    }
