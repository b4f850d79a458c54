"""Registering cases, exhibits and images through the API, and the errors bad input gets."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tests.api.helpers import case_body, create_case, create_exhibit, registered_exhibit
from tests.conftest import PASSWORD, TESTDATA, Users
from tests.factories import row_id
from triage.models.accounts import WithdrawnToken
from triage.models.audit import AuditEvent
from triage.models.types import utcnow
from triage.settings import Settings

E01 = TESTDATA / "ext2.E01"
E01_MD5 = "196066add11fb71c4c49cf1bb50d6d24"


def _counts(client: TestClient, h: dict[str, str]) -> tuple[int, int]:
    cases = client.get("/api/v1/cases", headers=h).json()["total"]
    audit = client.get("/api/v1/audit", headers=h).json()["total"]
    return cases, audit


def test_manager_registers_case_exhibits_and_e01_and_moves_exhibit_through_states(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    h = headers["manager"]
    case = create_case(client, h, users.investigator.id)  # type: ignore[arg-type]
    first = create_exhibit(client, h, case["id"], "JB/1", "laptop")
    second = create_exhibit(client, h, case["id"], "JB/2", "phone")

    response = client.post(
        f"/api/v1/exhibits/{first['id']}/images", json={"path": str(E01), "start_triage": False}, headers=h
    )
    assert response.status_code == 201, response.text
    image = response.json()
    assert image["format"] == "ewf"
    assert image["acquisition_md5"] == E01_MD5  # read from inside the E01
    assert image["media_size_bytes"] == 4194304
    assert image["verification_state"] == "unverified"

    # Registering the image took the exhibit to "imaged"; walk the rest of the lifecycle.
    assert client.get(f"/api/v1/exhibits/{first['id']}", headers=h).json()["state"] == "imaged"
    for state in [
        "triage_queued",
        "triaging",
        "triaged",
        "awaiting_examination",
        "in_examination",
        "examined",
        "returned",
    ]:
        r = client.post(
            f"/api/v1/exhibits/{first['id']}/transitions",
            json={"to_state": state, "reason": "test"},
            headers=h,
        )
        assert r.status_code == 200, r.text
        assert r.json()["state"] == state

    back = client.get(f"/api/v1/cases/{case['id']}", headers=h).json()
    assert back["crime_reference"] == "CR/2026/0001"
    assert back["restriction_kind"] == "no_contact_own_children"
    listed = client.get(f"/api/v1/cases/{case['id']}/exhibits", headers=h).json()
    assert {e["reference"] for e in listed["items"]} == {"JB/1", "JB/2"}
    assert client.get(f"/api/v1/exhibits/{second['id']}", headers=h).json()["state"] == "registered"

    trail = client.get(f"/api/v1/exhibits/{first['id']}/custody", headers=h).json()
    assert trail[0]["action"] == "registered"
    assert [e["to_state"] for e in trail if e["action"] == "state_change"][-1] == "returned"
    assert all(e["actor_id"] == users.manager.id for e in trail)

    verify = client.get("/api/v1/audit/verify", headers=h).json()
    assert verify["ok"] is True and verify["events"] >= 12


def test_illegal_transition_is_409_and_changes_nothing(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    h = headers["manager"]
    exhibit = registered_exhibit(client, h, users.investigator.id)  # type: ignore[arg-type]
    before_trail = client.get(f"/api/v1/exhibits/{exhibit['id']}/custody", headers=h).json()
    _, audit_before = _counts(client, h)
    r = client.post(f"/api/v1/exhibits/{exhibit['id']}/transitions", json={"to_state": "examined"}, headers=h)
    assert r.status_code == 409
    assert "registered -> examined" in r.json()["detail"]
    assert client.get(f"/api/v1/exhibits/{exhibit['id']}", headers=h).json()["state"] == "registered"
    assert client.get(f"/api/v1/exhibits/{exhibit['id']}/custody", headers=h).json() == before_trail
    assert _counts(client, h)[1] == audit_before


def test_duplicate_references_are_409(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    h = headers["manager"]
    case = create_case(client, h, users.investigator.id)  # type: ignore[arg-type]
    r = client.post("/api/v1/cases", json=case_body(users.investigator.id), headers=h)  # type: ignore[arg-type]
    assert r.status_code == 409
    create_exhibit(client, h, case["id"], "JB/1")
    r = client.post(
        f"/api/v1/cases/{case['id']}/exhibits",
        json={"reference": "JB/1", "device_type": "phone"},
        headers=h,
    )
    assert r.status_code == 409
    # The same exhibit reference in another case is fine.
    other = create_case(client, h, users.investigator.id, "CR/2026/0002")  # type: ignore[arg-type]
    create_exhibit(client, h, other["id"], "JB/1")


def test_validation_errors_are_422_naming_the_field(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    h = headers["manager"]
    r = client.post(
        "/api/v1/cases",
        json=case_body(users.investigator.id, children_in_household=-1),  # type: ignore[arg-type]
        headers=h,
    )
    assert r.status_code == 422
    assert any("children_in_household" in e["loc"] for e in r.json()["detail"])
    r = client.post("/api/v1/cases", json=case_body(users.manager.id), headers=h)  # type: ignore[arg-type]
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "officer_id"
    r = client.post(
        "/api/v1/cases",
        json=case_body(users.investigator.id, restriction_end="2026-01-01"),  # type: ignore[arg-type]
        headers=h,
    )
    assert r.status_code == 422
    r = client.post("/api/v1/cases", content=b"{not json", headers={**h, "content-type": "application/json"})
    assert r.status_code == 422
    case = create_case(client, h, users.investigator.id)  # type: ignore[arg-type]
    r = client.patch(f"/api/v1/cases/{case['id']}", json={"restriction_kind": None}, headers=h)
    assert r.status_code == 422
    r = client.patch(f"/api/v1/cases/{case['id']}", json={"unknown_field": 1}, headers=h)
    assert r.status_code == 422
    assert client.get("/api/v1/cases", headers=h).json()["total"] == 1


def test_unknown_ids_are_404(client: TestClient, users: Users, headers: dict[str, dict[str, str]]) -> None:
    h = headers["manager"]
    for path in [
        "/api/v1/cases/999",
        "/api/v1/exhibits/999",
        "/api/v1/images/999",
        "/api/v1/exhibits/999/custody",
    ]:
        assert client.get(path, headers=h).status_code == 404


@pytest.mark.parametrize("number", [2**31, 10**30, 0, -1])
def test_ids_no_row_can_have_are_422_before_any_query(
    number: int, client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    """Numbers past the integer columns' range used to reach the driver, which cannot bind them
    (a 500). They, and ids below 1, are refused with 422 naming the parameter."""
    h, admin = headers["manager"], headers["admin"]
    _, audit_before = _counts(client, h)
    requests = [
        ("get", f"/api/v1/cases/{number}", None, h),
        ("get", f"/api/v1/exhibits/{number}/custody", None, h),
        ("get", f"/api/v1/runs/{number}/files", None, h),
        ("post", f"/api/v1/tasks/{number}/release", {"attempt": 1}, headers["examiner"]),
        ("post", f"/api/v1/accounts/{number}/disable", None, admin),
        ("post", f"/api/v1/vendors/{number}/approve", None, h),
        ("get", f"/api/v1/exhibits?case_id={number}", None, h),
        ("post", "/api/v1/cases", case_body(officer_id=number), h),
    ]
    if number > 0:  # a negative offset is refused too; a huge one could not be bound
        requests.append(("get", f"/api/v1/cases?offset={number}", None, h))
    for method, path, body, who in requests:
        r = client.request(method, path, json=body, headers=who)
        assert r.status_code == 422, (path, r.status_code, r.text)
        assert r.json()["detail"][0]["type"] in ("less_than_equal", "greater_than_equal"), r.text
    assert _counts(client, h) == (0, audit_before)


def test_any_text_is_stored_and_audited_as_given(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    """Percent signs (driver placeholders), quotes, backslashes and non-ASCII reach the audit
    chain intact: on PostgreSQL a '%' once made every audited change fail with a 500."""
    h = headers["manager"]
    case = create_case(client, h, users.investigator.id)  # type: ignore[arg-type]
    text = "100% 'Acme' \"x\" %s %(a)s %| \\ back\\slash é 🔒"
    r = client.post(
        f"/api/v1/cases/{case['id']}/exhibits",
        json={"reference": "JB/9", "device_type": "laptop", "make": text, "seized_from": text},
        headers=h,
    )
    assert r.status_code == 201, r.text
    exhibit = r.json()
    assert (exhibit["make"], exhibit["seized_from"]) == (text, text)
    r = client.post(
        f"/api/v1/exhibits/{exhibit['id']}/movements", json={"to_location": text, "reason": text}, headers=h
    )
    assert r.status_code == 200, r.text
    events = client.get("/api/v1/audit?object_type=exhibit", headers=headers["admin"]).json()["items"]
    assert [e["after"]["location"] for e in events if e["action"] == "exhibit.move"] == [text]
    assert client.get("/api/v1/audit/verify", headers=headers["admin"]).json()["ok"] is True


def test_text_the_database_cannot_hold_is_refused_and_changes_nothing(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    h = headers["manager"]
    case = create_case(client, h, users.investigator.id)  # type: ignore[arg-type]
    _, audit_before = _counts(client, h)
    r = client.post(
        f"/api/v1/cases/{case['id']}/exhibits",
        json={"reference": "JB/9", "device_type": "laptop", "make": "nul\u0000byte"},
        headers=h,
    )
    assert r.status_code == 422, r.text
    assert "NUL" in r.text
    assert client.get(f"/api/v1/cases/{case['id']}/exhibits", headers=h).json()["total"] == 0
    assert _counts(client, h)[1] == audit_before
    r = client.get("/api/v1/audit?action=a%00b", headers=headers["admin"])
    assert r.status_code == 422, r.text


def test_a_value_the_database_refuses_is_422_and_logged(app, client: TestClient, caplog) -> None:  # type: ignore[no-untyped-def]
    """The backstop behind the checks at the edge: a value only the database refuses (its
    DataError) answers 422 with the database's reason, not 500."""
    from sqlalchemy.exc import DataError

    def refused() -> None:
        raise DataError("UPDATE x", {}, Exception("value too long for type character varying(9)"))

    app.add_api_route("/api/v1/test-data-error", refused)
    r = client.get("/api/v1/test-data-error")
    assert r.status_code == 422
    assert r.json() == {
        "detail": "a value was refused by the database: value too long for type character varying(9)"
    }
    assert "database refused a value" in caplog.text


