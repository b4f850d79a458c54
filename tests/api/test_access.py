"""Object-level and role-level access, checked over every route the OpenAPI schema lists."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from tests.api.helpers import create_case, create_exhibit
from tests.conftest import TESTDATA, Users

# Every path parameter naming a case-scoped object; a new one must be added here (the test
# below fails on an unknown parameter so that no new endpoint escapes the check).
CASE_SCOPED_PARAMS = {
    "case_id",
    "exhibit_id",
    "image_id",
    "run_id",
    "task_id",
    "override_id",
    "outsourcing_id",
}
NOT_CASE_SCOPED_PARAMS = {"account_id", "hashset_id", "ruleset_id", "vendor_id", "financial_year"}


def _case_with_objects(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> dict[str, Any]:
    h = headers["manager"]
    case = create_case(client, h, users.investigator.id)  # type: ignore[arg-type]
    exhibit = create_exhibit(client, h, case["id"])
    image = client.post(
        f"/api/v1/exhibits/{exhibit['id']}/images",
        json={"path": str(TESTDATA / "ext2.E01")},
        headers=h,
    ).json()
    run = client.get(f"/api/v1/exhibits/{exhibit['id']}/runs", headers=h).json()[0]
    other = create_exhibit(client, h, case["id"], "JB/9")
    client.post(
        f"/api/v1/exhibits/{other['id']}/transitions", json={"to_state": "awaiting_examination"}, headers=h
    )
    task = client.get("/api/v1/queue", headers=h).json()["items"][0]["task"]
    expires = "2099-01-01T00:00:00Z"
    override = client.post(
        f"/api/v1/cases/{case['id']}/overrides",
        headers=h,
        json={"kind": "hold", "reason": "test hold", "expires_at": expires},
    ).json()
    return {
        "case_id": case["id"],
        "exhibit_id": exhibit["id"],
        "image_id": image["id"],
        "run_id": run["id"],
        "task_id": task["id"],
        "override_id": override["id"],
    }


def _operations(client: TestClient) -> list[tuple[str, str, set[str]]]:
    schema = client.get("/openapi.json").json()
    ops = []
    for path, item in schema["paths"].items():
        for method in item:
            params = set(re.findall(r"{(\w+)}", path))
            ops.append((method.upper(), path, params))
    return ops


def test_every_case_scoped_endpoint_answers_404_to_an_investigator_of_another_case(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    ids = _case_with_objects(client, users, headers)
    outsider = headers["other_investigator"]
    checked = 0
    for method, path, params in _operations(client):
        unknown = params - CASE_SCOPED_PARAMS - NOT_CASE_SCOPED_PARAMS
        assert not unknown, f"{path}: classify path parameter(s) {unknown} in this test"
        if not params & CASE_SCOPED_PARAMS:
            continue
        url = path.format(**{p: ids.get(p, 1) for p in params})
        response = client.request(method, url, json={}, headers=outsider)
        assert response.status_code == 404, (method, path, response.status_code, response.text)
        checked += 1
    assert checked >= 12
    # And the case's own officer does see it.
    own = headers["investigator"]
    assert client.get(f"/api/v1/cases/{ids['case_id']}", headers=own).status_code == 200
    assert client.get(f"/api/v1/exhibits/{ids['exhibit_id']}", headers=own).status_code == 200


def test_listings_show_investigators_only_their_own_cases(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    ids = _case_with_objects(client, users, headers)
    mine = client.get("/api/v1/cases", headers=headers["investigator"]).json()
    theirs = client.get("/api/v1/cases", headers=headers["other_investigator"]).json()
    assert [c["id"] for c in mine["items"]] == [ids["case_id"]]
    assert theirs["total"] == 0 and theirs["items"] == []
    assert client.get("/api/v1/exhibits", headers=headers["other_investigator"]).json()["total"] == 0
    r = client.get(f"/api/v1/exhibits?case_id={ids['case_id']}", headers=headers["other_investigator"])
    assert r.status_code == 404


def test_an_investigator_added_to_a_case_sees_it(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    ids = _case_with_objects(client, users, headers)
    path = f"/api/v1/cases/{ids['case_id']}"
    assert client.get(path, headers=headers["other_investigator"]).status_code == 404
    r = client.post(
        f"{path}/members",
        json={"account_id": users.other_investigator.id},
        headers=headers["manager"],
    )
    assert r.status_code == 201, r.text
    assert client.get(path, headers=headers["other_investigator"]).status_code == 200


def test_investigators_cannot_change_anything_even_on_their_own_case(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    ids = _case_with_objects(client, users, headers)
    own = headers["investigator"]
    attempts = [
        (
            "POST",
            f"/api/v1/exhibits/{ids['exhibit_id']}/transitions",
            {"to_state": "triage_queued"},
        ),
        (
            "POST",
            f"/api/v1/exhibits/{ids['exhibit_id']}/movements",
            {"to_location": "x", "reason": "y"},
        ),
        ("PATCH", f"/api/v1/exhibits/{ids['exhibit_id']}", {"make": "HP"}),
        ("PATCH", f"/api/v1/cases/{ids['case_id']}", {"team": "South"}),
        (
            "POST",
            f"/api/v1/cases/{ids['case_id']}/exhibits",
            {"reference": "X/9", "device_type": "phone"},
        ),
        (
            "POST",
            "/api/v1/cases",
            {
                "crime_reference": "Z",
                "offence_category": "fraud",
                "officer_id": users.investigator.id,
                "received_date": "2026-01-01",
            },
        ),
    ]
    for method, url, body in attempts:
        assert client.request(method, url, json=body, headers=own).status_code == 403, url
    assert client.get(f"/api/v1/exhibits/{ids['exhibit_id']}", headers=own).json()["state"] == "triage_queued"
    assert client.post(f"/api/v1/runs/{ids['run_id']}/cancel", headers=own).status_code == 403
    assert client.post(f"/api/v1/exhibits/{ids['exhibit_id']}/runs", json={}, headers=own).status_code == 403


def test_only_admins_manage_accounts(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    body = {"username": "newbie", "password": "a-long-enough-password", "role": "examiner"}
    for role in ("manager", "examiner", "investigator"):
        assert client.post("/api/v1/accounts", json=body, headers=headers[role]).status_code == 403
        assert client.get("/api/v1/accounts", headers=headers[role]).status_code == 403
        assert (
            client.post(f"/api/v1/accounts/{users.examiner.id}/disable", headers=headers[role]).status_code
            == 403
        )
    r = client.post("/api/v1/accounts", json=body, headers=headers["admin"])
    assert r.status_code == 201 and "password" not in r.json() and "password_hash" not in r.json()
    assert client.post("/api/v1/accounts", json=body, headers=headers["admin"]).status_code == 409


def test_audit_log_is_for_admins_and_managers_only(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    for role in ("examiner", "investigator"):
        assert client.get("/api/v1/audit", headers=headers[role]).status_code == 403
    assert client.get("/api/v1/audit", headers=headers["manager"]).status_code == 200
    schema = client.get("/openapi.json").json()
    assert set(schema["paths"]["/api/v1/audit"]) == {"get"}  # no write, update or delete


def test_audit_events_never_carry_password_hashes(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    events = client.get("/api/v1/audit?object_type=account&limit=200", headers=headers["admin"]).json()
    assert events["total"] >= 5
    assert "argon2" not in str(events)
