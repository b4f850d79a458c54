"""Hostile values in every field of every page form, and in the pages' path and query
parameters: an answer of any kind but a server error. (The API's operations get the same from
tests/api/test_fuzz.py; the pages are not in its OpenAPI document.) Found: an upload whose file
name is longer than a file name may be."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi.testclient import TestClient

from tests.api.helpers import case_body
from tests.conftest import PASSWORD, Users, login

HOSTILE = [
    "",
    "-1",
    "2147483648",
    "9" * 40,
    "1e309",
    "nan",
    "%s %(x)s %|",
    "nul\x00byte",
    "é🔒" * 60,
    "x" * 5000,
    "'; DROP TABLE case;--",
    "<script>alert(1)</script>",
    "0001-01-01T00:00",
    "9999-12-31T23:59:59+14:00",
]


def _server_errors(client: TestClient, requests: list[tuple[str, str, dict[str, object]]]) -> list[str]:
    errors = []
    for method, path, kwargs in requests:
        r = client.request(method, path, **kwargs)  # type: ignore[arg-type]
        if r.status_code >= 500:
            errors.append(f"{method} {path[:60]} {str(kwargs)[:120]}: {r.status_code}")
    return errors


def test_no_page_input_gets_a_server_error(client: TestClient, users: Users) -> None:
    manager = login(client, "manager")
    case = client.post("/api/v1/cases", json=case_body(users.investigator.id or 0), headers=manager)
    assert case.status_code == 201, case.text
    case_id = case.json()["id"]
    requests: list[tuple[str, str, dict[str, object]]] = []
    for value in HOSTILE:
        good = {"kind": "boost", "reason": "a good reason", "points": "5", "expires_at": "2099-01-01T00:00"}
        for field in [*good, "confirm"]:
            requests.append(("POST", f"/queue/{case_id}/override", {"data": {**good, field: value}}))
        for prefix in [
            "/queue?offset=",
            "/backlog?extra=",
            "/backlog?target=",
            "/my/cases/",
            "/work/tasks/",
            "/runs/",
        ]:
            requests.append(("GET", prefix + quote(value, safe=""), {}))
        sending = {"exhibit_id": "1", "vendor_id": "1", "target": "2099-01-01"}
        for field in sending:
            requests.append(("POST", "/backlog/outsource", {"data": {**sending, field: value}}))
        for field in ("report_reference", "examined"):
            returning = {"report_reference": "R-1", "examined": "yes", field: value}
            requests.append(("POST", "/vendors/outsourcings/1/return", {"data": returning}))
    client.post("/login", data={"username": "manager", "password": PASSWORD})
    errors = _server_errors(client, requests)

    requests = []
    for value in HOSTILE:
        account = {
            "username": "new",
            "full_name": "N U",
            "role": "examiner",
            "password": "long-pw-123456",
            "device_types": "phone",
            "iioc_cleared": "yes",
        }
        for field in account:
            requests.append(("POST", "/admin/accounts", {"data": {**account, field: value}}))
        requests.append(("POST", "/admin/accounts/1/" + quote(value, safe=""), {}))
        requests.append(("POST", "/admin/accounts/" + (quote(value, safe="") or "x") + "/clear", {}))
        requests.append(("POST", "/admin/sets/hashsets/1/" + quote(value, safe=""), {}))
        requests.append(("POST", f"/admin/sets/{quote(value, safe='') or 'x'}/1/activate", {}))
        upload = {"file": (value or "x", b"d41d8cd98f00b204e9800998ecf8427e\n")}
        form = {"files": upload, "data": {"hashset_kind": value}}
        requests.append(("POST", "/admin/reference/hashsets", form))
    client.post("/logout")
    client.post("/login", data={"username": "admin", "password": PASSWORD})
    errors += _server_errors(client, requests)

    requests = [("POST", "/work/claim", {})]
    for value in HOSTILE:
        for action in ["complete", "release", quote(value, safe="") or "x"]:
            requests.append(("POST", f"/work/tasks/1/{action}", {"data": {"outcome": value}}))
        requests.append(("POST", "/login", {"data": {"username": value, "password": value}}))
    client.post("/logout")
    client.post("/login", data={"username": "examiner", "password": PASSWORD})
    errors += _server_errors(client, requests)
    assert not errors, "\n".join(errors)


def _html(response: Any) -> str:
    kind = response.headers["content-type"]
    assert kind.startswith("text/html"), (response.status_code, response.text[:200])
    return str(response.text)


def test_page_errors_are_pages_and_api_errors_stay_json(client: TestClient, users: Users) -> None:
    """A person who mistypes a page's address (a bad offset, an id that is not a number, a page
    that does not exist) gets a page saying what is wrong, with the way home; API clients keep
    their JSON. A page's message is shown once."""
    client.post("/login", data={"username": "manager", "password": PASSWORD})
    r = client.get("/queue?offset=-1")
    page = _html(r)
    assert r.status_code == 422
    assert "<h1>Cannot do that</h1>" in page and "offset" in page and "greater than or equal to 0" in page
    assert page.count("greater than or equal to 0") == 1
    assert 'href="/"' in page  # the way home

    r = client.get("/my/cases/not-a-number")
    assert r.status_code == 422 and "<h1>Cannot do that</h1>" in _html(r)
    r = client.get("/no/such/page")  # signed in: the page keeps the way around (it lost it)
    assert r.status_code == 404 and "<h1>Not found</h1>" in _html(r) and "Sign out" in _html(r)
    r = client.post("/queue")  # a page address with the wrong method
    assert r.status_code == 405 and "<h1>Cannot do that</h1>" in _html(r) and "Sign out" in _html(r)
    assert r.headers["allow"] == "GET"

    client.post("/logout")
    client.post("/login", data={"username": "ioc", "password": PASSWORD})
    r = client.get("/my/cases/999999")  # a domain error raised by the page itself
    page = _html(r)
    assert r.status_code == 404 and "<h1>Not found</h1>" in page and page.count("999999") == 1, page
    client.post("/logout")
    r = client.get("/no/such/page")  # signed out: still a page, its way home the sign-in page
    assert r.status_code == 404 and 'href="/"' in _html(r) and "Sign out" not in _html(r)
    client.cookies.set("triage_session", "forged")
    r = client.get("/no/such/page")  # a cookie that is no session: as signed out
    assert r.status_code == 404 and "Sign out" not in _html(r)
    client.cookies.clear()
    # PostgreSQL refuses a NUL in the name looked up (the DataError backstop); SQLite finds no one
    r = client.post("/login", data={"username": "nul\x00byte", "password": "x"})
    assert r.status_code in (401, 422) and "<h1>" in _html(r)

    # Refused before routing (the middleware): a page too
    r = client.get("/queue?offset=%00")
    assert r.status_code == 422 and "NUL" in _html(r)
    r = client.post("/login", content=b"username=" + b"x" * (2 * 1024 * 1024))
    assert r.status_code == 413 and "larger than" in _html(r)

    api = login(client, "manager")
    r = client.get("/api/v1/cases?offset=%00", headers=api)
    assert r.status_code == 422 and "NUL" in r.json()["detail"]
    r = client.post("/api/v1/cases", content=b"{" + b" " * (2 * 1024 * 1024) + b"}", headers=api)
    assert r.status_code == 413 and "larger than" in r.json()["detail"]
    for path, status in [("/api/v1/cases/not-a-number", 422), ("/api/v1/no-such-thing", 404)]:
        r = client.get(path, headers=api)
        assert r.status_code == status and r.headers["content-type"] == "application/json", r.text
        assert "detail" in r.json()
    r = client.get("/readyz/no-such-check")
    assert r.status_code == 404 and r.headers["content-type"] == "application/json"
    # What a page's script reads answers its errors in JSON too.
    client.post("/login", data={"username": "manager", "password": PASSWORD})
    r = client.get("/runs/not-a-number/progress.json")
    assert r.status_code == 422 and r.headers["content-type"] == "application/json" and r.json()["detail"]


def test_pages_carry_the_browser_security_headers_and_the_api_docs_keep_working(
    client: TestClient,
) -> None:
    """Pages may not be framed or load anything but this site's own; every answer forbids
    content-type guessing, and all but the static files being kept in a cache; the API's docs
    page (its scripts come from elsewhere) and JSON answers carry no page policy."""
    for path in ("/login", "/no/such/page"):
        r = client.get(path)
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path
        assert r.headers["x-frame-options"] == "DENY" and r.headers["referrer-policy"] == "same-origin"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["cache-control"] == "no-store"
    for path in ("/docs", "/healthz", "/api/v1/cases"):
        r = client.get(path)
        assert "content-security-policy" not in r.headers and "x-frame-options" not in r.headers, path
        assert r.headers["x-content-type-options"] == "nosniff"
    # Case data is kept in no cache; the stylesheet may be.
    assert client.get("/api/v1/cases").headers["cache-control"] == "no-store"
    r = client.get("/static/app.css")
    assert r.status_code == 200 and "no-store" not in r.headers.get("cache-control", "")
