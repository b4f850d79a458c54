"""Finding the real services the suite needs: skip off-CI when absent, fail under CI=true."""

from __future__ import annotations

import os
import socket
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get("TRIAGE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TRIAGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def need(service: str, host: str, port: int) -> None:
    """Skip when a service is down on a laptop; under CI a missing service is a failure."""
    if reachable(host, port):
        return
    if IN_CI:
        pytest.fail(f"{service} is not reachable on {host}:{port} under CI=true")
    pytest.skip(f"{service} not running on {host}:{port}")


def create_pg_database(admin_url: str = PG_ADMIN_URL, prefix: str = "triage_test") -> str:
    """A new, empty PostgreSQL database beside ``admin_url``'s; its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return str(make_url(admin_url).set(database=name).render_as_string(hide_password=False))


def drop_pg_database(url: str, admin_url: str = PG_ADMIN_URL) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()
