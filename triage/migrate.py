"""Programmatic Alembic: ``triage db upgrade`` and the test suite use the same migrations."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from triage.db import make_engine

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
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


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