def test_a_fault_of_ours_is_a_clear_500_naming_the_request(app) -> None:  # type: ignore[no-untyped-def]
    """An unexpected exception: JSON for the API, a page for a page's address, each naming the
    request id (which the log carries) and nothing of the exception itself."""

    def fault() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/api/v1/test-fault", fault)
    app.add_api_route("/test-fault", fault)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/api/v1/test-fault", headers={"X-Request-ID": "req-api-1"})
        assert r.status_code == 500 and r.headers["content-type"] == "application/json"
        assert "request id req-api-1" in r.json()["detail"] and "secret" not in r.text
        assert r.headers["x-request-id"] == "req-api-1"
        assert r.headers["cache-control"] == "no-store" and r.headers["x-content-type-options"] == "nosniff"
        r = client.get("/test-fault", headers={"X-Request-ID": "req-page-1"})
        assert r.status_code == 500 and "Something went wrong" in r.text and "req-page-1" in r.text
        assert "secret" not in r.text
        # Sent from outside the app's middleware, yet with the headers every page carries.
        assert (
            r.headers["x-frame-options"] == "DENY"
            and "frame-ancestors 'none'" in r.headers["content-security-policy"]
        )


def test_paths_the_system_cannot_look_up_are_400(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    h = headers["manager"]
    exhibit = registered_exhibit(client, h, users.investigator.id)  # type: ignore[arg-type]
    for path in ["0" * 4000, "a/" * 1500 + "b.dd"]:
        r = client.post(f"/api/v1/exhibits/{exhibit['id']}/images", json={"path": path}, headers=h)
        assert r.status_code == 400, (path[:20], r.status_code, r.text[:200])
        assert len(r.json()["detail"]) < 400
    r = client.post(f"/api/v1/exhibits/{exhibit['id']}/images", json={"path": "in\x00.dd"}, headers=h)
    assert r.status_code == 422 and "NUL" in r.text  # refused with the body, before any lookup
    assert client.get(f"/api/v1/exhibits/{exhibit['id']}/images", headers=h).json() == []


def test_image_paths_outside_roots_symlink_escapes_and_missing_files_are_400_and_store_nothing(
    client: TestClient,
    users: Users,
    headers: dict[str, dict[str, str]],
    evidence_root: Path,
    tmp_path: Path,
) -> None:
    h = headers["manager"]
    exhibit = registered_exhibit(client, h, users.investigator.id)  # type: ignore[arg-type]
    outside = tmp_path / "outside.dd"
    outside.write_bytes(b"\0" * 4096)
    (evidence_root / "escape.dd").symlink_to(outside)
    (evidence_root / "inside.E01").symlink_to(E01)  # a link to another root is allowed
    _, audit_before = _counts(client, h)
    for path in [
        str(outside),
        "escape.dd",
        str(evidence_root / "escape.dd"),
        str(evidence_root / "missing.dd"),
        "../outside.dd",
        "/etc/passwd",
        str(evidence_root),
    ]:
        r = client.post(f"/api/v1/exhibits/{exhibit['id']}/images", json={"path": path}, headers=h)
        assert r.status_code == 400, (path, r.text)
    assert client.get(f"/api/v1/exhibits/{exhibit['id']}/images", headers=h).json() == []
    assert _counts(client, h)[1] == audit_before
    assert client.get(f"/api/v1/exhibits/{exhibit['id']}", headers=h).json()["state"] == "registered"
    r = client.post(f"/api/v1/exhibits/{exhibit['id']}/images", json={"path": "inside.E01"}, headers=h)
    assert r.status_code == 201, r.text


def test_a_virtual_disk_is_refused_saying_what_it_is(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]], evidence_root: Path
) -> None:
    h = headers["manager"]
    exhibit = registered_exhibit(client, h, users.investigator.id)  # type: ignore[arg-type]
    (evidence_root / "laptop.vhdx").write_bytes(b"vhdxfile" + b"\0" * 65536)
    r = client.post(f"/api/v1/exhibits/{exhibit['id']}/images", json={"path": "laptop.vhdx"}, headers=h)
    assert r.status_code == 400 and "a Hyper-V virtual disk (VHDX)" in r.json()["detail"]
    assert "qemu-img convert -O raw" in r.json()["detail"]
    assert client.get(f"/api/v1/exhibits/{exhibit['id']}/images", headers=h).json() == []


