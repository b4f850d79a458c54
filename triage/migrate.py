"""Programmatic Alembic: ``triage db upgrade`` and the test suite use the same migrations."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import Connection

from triage.db import make_engine
from triage.errors import ConfigurationError

_INI = Path(__file__).with_name("alembic.ini")


def alembic_config(database_url: str) -> Config:
    config = Config(str(_INI))
    config.set_main_option("script_location", str(_INI.parent / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database to ``revision`` (creating a SQLite file's folder if needed)."""
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            config = alembic_config(database_url)
            scripts = ScriptDirectory.from_config(config)
            _refuse_unknown_revision(current_on(connection), scripts)
            config.attributes["connection"] = connection
            try:
                command.upgrade(config, revision)
            except CommandError as exc:  # a target it has no script for, say
                raise ConfigurationError(f"cannot upgrade the database to {revision!r}: {exc}") from None
    finally:
        engine.dispose()


def _refuse_unknown_revision(found: str | None, scripts: ScriptDirectory) -> None:
    """A database upgraded by a newer version of the program (and this one deployed again, say
    after a failed release) is at a revision this one has no script for: Alembic's traceback
    said only that it could not locate it."""
    if found is None:
        return
    try:
        scripts.get_revision(found)
    except CommandError:
        raise ConfigurationError(
            f"the database is at schema revision {found}, which this version of the program does not "
            f"know (its newest is {scripts.get_current_head()}): a newer version upgraded it; run "
            "that version, or restore the backup taken before the upgrade"
        ) from None


def current_on(connection: Connection) -> str | None:
    """The revision recorded in the database behind ``connection``."""
    return MigrationContext.configure(connection).get_current_revision()


def current(database_url: str) -> str | None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return current_on(connection)
    finally:
        engine.dispose()


def head() -> str | None:
    """The newest revision shipped with this version of the program."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
