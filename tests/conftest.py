"""Shared fixtures: a migrated database per backend, an app, accounts and logged-in clients."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel
from typer.testing import CliRunner, Result

from api.main import create_app
from tests.services import create_pg_database, drop_pg_database, need
from triage import accounts, migrate
from triage.cli import app as cli
from triage.context import system_context
from triage.db import make_engine
from triage.models.accounts import Account, Role
from triage.settings import Environment, Settings, get_settings

ROOT = Path(__file__).resolve().parents[1]  # the repository: ../shared lies beside it
TESTDATA = (ROOT / ".." / "shared" / "testdata" / "dfvfs").resolve()
PASSWORD = "correct-horse-battery"  # noqa: S105


@pytest.fixture(autouse=True)
def _fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 at its production cost makes every fixture account slow; the algorithm is the
    same, only its cost parameters are lowered for tests."""
    from argon2 import PasswordHasher

    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated to head, once per backend for the whole session."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'triage.db'}"
        migrate.upgrade(url)
        yield url
        return
    need("PostgreSQL", "127.0.0.1", 5432)
    url = create_pg_database()
    try:
        migrate.upgrade(url)
        yield url
    finally:
        drop_pg_database(url)


def _empty(engine: Engine) -> None:
    tables = [t.name for t in SQLModel.metadata.sorted_tables]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            quoted = ", ".join(f'"{t}"' for t in tables)
            conn.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(tables):
                conn.execute(text(f'DELETE FROM "{table}"'))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    _empty(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as s:
        yield s


@pytest.fixture
def evidence_root(tmp_path: Path) -> Path:
    root = tmp_path / "evidence"
    root.mkdir()
    return root


@pytest.fixture
def settings(database_url: str, evidence_root: Path, tmp_path: Path) -> Settings:
    return Settings(
        environment=Environment.test,
        database_url=database_url,
        evidence_roots=[evidence_root, TESTDATA],
        reference_roots=[tmp_path / "reference"],
        artifact_dir=tmp_path / "artifacts",
        secret_key=SecretStr("test-secret-key-which-is-long-enough-0123456789"),
    )


@pytest.fixture
def app(settings: Settings, engine: Engine):  # type: ignore[no-untyped-def]
    application = create_app(settings)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as c:
        yield c


def make_account(engine: Engine, username: str, role: Role, **extra: object) -> Account:
    with Session(engine, expire_on_commit=False) as s:
        account = accounts.create_account(
            s,
            system_context(),
            accounts.AccountCreate(username=username, password=PASSWORD, role=role, **extra),  # type: ignore[arg-type]
        )
        s.commit()
        return account


def invoke_cli(args: list[str], env: dict[str, str] | None = None) -> Result:
    """``triage ARGS`` run in this process with ``env`` added to the environment, the settings
    read afresh for it (and forgotten after, for the tests that follow)."""
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(cli, args, env=env)
    finally:
        get_settings.cache_clear()


def login(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@dataclass
class Users:
    admin: Account
    manager: Account
    examiner: Account
    investigator: Account
    other_investigator: Account


@pytest.fixture
def users(engine: Engine) -> Users:
    return Users(
        admin=make_account(engine, "admin", Role.admin),
        manager=make_account(engine, "manager", Role.manager),
        examiner=make_account(engine, "examiner", Role.examiner),
        investigator=make_account(engine, "ioc", Role.investigator),
        other_investigator=make_account(engine, "other-ioc", Role.investigator),
    )


@pytest.fixture
def headers(client: TestClient, users: Users) -> dict[str, dict[str, str]]:
    return {
        "admin": login(client, "admin"),
        "manager": login(client, "manager"),
        "examiner": login(client, "examiner"),
        "investigator": login(client, "ioc"),
        "other_investigator": login(client, "other-ioc"),
    }
