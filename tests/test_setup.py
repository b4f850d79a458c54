"""The deliverables around the code: settings rules, the compose file, the two commands."""

from __future__ import annotations

import re
import shlex
import socket
from pathlib import Path

import pytest
import typer
import yaml
from pydantic import SecretStr, ValidationError
from typer.core import TyperGroup
from typer.main import get_command

from tests.conftest import ROOT, invoke_cli
from triage.cli import app as cli
from triage.settings import Environment, QueueBackend, Settings, get_settings


def test_default_secret_is_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="TRIAGE_SECRET_KEY"):
        Settings(environment=Environment.production)
    with pytest.raises(ValidationError, match="TRIAGE_SECRET_KEY"):
        Settings(environment=Environment.test)
    Settings(environment=Environment.production, secret_key=SecretStr("x" * 40))  # a real key is accepted
    Settings(environment=Environment.development)  # and the default is fine for local development


def test_rq_is_refused_a_broker_url_that_is_not_redis() -> None:
    # Redis refused it with a ValueError traceback as each RQ worker started, and the runs the
    # API sent went nowhere.
    with pytest.raises(ValidationError, match="TRIAGE_BROKER_URL: RQ needs a Redis URL"):
        Settings(queue_backend=QueueBackend.rq, broker_url="amqp://guest:guest@127.0.0.1:5672//")
    for url in ("redis://127.0.0.1:6379/0", "rediss://cache:6380/1", "unix:///run/redis.sock"):
        Settings(queue_backend=QueueBackend.rq, broker_url=url)
    Settings(queue_backend=QueueBackend.celery, broker_url="amqp://guest:guest@127.0.0.1:5672//")


def test_evidence_roots_accept_a_colon_separated_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_EVIDENCE_ROOTS", "/evidence/a:/evidence/b")
    assert [str(p) for p in Settings().evidence_roots] == ["/evidence/a", "/evidence/b"]


def _cli_has(argv: list[str]) -> bool:
    """Whether ``triage <argv...>`` names an existing command (options are ignored)."""
    command = get_command(cli)
    words = [w for w in argv if not w.startswith("-")]
    for word in words:
        if not isinstance(command, TyperGroup):
            return True  # a leaf command; what follows are its arguments
        found = command.get_command(typer.Context(command), word)  # loads a lazy sub-command
        if found is None:
            return False
        command = found
    return not isinstance(command, TyperGroup)


def test_compose_file_parses_and_names_commands_that_exist() -> None:
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "api", "worker"} <= set(services)
    checked = 0
    for name, service in services.items():
        command = service.get("command")
        if not command:
            continue
        argv = command if isinstance(command, list) else shlex.split(command)
        if argv[0] == "triage":
            assert _cli_has(argv[1:]), f"service {name}: `{' '.join(argv)}` is not a triage command"
            checked += 1
        build = service.get("build")
        if build:
            assert (ROOT / "docker" / build["context"] / build["dockerfile"]).is_file()
    assert checked >= 3
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    cmd_line = next(line for line in dockerfile.splitlines() if line.startswith("CMD"))
    argv = yaml.safe_load(cmd_line.removeprefix("CMD").strip())
    assert argv[0] == "triage" and _cli_has(argv[1:])


def test_the_image_builds_the_md5_lanes() -> None:
    # setup.py declares the compiled MD5 lanes: the image must copy it and have a compiler when
    # it installs the program, or its scans would quietly hash with OpenSSL alone.
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text().replace("\\\n", " ")
    lines = dockerfile.splitlines()
    copied = {word for line in lines if line.startswith("COPY ") for word in line.split()[1:-1]}
    assert {"pyproject.toml", "setup.py"} <= copied
    install = next(line for line in lines if "pip install" in line)
    built = install.index("import triage.analysis._md5lanes")
    assert install.index("gcc") < install.index("pip install") < built


