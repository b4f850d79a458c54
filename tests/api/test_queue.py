"""The examination queue through the API: order, overrides, claims, leases, investigators."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tests.api.helpers import create_case, create_exhibit
from tests.conftest import Users, make_account
from tests.factories import case_with_exhibit, exhibit_with_task, row_id
from triage import audit, custody, queue
from triage.context import Context
from triage.errors import ConflictError
from triage.models.accounts import Role
from triage.models.audit import AuditEvent
from triage.models.exhibits import CustodyEvent, Exhibit, ExhibitState
from triage.models.queue import ExaminationTask, TaskState
from triage.models.runs import RunState, TriageHit, TriageRun

SOON = (datetime.now(UTC) + timedelta(days=3)).isoformat()


def _ready_exhibit(
    client: TestClient, h: dict[str, str], case_id: int, ref: str, device: str = "laptop"
) -> int:
    exhibit = create_exhibit(client, h, case_id, ref, device)
    r = client.post(
        f"/api/v1/exhibits/{exhibit['id']}/transitions",
        json={"to_state": "awaiting_examination", "reason": "cannot be imaged"},
        headers=h,
    )
    assert r.status_code == 200, r.text
    return int(exhibit["id"])


def _queue(client: TestClient, h: dict[str, str]) -> list[dict[str, Any]]:
    r = client.get("/api/v1/queue", headers=h)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def _restricted(days: int) -> dict[str, Any]:
    start = (datetime.now(UTC) - timedelta(days=days)).date().isoformat()
    return {
        "children_in_household": 2,
        "suspect_access_children_home": True,
        "restriction_kind": "no_contact_own_children",
        "restriction_start": start,
    }


def _plain() -> dict[str, Any]:
    return {
        "children_in_household": 0,
        "suspect_access_children_home": False,
        "restriction_kind": None,
        "restriction_start": None,
    }


@pytest.mark.parametrize("restricted_first", [True, False])
def test_children_and_a_long_restriction_come_first_whatever_the_arrival_order(
    restricted_first: bool, client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    h = headers["manager"]
    bodies = [("CR/R", _restricted(213)), ("CR/P", _plain())]
    for ref, extra in bodies if restricted_first else bodies[::-1]:
        case = create_case(client, h, users.investigator.id, ref, **extra)  # type: ignore[arg-type]
        _ready_exhibit(client, h, case["id"], "JB/1")
    order = _queue(client, h)
    assert [e["crime_reference"] for e in order] == ["CR/R", "CR/P"]
    top = order[0]
    assert {f["code"] for f in top["factors"]} >= {"family_restriction", "children_in_household"}
    assert top["total"] > order[1]["total"] and top["policy_version"]


def test_a_pin_puts_a_case_first_with_a_preview_and_expires(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]], engine: Engine
) -> None:
    h = headers["manager"]
    first = create_case(client, h, users.investigator.id, "CR/A", **_restricted(200))  # type: ignore[arg-type]
    low = create_case(client, h, users.investigator.id, "CR/B", **_plain())  # type: ignore[arg-type]
    _ready_exhibit(client, h, first["id"], "A/1")
    _ready_exhibit(client, h, low["id"], "B/1")
    assert _queue(client, h)[0]["crime_reference"] == "CR/A"
    body = {"kind": "pin", "reason": "court order to examine", "expires_at": SOON}
    preview = client.post(f"/api/v1/cases/{low['id']}/overrides/preview", json=body, headers=h).json()
    assert preview["current_position"] == 2 and preview["new_position"] == 1
    assert _queue(client, h)[0]["crime_reference"] == "CR/A"  # a preview stores nothing
    r = client.post(f"/api/v1/cases/{low['id']}/overrides", json=body, headers=h)
    assert r.status_code == 201, r.text
    order = _queue(client, h)
    assert order[0]["crime_reference"] == "CR/B" and order[0]["task"]["pinned"] is True
    assert any(f["code"] == "override_pin" and "court order" in f["label"] for f in order[0]["factors"])
    # When the pin expires, the next rescoring puts things back.
    with Session(engine) as s:
        queue.rescore(s, now=datetime.now(UTC) + timedelta(days=4))
        s.commit()
    assert _queue(client, h)[0]["crime_reference"] == "CR/A"


def test_overrides_need_a_reason_and_a_future_expiry(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    h = headers["manager"]
    case = create_case(client, h, users.investigator.id)  # type: ignore[arg-type]
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    for body, field in [
        ({"kind": "pin", "expires_at": SOON}, "reason"),
        ({"kind": "pin", "reason": "x y z", "expires_at": past}, "expires_at"),
        ({"kind": "boost", "reason": "x y z", "expires_at": SOON}, "points"),
        ({"kind": "sparkle", "reason": "x y z", "expires_at": SOON}, "kind"),
    ]:
        r = client.post(f"/api/v1/cases/{case['id']}/overrides", json=body, headers=h)
        assert r.status_code == 422, (body, r.text)
        assert field in str(r.json()["detail"])
    assert client.get(f"/api/v1/cases/{case['id']}/overrides", headers=h).json() == []
    r = client.post(
        f"/api/v1/cases/{case['id']}/overrides",
        json={"kind": "hold", "reason": "awaiting consent", "expires_at": SOON},
        headers=headers["examiner"],
    )
    assert r.status_code == 403


def test_examiner_takes_next_job_and_completes_it(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    h, ex = headers["manager"], headers["examiner"]
    case = create_case(client, h, users.investigator.id, **_restricted(100))  # type: ignore[arg-type]
    exhibit_id = _ready_exhibit(client, h, case["id"], "JB/1")
    task = client.post("/api/v1/tasks/claim-next", headers=ex).json()
    assert task["exhibit_id"] == exhibit_id and task["state"] == "claimed" and task["attempt"] == 1
    assert client.get(f"/api/v1/exhibits/{exhibit_id}", headers=h).json()["state"] == "in_examination"
    assert (
        client.post("/api/v1/tasks/claim-next", headers=headers["admin"]).status_code == 204
    )  # nothing left
    r = client.post(
        f"/api/v1/tasks/{task['id']}/complete", json={"attempt": 1, "outcome": "no IIOC found"}, headers=ex
    )
    assert r.status_code == 200 and r.json()["state"] == "completed"
    assert client.get(f"/api/v1/exhibits/{exhibit_id}", headers=h).json()["state"] == "examined"
    audit = client.get("/api/v1/audit?object_type=examination_task", headers=h).json()["items"]
    assert {"task.claim", "task.complete"} <= {e["action"] for e in audit}


def test_completing_or_releasing_a_task_one_does_not_hold_is_409(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]], engine: Engine
) -> None:
    h = headers["manager"]
    other = make_account(engine, "examiner2", Role.examiner)
    case = create_case(client, h, users.investigator.id)  # type: ignore[arg-type]
    _ready_exhibit(client, h, case["id"], "JB/1")
    task = client.post("/api/v1/tasks/claim-next", headers=headers["examiner"]).json()
    from tests.conftest import login

    h2 = login(client, other.username)
    assert (
        client.post(
            f"/api/v1/tasks/{task['id']}/complete", json={"attempt": 1, "outcome": "x"}, headers=h2
        ).status_code
        == 409
    )
    assert (
        client.post(f"/api/v1/tasks/{task['id']}/release", json={"attempt": 1}, headers=h2).status_code == 409
    )
    assert (
        client.post(
            f"/api/v1/tasks/{task['id']}/release", json={"attempt": 7}, headers=headers["examiner"]
        ).status_code
        == 409
    )
    r = client.post(f"/api/v1/tasks/{task['id']}/release", json={"attempt": 1}, headers=headers["examiner"])
    assert r.status_code == 200 and r.json()["state"] == "queued"
    again = client.post("/api/v1/tasks/claim-next", headers=h2).json()
    assert again["id"] == task["id"] and again["attempt"] == 2


def test_a_lapsed_lease_returns_the_task(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]], engine: Engine
) -> None:
    h = headers["manager"]
    case = create_case(client, h, users.investigator.id)  # type: ignore[arg-type]
    exhibit_id = _ready_exhibit(client, h, case["id"], "JB/1")
    task = client.post("/api/v1/tasks/claim-next", headers=headers["examiner"]).json()
    with Session(engine) as s:
        assert queue.sweep(s) == []  # lease still good
        returned = queue.sweep(s, now=datetime.now(UTC) + timedelta(hours=5))
        s.commit()
    assert returned == [task["id"]]
    assert client.get(f"/api/v1/tasks/{task['id']}", headers=h).json()["state"] == "queued"
    assert client.get(f"/api/v1/exhibits/{exhibit_id}", headers=h).json()["state"] == "awaiting_examination"
    assert (
        client.post(
            f"/api/v1/tasks/{task['id']}/complete",
            json={"attempt": 1, "outcome": "late"},
            headers=headers["examiner"],
        ).status_code
        == 409
    )


def test_examiners_get_only_tasks_they_are_qualified_for(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]], engine: Engine
) -> None:
    from tests.conftest import login

    h = headers["manager"]
    case = create_case(client, h, users.investigator.id)  # type: ignore[arg-type]
    exhibit = create_exhibit(client, h, case["id"], "IIOC/1", "laptop")
    with Session(engine) as s:  # a succeeded triage run with a known-bad hit on this exhibit
        from triage.models.images import EvidenceImage

        image = EvidenceImage(
            exhibit_id=exhibit["id"],
            path="/x",
            format="raw",
            size_bytes=1,
            registered_by=row_id(users.manager),
        )  # type: ignore[arg-type]
        s.add(image)
        s.flush()
        run = TriageRun(exhibit_id=exhibit["id"], image_id=image.id, state=RunState.succeeded)  # type: ignore[arg-type]
        s.add(run)
        s.flush()
        s.add(
            TriageHit(
                run_id=row_id(run),
                case_id=case["id"],
                source="hashset",
                name="vics",  # type: ignore[arg-type]
                category="VICS 1 child abuse material",
                path="/a.jpg",
            )
        )
        s.commit()
    client.post(
        f"/api/v1/exhibits/{exhibit['id']}/transitions", json={"to_state": "awaiting_examination"}, headers=h
    )
    _ready_exhibit(client, h, case["id"], "PHONE/1", "phone")
    uncleared_laptops = make_account(engine, "laptops", Role.examiner, device_types=["laptop"])
    cleared = make_account(engine, "cleared", Role.examiner, iioc_cleared=True)
    assert (
        client.post("/api/v1/tasks/claim-next", headers=login(client, uncleared_laptops.username)).status_code
        == 204
    )
    got = client.post("/api/v1/tasks/claim-next", headers=login(client, cleared.username)).json()
    assert got["needs_iioc_clearance"] is True and got["exhibit_id"] == exhibit["id"]  # higher score (hits)
    phone = client.post("/api/v1/tasks/claim-next", headers=headers["examiner"]).json()
    assert phone["device_type"] == "phone"


def test_investigator_sees_expected_date_of_their_device_and_nothing_else(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]], engine: Engine
) -> None:
    h = headers["manager"]
    mine = create_case(client, h, users.investigator.id, "CR/MINE", **_restricted(40))  # type: ignore[arg-type]
    theirs = create_case(client, h, users.other_investigator.id, "CR/THEIRS", **_plain())  # type: ignore[arg-type]
    _ready_exhibit(client, h, theirs["id"], "T/1")
    _ready_exhibit(client, h, mine["id"], "M/1")
    # A recent pace: two completed jobs in the last weeks.
    for n in range(2):
        done = create_case(client, h, users.other_investigator.id, f"CR/DONE{n}", **_plain())  # type: ignore[arg-type]
        _ready_exhibit(client, h, done["id"], "D/1")
    with Session(engine) as s:
        for task in s.exec(select(ExaminationTask)).all():
            if task.case_id not in (mine["id"], theirs["id"]):
                task.state, task.completed_at = TaskState.completed, datetime.now(UTC) - timedelta(days=3)
                s.add(task)
        s.commit()
    ioc = headers["investigator"]
    status = client.get(f"/api/v1/cases/{mine['id']}/status", headers=ioc).json()
    device = status["devices"][0]
    assert device["state"] == "awaiting_examination" and device["queue_position"] == 1
    assert device["expected_examination_date"] is not None
    assert status["days_under_restriction"] == 40
    assert client.get(f"/api/v1/cases/{theirs['id']}/status", headers=ioc).status_code == 404
    listed = client.get("/api/v1/my/cases", headers=ioc).json()
    assert [c["crime_reference"] for c in listed] == ["CR/MINE"]
    assert client.get("/api/v1/queue", headers=ioc).status_code == 403


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_fifty_examiners_claiming_at_once_get_fifty_different_tasks(
    database_url: str, client: TestClient, users: Users, headers: dict[str, dict[str, str]], engine: Engine
) -> None:
    h = headers["manager"]
    case = create_case(client, h, users.investigator.id)  # type: ignore[arg-type]
    with Session(engine) as s:
        for n in range(60):
            exhibit_with_task(s, case["id"], f"E/{n}", priority=float(n))
        s.commit()
    examiners = [make_account(engine, f"ex{n:02d}", Role.examiner) for n in range(50)]
    got: list[int | None] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(50)

    def claim(account: Any) -> None:
        try:
            with Session(engine, expire_on_commit=False) as s:
                barrier.wait()
                task = queue.claim_next(s, Context(actor=account), 600)
                s.commit()
                got.append(task.id if task else None)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=claim, args=(a,)) for a in examiners]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert None not in got and len(got) == 50 and len(set(got)) == 50
    with Session(engine) as s:
        states = [t.state for t in s.exec(select(ExaminationTask)).all()]
        exhibit_states = [e.state for e in s.exec(select(Exhibit)).all()]
        trail = s.exec(select(CustodyEvent).where(CustodyEvent.to_state == "in_examination")).all()
        chain = audit.verify_chain(s)
    assert states.count(TaskState.claimed) == 50 and states.count(TaskState.queued) == 10
    assert exhibit_states.count(ExhibitState.in_examination) == 50 and len(trail) == 50
    # Fifty transactions appended to the audit chain at once, and it is still one chain.
    assert chain.ok, chain.reason


def test_a_move_from_a_stale_exhibit_is_refused_and_changes_nothing(engine: Engine, users: Users) -> None:
    with Session(engine, expire_on_commit=False) as s:
        _, stale = case_with_exhibit(s, row_id(users.investigator), "CR/S", ExhibitState.awaiting_examination)
        s.commit()
        s.refresh(stale)
        s.expunge(stale)
    exhibit_id = stale.id
    manager = Context(actor=users.manager)
    with Session(engine) as s:
        fresh = s.get(Exhibit, exhibit_id)
        assert fresh is not None
        custody.transition(s, manager, fresh, ExhibitState.outsourced, "sent out")
        s.commit()
    with Session(engine) as s:
        before = len(s.exec(select(CustodyEvent)).all())
        # ``stale`` still says awaiting_examination; the guarded UPDATE finds it has moved on.
        s.add(stale)
        with pytest.raises(ConflictError, match="changed state meanwhile"):
            custody.transition(s, manager, stale, ExhibitState.in_examination, "claimed by hand")
        s.rollback()
    with Session(engine) as s:
        assert s.get(Exhibit, exhibit_id).state == ExhibitState.outsourced  # type: ignore[union-attr]
        assert len(s.exec(select(CustodyEvent)).all()) == before


def test_a_task_whose_exhibit_is_not_awaiting_examination_is_not_claimed(
    engine: Engine, users: Users
) -> None:
    """A queued task whose exhibit went elsewhere (data out of step) is refused, whole."""
    examiner = make_account(engine, "ex-guard", Role.examiner)
    with Session(engine, expire_on_commit=False) as s:
        case, exhibit = case_with_exhibit(s, row_id(users.investigator), "CR/G", ExhibitState.outsourced)
        s.add(
            ExaminationTask(exhibit_id=row_id(exhibit), case_id=row_id(case), device_type=exhibit.device_type)
        )
        s.commit()
    with Session(engine) as s:
        with pytest.raises(ConflictError):
            queue.claim_next(s, Context(actor=examiner), 600)
        s.rollback()
    with Session(engine) as s:
        task = s.exec(select(ExaminationTask)).one()
        assert task.state == TaskState.queued and task.claimed_by is None and task.attempt == 0
        assert s.get(Exhibit, exhibit.id).state == ExhibitState.outsourced  # type: ignore[union-attr]
        assert s.exec(select(CustodyEvent)).all() == []
        assert s.exec(select(AuditEvent).where(AuditEvent.action == "task.claim")).all() == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_claim_during_a_whole_queue_rescore_waits_for_it_instead_of_finding_nothing(
    database_url: str, client: TestClient, users: Users, headers: dict[str, dict[str, str]], engine: Engine
) -> None:
    h = headers["manager"]
    case = create_case(client, h, users.investigator.id, **_plain())  # type: ignore[arg-type]
    first = _ready_exhibit(client, h, case["id"], "E/1")
    _ready_exhibit(client, h, case["id"], "E/2")
    examiner = make_account(engine, "ex-wait", Role.examiner)
    got: list[int | None] = []
    with Session(engine) as rescoring:
        # A rescore's task UPDATE holds every open task's row lock until it commits.
        queue.rescore(rescoring)
        rescoring.execute(text("UPDATE examination_task SET priority = priority + 1"))

        def claim() -> None:
            with Session(engine, expire_on_commit=False) as s:
                task = queue.claim_next(s, Context(actor=examiner), 600)
                s.commit()
                got.append(task.exhibit_id if task else None)

        claimer = threading.Thread(target=claim)
        claimer.start()
        claimer.join(1.0)
        assert claimer.is_alive(), "the claim should wait for the rescore, not pass every task by"
        rescoring.commit()
    claimer.join(30)
    assert got == [first]


@pytest.mark.parametrize(("by_device", "cleared"), [(False, False), (False, True), (True, False)])
def test_the_claims_generic_plan_walks_the_claim_order_index(
    engine: Engine, by_device: bool, cleared: bool
) -> None:
    """Claims run as prepared statements; after a few executions PostgreSQL reuses a generic
    plan rather than planning each one (planning was a quarter of a claim's server time). That
    plan must still walk the claim-order index (partial: queued tasks) for the first task, not
    sort every queued task: so the statement's constants must be literals, not parameters. (A
    few test rows make sorting them the cheaper plan, so the test turns sorting off: the plan
    must still be able to walk the index. With 'queued' as a parameter it cannot.)"""
    if engine.dialect.name != "postgresql":
        pytest.skip("prepared statements and generic plans are PostgreSQL's")
    from sqlalchemy.dialects import postgresql

    _, claim = queue._claim_statements("postgresql", by_device, cleared)
    compiled = claim.compile(dialect=postgresql.psycopg.dialect())
    names: list[str] = []

    def placeholder(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    sql = re.sub(r"%\((\w+)\)s", placeholder, str(compiled))
    sql = sql.replace("__[POSTCOMPILE_device_types]", "'laptop', 'phone'")  # an examiner's kinds
    given = {"examiner": "1", "now": "now()", "lease_until": "now()"}
    args = ", ".join(
        given.get(n) or (str(v) if isinstance(v := compiled.params[n], int) else f"'{v}'") for n in names
    )
    with engine.connect() as conn:
        conn.exec_driver_sql("SET plan_cache_mode TO force_generic_plan")
        conn.exec_driver_sql("SET enable_sort TO off")
        conn.exec_driver_sql("SET enable_bitmapscan TO off")
        conn.exec_driver_sql(f"PREPARE claim AS {sql}")
        plan = "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN EXECUTE claim({args})"))
        conn.rollback()
    assert "ix_task_claim_order" in plan, plan
    assert "Sort" not in plan, plan
