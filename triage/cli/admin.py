"""Setup and administration: database migrations, accounts, audit verification, serving."""

from __future__ import annotations

import errno
import os
import socket
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table
from sqlmodel import col, select

from triage import accounts, audit, migrate
from triage.cli.output import command_group, console, counted, fail
from triage.context import system_context
from triage.db import make_engine, session_scope
from triage.errors import TriageError, in_words
from triage.models.accounts import Account, Role
from triage.models.exhibits import DeviceType
from triage.settings import get_settings

db_app = command_group("Database schema (Alembic migrations) and the files it names.")
users_app = command_group("Accounts and roles. Accounts are disabled, never deleted.")
audit_app = command_group("The append-only audit log.")


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="target revision")] = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    url = get_settings().database_url
    migrate.upgrade(url, revision)
    console.print(f"database at revision {migrate.current(url)}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's current revision and the newest one."""
    url = get_settings().database_url
    console.print(f"current: {migrate.current(url)}  head: {migrate.head()}")


@db_app.command("check")
def db_check(
    rehash: Annotated[
        bool, typer.Option("--rehash", help="also hash each hash set's kept copy (slow at NSRL size)")
    ] = False,
    repair: Annotated[
        bool,
        typer.Option("--repair", help="build missing or damaged hash-set indexes again from the kept copies"),
    ] = False,
) -> None:
    """Check that every file the database names is there as recorded (kept hash sets and
    rules, indexes, runs' listings and DFXML): after a restore, a move or a disk fault. Exit 1
    listing what is missing or changed."""
    from triage import artifacts

    settings = get_settings()
    with session_scope(make_engine(settings.database_url)) as session, console.status("checking") as status:
        report = artifacts.check(
            session, settings, rehash, repair, lambda what: status.update(f"checking {what}")
        )
    for what in report.rebuilt:
        console.print(f"{what}: index built again from its kept copy", soft_wrap=True, highlight=False)
    if not report.problems:
        console.print(f"every recorded file is in place ({counted(report.checked, 'record')} checked)")
        return
    for problem in report.problems:  # a line each, whole: paths are long, and worth a grep
        console.print(f"{problem.what}: {problem.problem}", soft_wrap=True, highlight=False)
    raise fail(f"{counted(len(report.problems), 'problem')} in {counted(report.checked, 'record')} checked")


@users_app.command("create")
def users_create(
    username: str,
    role: Annotated[Role, typer.Option(help="admin, manager, examiner or investigator")],
    full_name: Annotated[str, typer.Option()] = "",
    team: Annotated[str, typer.Option()] = "",
    device_type: Annotated[list[DeviceType] | None, typer.Option(help="device kinds examined")] = None,
    iioc_cleared: Annotated[bool, typer.Option(help="cleared to view indecent imagery")] = False,
    password: Annotated[
        str | None,
        typer.Option(envvar="TRIAGE_NEW_PASSWORD", help="otherwise generated and printed once"),
    ] = None,
) -> None:
    """Create an account."""
    generated = password is None
    secret = password or accounts.generate_password()
    try:
        data = accounts.AccountCreate(
            username=username,
            password=secret,
            role=role,
            full_name=full_name,
            team=team,
            device_types=device_type or [],
            iioc_cleared=iioc_cleared,
        )
    except ValidationError as exc:
        raise fail(in_words(exc.errors()), 2) from None
    engine = make_engine(get_settings().database_url)
    try:
        with session_scope(engine) as session:
            account = accounts.create_account(session, system_context(), data)
    except TriageError as exc:
        raise fail(str(exc)) from None
    console.print(f"created {account.role} account {account.username!r} (id {account.id})")
    if generated:
        console.print(f"password (shown once): {secret}")


@users_app.command("update")
def users_update(
    username: str,
    role: Annotated[Role | None, typer.Option(help="a new role")] = None,
    full_name: Annotated[str | None, typer.Option()] = None,
    team: Annotated[str | None, typer.Option()] = None,
    device_type: Annotated[
        list[DeviceType] | None, typer.Option(help="the device kinds examined, replacing the old list")
    ] = None,
    any_device: Annotated[bool, typer.Option(help="examines every kind of device")] = False,
    iioc_cleared: Annotated[
        bool | None, typer.Option("--iioc-cleared/--no-iioc-cleared", help="cleared to view indecent imagery")
    ] = None,
    password: Annotated[
        str | None, typer.Option(envvar="TRIAGE_NEW_PASSWORD", help="a new password", show_default=False)
    ] = None,
) -> None:
    """Change an account: role, name, team, the device kinds an examiner examines, clearance
    for indecent imagery, password (audited). Options not given are left as they are."""
    if device_type and any_device:
        raise fail("give --device-type or --any-device, not both", 2)
    changes: dict[str, object] = {
        key: value
        for key, value in {
            "role": role,
            "full_name": full_name,
            "team": team,
            "device_types": [] if any_device else device_type or None,
            "iioc_cleared": iioc_cleared,
            "password": password,
        }.items()
        if value is not None
    }
    if not changes:
        raise fail("nothing to change: give at least one option (see --help)", 2)
    try:
        data = accounts.AccountUpdate(**changes)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise fail(in_words(exc.errors()), 2) from None
    engine = make_engine(get_settings().database_url)
    try:
        with session_scope(engine) as session:
            account = accounts.find_account(session, username)
            accounts.update_account(session, system_context(), account, data)
            summary = _describe(account)
    except TriageError as exc:
        raise fail(str(exc)) from None
    console.print(f"{username}: {summary}")


def _describe(account: Account) -> str:
    cleared = "cleared" if account.iioc_cleared else "not cleared"
    return f"{account.role}, devices: {_devices(account)}, indecent imagery: {cleared}"


def _devices(account: Account) -> str:
    """The device kinds an examiner examines; none listed means every kind."""
    return ", ".join(account.device_types) or "every kind"


def _set_active(username: str, active: bool) -> None:
    engine = make_engine(get_settings().database_url)
    try:
        with session_scope(engine) as session:
            account = accounts.find_account(session, username)
            accounts.set_active(session, system_context(), account, active)
    except TriageError as exc:
        raise fail(str(exc)) from None
    console.print(f"{username}: {'enabled' if active else 'disabled'}")


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Disable an account (kept for the audit log; it can no longer log in)."""
    _set_active(username, False)


@users_app.command("enable")
def users_enable(username: str) -> None:
    """Re-enable a disabled account."""
    _set_active(username, True)


@users_app.command("list")
def users_list() -> None:
    """List accounts."""
    engine = make_engine(get_settings().database_url)
    with session_scope(engine) as session:
        rows = session.exec(select(Account).order_by(col(Account.id))).all()
        table = Table("id", "username", "role", "team", "devices", "IIOC cleared", "active")
        for a in rows:
            table.add_row(
                str(a.id),
                a.username,
                str(a.role),
                a.team,
                _devices(a),
                "yes" if a.iioc_cleared else "no",
                "yes" if a.is_active else "no",
            )
    console.print(table)


@users_app.command("bootstrap-admin")
def users_bootstrap_admin(username: str = "admin") -> None:
    """Create the first admin if there is none (password from TRIAGE_ADMIN_PASSWORD, or
    generated and printed once)."""
    engine = make_engine(get_settings().database_url)
    with session_scope(engine) as session:
        if session.exec(select(Account.id).where(Account.role == Role.admin)).first():
            console.print("an admin account exists already; nothing to do")
            return
        supplied = os.environ.get("TRIAGE_ADMIN_PASSWORD")
        secret = supplied or accounts.generate_password()
        try:
            data = accounts.AccountCreate(
                username=username, password=secret, role=Role.admin, full_name="First administrator"
            )
        except ValidationError as exc:
            raise fail(f"TRIAGE_ADMIN_PASSWORD: {in_words(exc.errors())}", 2) from None
        accounts.create_account(session, system_context(), data)
    console.print(f"created admin account {username!r}")
    if not supplied:
        console.print(f"password (shown once, store it now): [bold]{secret}[/bold]", markup=True)


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit log's hash chain; exit 1 naming the first broken link."""
    engine = make_engine(get_settings().database_url)
    with session_scope(engine) as session:
        report = audit.verify_chain(session)
    if report.ok:
        console.print(f"audit log intact: {report.events} events")
        return
    raise fail(f"audit chain broken at event {report.first_broken_id}: {report.reason}")


def serve(
    host: Annotated[str | None, typer.Option(help="default: TRIAGE_API_HOST")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="default: TRIAGE_API_PORT")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="API worker processes (default: TRIAGE_API_WORKERS, 1)")
    ] = None,
) -> None:
    """Serve the API (and, in the embedded shape, run the local worker beside it)."""
    import uvicorn

    from triage import queue
    from triage.launch import ended_by_signal
    from triage.settings import QueueBackend

    settings = get_settings()
    host, port = host or settings.api_host, port or settings.api_port
    # A bad scoring policy is refused now, naming its line, before the worker thread or the API
    # starts (as `triage worker` and `triage scheduler` refuse it in their _start).
    queue.policy(settings.policy_path)
    settings.check_artifact_dir()  # uploads, hash sets, rules and the local worker's runs
    # So is an address already taken (a second `triage serve`, another service): uvicorn would
    # find it only after the local worker had started and perhaps claimed a run, which would
    # then wait out its lease before another worker took it up.
    _refuse_taken_address(host, port)
    beside = None
    if settings.queue_backend is QueueBackend.local:
        from workers.local import Beside

        beside = Beside(settings)
        console.print("local worker started beside the API")
    # uvicorn ends on SIGTERM as on Ctrl-C, then raises the signal again with the handler found
    # before it started: by default that ended the process where it stood, the local worker's
    # run left "running" until its lease lapsed. As an exception, the worker is stopped first.
    with ended_by_signal():
        try:
            uvicorn.run(
                "api.main:create_app",
                factory=True,
                host=host,
                port=port,
                workers=workers or settings.api_workers,
            )
        finally:
            if beside is not None and not beside.stop():
                typer.echo(
                    "the local worker did not stop in time: its run goes back to the queue"
                    " when its lease lapses",
                    err=True,
                )


def _refuse_taken_address(host: str, port: int) -> None:
    """Exit with a one-line message if HOST:PORT cannot be bound, trying it as uvicorn will
    (IPv6 when the host has a colon, with SO_REUSEADDR) and letting it go at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                why = "is in use (is another `triage serve` running?)"
            else:
                why = f"cannot be bound: {exc.strerror}"
            raise fail(f"{host}:{port} {why}; nothing was started") from None