def test_the_image_lets_its_user_write_every_volume_mounted_writable() -> None:
    # The services run as the image's own user; a named volume Docker makes at a path the image
    # lacks is root's. The artifact folder was such a volume: no run could keep its listing
    # (and `triage serve` and `triage worker` now refuse to start without it).
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    user = re.search(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert user is not None
    owned = re.findall(rf"^RUN mkdir -p (\S+) && chown {user[1]}:{user[1]} \1$", dockerfile, re.MULTILINE)
    writable = {
        mount.split(":")[1]
        for service in compose["services"].values()
        if service.get("build")
        for mount in service.get("volumes", [])
        if not mount.endswith(":ro")
    }
    assert writable and writable <= set(owned), (writable, owned)
    assert compose["x-triage-env"]["TRIAGE_ARTIFACT_DIR"] in writable


def test_cli_check_rejects_an_unknown_command() -> None:
    assert not _cli_has(["db", "explode"])
    assert not _cli_has(["nonsense"])


def test_readme_quick_start_is_exactly_make_run_and_make_test() -> None:
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [line.strip() for line in quick.splitlines() if line.strip().startswith("make ")]
    assert commands == ["make run", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert "\nrun:" in makefile and "\ntest:" in makefile


def test_a_policy_with_an_unknown_factor_is_refused_at_start_up(tmp_path: Path) -> None:
    from api.main import create_app
    from scoring import PolicyError

    bad = tmp_path / "policy.toml"
    bad.write_text(
        'version = "local-1"\n[factors.section47_open]\npoints = 10\n[factors.horoscope]\npoints = 1\n'
    )
    with pytest.raises(PolicyError, match=r"policy.toml:4: unknown policy factor 'horoscope'"):
        create_app(Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", scoring_policy=bad))


def test_serve_refuses_an_address_in_use_before_starting_the_local_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A second `triage serve` on the same port used to start its local worker, which could claim
    # a run, before uvicorn found the port taken and exited: the run then sat out its lease.
    from workers import local

    started: list[object] = []
    monkeypatch.setattr(local, "Beside", started.append)
    env = {"TRIAGE_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "TRIAGE_QUEUE_BACKEND": "local"}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke_cli(["serve", "--host", "127.0.0.1", "--port", str(port)], env)
    assert result.exit_code == 1, result.output
    assert f"127.0.0.1:{port} is in use" in result.output and "nothing was started" in result.output
    assert not started


def test_upgrading_a_database_a_newer_version_upgraded_is_refused_in_one_line(tmp_path: Path) -> None:
    # After a failed release is rolled back, `triage db upgrade` met a schema revision it has no
    # script for: Alembic's CommandError traceback, saying only that it could not locate it.
    import sqlite3

    from triage import migrate

    db = tmp_path / "x.db"
    env = {"TRIAGE_DATABASE_URL": f"sqlite:///{db}"}
    assert invoke_cli(["db", "upgrade"], env).exit_code == 0
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099'")
    conn.close()
    newer = invoke_cli(["db", "upgrade"], env)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (migrate.head(),))
    conn.close()
    unknown = invoke_cli(["db", "upgrade", "9999"], env)
    assert newer.exit_code == 1 and newer.stderr.count("\n") == 1, newer.output
    assert "the database is at schema revision 0099, which this version of the program does not know" in (
        newer.stderr
    )
    assert unknown.exit_code == 1 and unknown.stderr.count("\n") == 1, unknown.output
    assert "cannot upgrade the database to '9999'" in unknown.stderr


def test_migrations_match_the_models(tmp_path: Path) -> None:
    """A model change without its migration (or the other way round) fails here."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    import triage.models  # noqa: F401
    from triage import migrate
    from triage.db import make_engine

    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    # Alembic cannot compare expression indexes (DESC columns): that one is checked by name.
    diff = [
        d for d in diff if not (d[0] in ("add_index", "remove_index") and d[1].name == "ix_task_claim_order")
    ]
    assert diff == []


def test_migration_0008_names_kept_files_relative_to_the_artifact_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows written before 0008 named their files whole, or relative to the directory the
    service ran in (the default artifact folder is relative): each becomes relative to the
    artifact folder, and whole again on downgrade; a file outside the folder stays whole."""
    from alembic import command
    from sqlalchemy import text

    from triage import migrate
    from triage.db import make_engine

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRIAGE_ARTIFACT_DIR", "var/artifacts")
    get_settings.cache_clear()
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrate.upgrade(url, "0007")
    base = tmp_path / "var" / "artifacts"
    engine = make_engine(url)
    now = "2026-11-29 10:00:00+00:00"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO hash_set (name, kind, format, source_path, sha256, entries, store_path, active,"
                " created_at) VALUES ('s', 'known_bad', 'md5sum', :source, :sha, 1, :store, 1, :now)"
            ),
            {
                "source": "var/artifacts/hashsets/sources/ab/s.md5",
                "sha": "ab" * 32,
                "store": str(base / "hashsets" / "index" / "ab.sqlite"),
                "now": now,
            },
        )
        conn.execute(
            text(
                "INSERT INTO rule_set (name, sha256, path, files, rule_count, active, created_at)"
                " VALUES ('r', :sha, '/srv/elsewhere/rules/cd', '[]', 1, 1, :now)"
            ),
            {"sha": "cd" * 32, "now": now},
        )

    def recorded() -> tuple[str, ...]:
        with engine.connect() as conn:
            hashset = conn.execute(text("SELECT source_path, store_path FROM hash_set")).one()
            return (*hashset, conn.execute(text("SELECT path FROM rule_set")).scalar_one())

    try:
        migrate.upgrade(url)
        source, store, rules = recorded()
        assert (source, store, rules) == (
            "hashsets/sources/ab/s.md5",
            "hashsets/index/ab.sqlite",
            "/srv/elsewhere/rules/cd",
        )
        assert get_settings().artifact(source).resolve() == base / "hashsets" / "sources" / "ab" / "s.md5"
        command.downgrade(migrate.alembic_config(url), "0007")
        assert recorded() == (
            str(base / "hashsets" / "sources" / "ab" / "s.md5"),
            str(base / "hashsets" / "index" / "ab.sqlite"),
            "/srv/elsewhere/rules/cd",
        )
    finally:
        engine.dispose()
        get_settings.cache_clear()
