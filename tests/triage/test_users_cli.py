"""`triage users` on the command line: accounts are created, changed, disabled, never deleted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from triage.cli import app as cli
from triage.models.accounts import Account
from triage.models.audit import AuditEvent
from triage.settings import get_settings


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, database_url: str, engine: Engine) -> Iterator[CliRunner]:
    monkeypatch.setenv("TRIAGE_DATABASE_URL", database_url)
    monkeypatch.delenv("TRIAGE_ADMIN_PASSWORD", raising=False)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def _account(engine: Engine, username: str) -> Account:
    with Session(engine) as s:
        return s.exec(select(Account).where(Account.username == username)).one()


def test_an_examiner_is_created_then_cleared_and_given_device_kinds(
    runner: CliRunner, engine: Engine
) -> None:
    # Clearance for indecent imagery and the device kinds decide which tasks an examiner gets;
    # they could be set when the account was made, and afterwards only through the API.
    made = runner.invoke(cli, ["users", "create", "e.jones", "--role", "examiner", "--password", "x" * 12])
    assert made.exit_code == 0 and "created examiner account 'e.jones'" in made.output, made.output
    assert not _account(engine, "e.jones").iioc_cleared

    args = [
        "users",
        "update",
        "e.jones",
        "--iioc-cleared",
        "--device-type",
        "phone",
        "--device-type",
        "tablet",
    ]
    changed = runner.invoke(cli, args)
    assert changed.exit_code == 0, changed.output
    assert "e.jones: examiner, devices: phone, tablet, indecent imagery: cleared" in changed.output
    account = _account(engine, "e.jones")
    assert account.iioc_cleared and account.device_types == ["phone", "tablet"]
    listed = runner.invoke(cli, ["users", "list"], terminal_width=200).output
    assert "phone, tablet" in listed

    changed = runner.invoke(cli, ["users", "update", "e.jones", "--any-device", "--no-iioc-cleared"])
    assert "devices: every kind, indecent imagery: not cleared" in changed.output
    account = _account(engine, "e.jones")
    assert not account.iioc_cleared and account.device_types == []
    with Session(engine) as s:
        updates = s.exec(select(AuditEvent).where(AuditEvent.action == "account.update")).all()
    assert len(updates) == 2 and updates[0].after["iioc_cleared"] is True  # type: ignore[index]


def test_bad_updates_are_refused_in_one_line_and_change_nothing(runner: CliRunner, engine: Engine) -> None:
    runner.invoke(cli, ["users", "create", "m.smith", "--role", "manager", "--password", "x" * 12])
    for args, code, said in [
        (["users", "update", "m.smith"], 2, "nothing to change"),
        (["users", "update", "m.smith", "--any-device", "--device-type", "phone"], 2, "not both"),
        (["users", "update", "m.smith", "--password", "short"], 2, "password"),
        (["users", "update", "nobody", "--team", "North"], 1, "nobody"),
        (
            ["users", "create", "x.y", "--role", "examiner", "--password", "short"],
            2,
            "password: String should",
        ),
    ]:
        result = runner.invoke(cli, args)
        assert result.exit_code == code and said in result.output, (args, result.output)
        assert result.output.count("\n") == 1, result.output
    account = _account(engine, "m.smith")
    assert account.team == "" and account.role == "manager"


def test_accounts_are_disabled_and_enabled_and_the_first_admin_made_once(
    runner: CliRunner, engine: Engine
) -> None:
    first = runner.invoke(cli, ["users", "bootstrap-admin"])
    assert first.exit_code == 0 and "created admin account 'admin'" in first.output
    assert "password (shown once" in first.output
    again = runner.invoke(cli, ["users", "bootstrap-admin"])
    assert "an admin account exists already; nothing to do" in again.output
    runner.invoke(cli, ["users", "create", "i.brown", "--role", "investigator", "--password", "x" * 12])
    assert "disabled" in runner.invoke(cli, ["users", "disable", "i.brown"]).output
    assert not _account(engine, "i.brown").is_active
    assert "enabled" in runner.invoke(cli, ["users", "enable", "i.brown"]).output
    assert _account(engine, "i.brown").is_active
