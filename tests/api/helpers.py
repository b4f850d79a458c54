"""Request bodies and probes used across API tests."""

from __future__ import annotations

import sqlite3
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine


def case_body(officer_id: int, ref: str = "CR/2026/0001", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "crime_reference": ref,
        "offence_category": "iioc",
        "officer_id": officer_id,
        "team": "North",
        "received_date": "2026-04-01",
        "children_in_household": 2,
        "suspect_access_children_home": True,
        "restriction_kind": "no_contact_own_children",
        "restriction_start": "2026-04-02",
        "bail_return_date": "2026-12-01",
    }
    body.update(extra)
    return body


def create_case(
    client: TestClient,
    headers: dict[str, str],
    officer_id: int,
    ref: str = "CR/2026/0001",
    **extra: Any,
) -> dict[str, Any]:
    response = client.post("/api/v1/cases", json=case_body(officer_id, ref, **extra), headers=headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def create_exhibit(
    client: TestClient,
    headers: dict[str, str],
    case_id: int,
    ref: str = "JB/1",
    device_type: str = "laptop",
) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/cases/{case_id}/exhibits",
        json={"reference": ref, "device_type": device_type, "make": "Dell", "serial": "SN1"},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def registered_exhibit(client: TestClient, headers: dict[str, str], officer_id: int) -> dict[str, Any]:
    """A laptop exhibit of a new case of ``officer_id``'s, registered by ``headers``' user."""
    case = create_case(client, headers, officer_id)
    return create_exhibit(client, headers, case["id"])


def no_transaction_held(engine: Engine) -> bool:
    """Whether another writer could write now: on SQLite, where every transaction holds the
    write lock, take it; on PostgreSQL, look for a session idle in a transaction."""
    if engine.dialect.name == "sqlite":
        probe = sqlite3.connect(str(engine.url.database), timeout=0.2, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:  # database is locked
            return False
        finally:
            probe.close()
    with engine.connect() as conn:
        idle = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    return idle == 0


def probing(real: Any, engine: Engine, probes: list[bool]) -> Any:
    """``real``, first noting in ``probes`` whether another writer could write at that moment."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        probes.append(no_transaction_held(engine))
        return real(*args, **kwargs)

    return wrapper