def test_an_image_already_of_another_exhibit_is_refused_naming_it(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    # The same file given for a second exhibit (a path mistyped) was taken: one device's
    # files, hits and findings would have been put on another exhibit, of another case.
    h = headers["manager"]
    first = create_exhibit(client, h, create_case(client, h, row_id(users.investigator), "CR/A")["id"], "A/1")
    other = create_exhibit(client, h, create_case(client, h, row_id(users.investigator), "CR/B")["id"], "B/1")
    assert (
        client.post(f"/api/v1/exhibits/{first['id']}/images", json={"path": str(E01)}, headers=h).status_code
        == 201
    )
    _, audit_before = _counts(client, h)
    r = client.post(f"/api/v1/exhibits/{other['id']}/images", json={"path": str(E01)}, headers=h)
    assert r.status_code == 409 and "already the image of exhibit A/1 (case CR/A)" in r.json()["detail"]
    again = client.post(f"/api/v1/exhibits/{first['id']}/images", json={"path": str(E01)}, headers=h)
    assert again.status_code == 409 and "already registered for this exhibit" in again.json()["detail"]
    assert client.get(f"/api/v1/exhibits/{other['id']}/images", headers=h).json() == []
    assert client.get(f"/api/v1/exhibits/{other['id']}", headers=h).json()["state"] == "registered"
    assert _counts(client, h)[1] == audit_before


def test_declared_hash_contradicting_the_e01_is_refused(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    h = headers["manager"]
    exhibit = registered_exhibit(client, h, users.investigator.id)  # type: ignore[arg-type]
    r = client.post(
        f"/api/v1/exhibits/{exhibit['id']}/images",
        json={"path": str(E01), "acquisition_md5": "0" * 32},
        headers=h,
    )
    assert r.status_code == 400 and "stored inside the image" in r.json()["detail"]


def test_split_raw_registration_lists_segments(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    h = headers["examiner"]
    case = create_case(client, headers["manager"], users.investigator.id)  # type: ignore[arg-type]
    exhibit = create_exhibit(client, h, case["id"])
    r = client.post(
        f"/api/v1/exhibits/{exhibit['id']}/images",
        json={"path": str(TESTDATA / "ext2.splitraw.000"), "acquisition_md5": E01_MD5.upper()},
        headers=h,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["format"] == "split_raw" and len(body["segments"]) == 2
    assert body["size_bytes"] == 4194304 and body["acquisition_md5"] == E01_MD5


def test_bodies_over_one_mebibyte_are_413(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    h = headers["manager"]
    big = case_body(users.investigator.id, safeguarding_notes="x" * (1024 * 1024 + 10))  # type: ignore[arg-type]
    r = client.post("/api/v1/cases", json=big, headers=h)
    assert r.status_code == 413
    assert client.get("/api/v1/cases", headers=h).json()["total"] == 0

    def chunks():  # no Content-Length: counted while streaming
        for _ in range(20):
            yield b"x" * 65536 * 2

    r = client.post("/api/v1/cases", content=chunks(), headers={**h, "content-type": "application/json"})
    assert r.status_code == 413


def test_page_size_over_the_cap_is_clamped(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    h = headers["manager"]
    for n in range(3):
        create_case(client, h, users.investigator.id, f"CR/{n}")  # type: ignore[arg-type]
    body = client.get("/api/v1/cases?limit=100000", headers=h).json()
    assert body["limit"] == 200 and body["total"] == 3
    body = client.get("/api/v1/cases?limit=2&offset=1", headers=h).json()
    assert [c["crime_reference"] for c in body["items"]] == ["CR/1", "CR/2"]


def test_wrong_or_expired_tokens_are_401(client: TestClient, users: Users, app) -> None:  # type: ignore[no-untyped-def]
    import jwt

    assert client.get("/api/v1/cases").status_code == 401
    assert client.get("/api/v1/cases", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    key = app.state.settings.signing_key()
    expired = jwt.encode({"sub": str(users.manager.id), "iat": 0, "exp": 1}, key, algorithm="HS256")
    r = client.get("/api/v1/cases", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401 and r.json()["detail"] == "token expired"
    unsigned = jwt.encode({"sub": str(users.manager.id), "iat": 0, "exp": 2**40}, None, algorithm="none")
    assert client.get("/api/v1/cases", headers={"Authorization": f"Bearer {unsigned}"}).status_code == 401
    forged = jwt.encode({"sub": str(users.admin.id), "iat": 0, "exp": 2**40}, "x" * 40, algorithm="HS256")
    assert client.get("/api/v1/cases", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    no_id = jwt.encode({"sub": str(users.manager.id), "iat": 0, "exp": 2**40}, key, algorithm="HS256")
    r = client.get("/api/v1/cases", headers={"Authorization": f"Bearer {no_id}"})  # could not be signed out
    assert r.status_code == 401 and r.json()["detail"] == "invalid token"
    r = client.post("/api/v1/auth/token", data={"username": "manager", "password": "wrong-password"})
    assert r.status_code == 401


def test_disabled_account_cannot_log_in_or_use_its_token(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    r = client.post(f"/api/v1/accounts/{users.examiner.id}/disable", headers=headers["admin"])
    assert r.status_code == 200 and r.json()["is_active"] is False
    assert client.get("/api/v1/cases", headers=headers["examiner"]).status_code == 401
    r = client.post("/api/v1/auth/token", data={"username": "examiner", "password": "correct-horse-battery"})
    assert r.status_code == 401
    # Still listed: accounts are never deleted.
    listed = client.get("/api/v1/accounts", headers=headers["admin"]).json()["items"]
    assert "examiner" in [a["username"] for a in listed]


def test_tokens_issued_before_a_password_change_or_a_disable_stop_working(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]], settings: Settings
) -> None:
    # An admin who reset the password of an account thought compromised, or disabled it and
    # enabled it again, left every token issued before valid for its lifetime (8 hours by
    # default), the sign-in cookie of a browser left signed in among them.
    from api.main import create_app
    from tests.conftest import login

    admin, before = headers["admin"], headers["examiner"]
    browser = TestClient(create_app(settings))
    assert browser.post("/login", data={"username": "examiner", "password": PASSWORD}).status_code == 200
    assert browser.get("/work", follow_redirects=False).status_code == 200
    r = client.patch(f"/api/v1/accounts/{users.examiner.id}", json={"password": "x" * 16}, headers=admin)
    assert r.status_code == 200, r.text
    r = client.get("/api/v1/auth/me", headers=before)
    assert r.status_code == 401 and "token withdrawn" in r.json()["detail"]
    assert browser.get("/work", follow_redirects=False).headers["location"] == "/login"
    assert client.get("/api/v1/auth/me", headers=admin).status_code == 200  # only that account's
    r = client.post("/api/v1/auth/token", data={"username": "examiner", "password": "x" * 16})
    after = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert client.get("/api/v1/auth/me", headers=after).status_code == 200
    for action in ("disable", "enable"):
        assert client.post(f"/api/v1/accounts/{users.examiner.id}/{action}", headers=admin).status_code == 200
    assert client.get("/api/v1/auth/me", headers=after).status_code == 401
    client.patch(f"/api/v1/accounts/{users.examiner.id}", json={"password": PASSWORD}, headers=admin)
    assert client.get("/api/v1/auth/me", headers=login(client, "examiner")).status_code == 200


def test_logging_out_withdraws_that_token_only(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]], engine: Engine
) -> None:
    # The API had no way to end a token before its expiry: a script's token that leaked stayed
    # good for eight hours.
    from tests.conftest import login

    mine, other = headers["examiner"], login(client, "examiner")
    assert client.post("/api/v1/auth/logout").status_code == 401  # no token, nothing to end
    assert client.post("/api/v1/auth/logout", headers=mine).status_code == 204
    r = client.get("/api/v1/auth/me", headers=mine)
    assert r.status_code == 401 and r.json()["detail"] == "token withdrawn (signed out)"
    assert client.post("/api/v1/auth/logout", headers=mine).status_code == 401  # ended once
    assert client.get("/api/v1/auth/me", headers=other).status_code == 200  # the account's others live
    with Session(engine) as s:
        events = s.exec(select(AuditEvent).where(AuditEvent.action == "auth.logout")).all()
        assert [(e.actor_name, e.after) for e in events] == [
            ("examiner", {"via": "api", "client": "testclient"})
        ]
        assert len(s.exec(select(WithdrawnToken)).all()) == 1


def test_two_sign_outs_of_one_token_at_once_both_end_well(
    client: TestClient, headers: dict[str, dict[str, str]], engine: Engine, settings: Settings
) -> None:
    # A double click on "Sign out": on PostgreSQL both requests got past the token check and
    # the second insert of its id failed (an IntegrityError: an error page, the cookie kept).
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite takes the write lock at the first statement: the two run one after the other")
    import threading

    from triage import accounts
    from triage.context import Context

    token = headers["examiner"]["Authorization"].removeprefix("Bearer ")
    failed: list[Exception] = []
    with Session(engine) as first, Session(engine) as second:
        one = accounts.account_from_token(first, settings, token)
        other = accounts.account_from_token(second, settings, token)
        accounts.sign_out(first, settings, Context(actor=one, request_id="first"), token, "c", "pages")

        def sign_out_again() -> None:
            try:
                accounts.sign_out(
                    second, settings, Context(actor=other, request_id="second"), token, "c", "pages"
                )
                second.commit()
            except Exception as exc:  # noqa: BLE001 - reported below
                failed.append(exc)

        again = threading.Thread(target=sign_out_again)
        again.start()
        again.join(1.0)  # it waits on the first one's row
        first.commit()
        again.join(30)
    assert not again.is_alive() and failed == []
    r = client.get("/api/v1/auth/me", headers=headers["examiner"])
    assert r.status_code == 401 and r.json()["detail"] == "token withdrawn (signed out)"


def test_a_withdrawn_token_is_forgotten_once_it_has_expired(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]], engine: Engine
) -> None:
    # Kept only while it could still be used: the next sign-out clears those past their expiry.
    examiner, now = users.examiner.id or 0, utcnow()
    with Session(engine) as s:
        s.add(WithdrawnToken(jti="old", account_id=examiner, expires_at=now - timedelta(seconds=1)))
        s.add(WithdrawnToken(jti="live", account_id=examiner, expires_at=now + timedelta(hours=1)))
        s.commit()
    assert client.post("/api/v1/auth/logout", headers=headers["manager"]).status_code == 204
    with Session(engine) as s:
        kept = {t.jti for t in s.exec(select(WithdrawnToken)).all()}
    assert "old" not in kept and "live" in kept and len(kept) == 2  # and the manager's


def test_failed_sign_ins_are_counted_across_api_workers_and_restarts(
    client: TestClient, users: Users, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The count was kept in each API worker process's memory: with the three workers
    # production runs, a password could be tried thirty times in the window, and as many
    # again after every restart; each username tried stayed in memory for good.
    from api.main import create_app
    from tests.conftest import login
    from triage import accounts, audit
    from triage.models.types import utcnow

    later = [timedelta(0)]  # how far the clock has moved on
    for module in (accounts, audit):
        monkeypatch.setattr(module, "utcnow", lambda: utcnow() + later[0])

    def sign_in(to: TestClient, password: str = "wrong-password") -> int:
        return to.post("/api/v1/auth/token", data={"username": "examiner", "password": password}).status_code

    other_worker = TestClient(create_app(settings))
    for attempt in range(10):
        assert sign_in(client if attempt % 2 else other_worker) == 401
    assert sign_in(client) == 429 and sign_in(other_worker) == 429
    assert sign_in(client, PASSWORD) == 429  # the right password too, for now
    admin = login(client, "admin")
    failed = client.get("/api/v1/audit?object_type=username&object_id=examiner", headers=admin).json()
    assert [(e["action"], e["after"]["client"]) for e in failed["items"]] == [
        ("auth.login_failed", "testclient")
    ] * 10
    assert sign_in(TestClient(create_app(settings))) == 429  # after a restart
    elsewhere = TestClient(create_app(settings), client=("192.0.2.7", 50000))
    assert sign_in(elsewhere, PASSWORD) == 200  # from another client: not refused
    later[0] = timedelta(minutes=16)
    assert sign_in(client, PASSWORD) == 200  # the window passed
    for _ in range(9):
        assert sign_in(client) == 401
    assert sign_in(client, PASSWORD) == 200  # which starts the count again
    for _ in range(9):
        assert sign_in(client) == 401
    assert sign_in(client, PASSWORD) == 200


def test_request_id_is_echoed_and_recorded(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    h = {**headers["manager"], "X-Request-ID": "req-abc-123"}
    case = create_case(client, h, users.investigator.id)  # type: ignore[arg-type]
    events = client.get(f"/api/v1/audit?object_type=case&object_id={case['id']}", headers=h).json()["items"]
    assert events[0]["request_id"] == "req-abc-123"
    assert events[0]["actor_name"] == "manager"
    assert events[0]["after"]["crime_reference"] == "CR/2026/0001"


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"
    assert client.get("/docs").status_code == 200


def test_every_request_gives_its_database_connection_back(  # type: ignore[no-untyped-def]
    app, client: TestClient, users: Users, headers: dict[str, dict[str, str]], settings
) -> None:
    """A read (its transaction rolled back in the thread pool), a write, a refused write and a
    page all leave no connection checked out, and the pool is the size the settings give."""
    pool = app.state.engine.pool
    assert pool.size() == settings.database_pool_size
    h = headers["manager"]
    case = create_case(client, h, users.investigator.id)  # type: ignore[arg-type]
    assert pool.checkedout() == 0
    assert client.get(f"/api/v1/cases/{case['id']}", headers=h).status_code == 200
    assert pool.checkedout() == 0
    r = client.post("/api/v1/cases", json=case_body(users.investigator.id), headers=h)  # type: ignore[arg-type]
    assert r.status_code == 409
    assert pool.checkedout() == 0
    assert client.get("/api/v1/cases/999999", headers=h).status_code == 404
    assert client.get("/", headers=h).status_code in (200, 303)
    assert pool.checkedout() == 0


def test_a_database_that_does_not_answer_is_503_with_retry_after(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Not a bare 500: the API says so in JSON, a page says so as a page, both ask the client to
    try again, and the operator finds the database's reason in the log."""
    from api.main import create_app
    from tests.services import free_port
    from triage.settings import Environment

    nobody = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"  # nothing listens
    app = create_app(
        Settings(
            environment=Environment.test,
            database_url=nobody,
            secret_key=SecretStr("test-secret-key-which-is-long-enough-0123456789"),
            artifact_dir=tmp_path,
        )
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post("/api/v1/auth/token", data={"username": "a", "password": "b" * 12})
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert "try again" in r.json()["detail"]
        r = client.post("/login", data={"username": "a", "password": "b" * 12})
        assert r.status_code == 503 and "Not available just now" in r.text and "try again" in r.text
        assert client.get("/readyz").status_code == 503
    assert any("database unavailable" in m for m in caplog.messages)
    app.state.engine.dispose()
