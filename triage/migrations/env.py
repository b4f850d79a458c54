"""Alembic environment: the URL comes from the caller (``triage db``) or from Settings."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlmodel import SQLModel

import triage.models  # noqa: F401  (registers every table on the metadata)
from triage.db import make_engine
from triage.settings import get_settings

config = context.config
target_metadata = SQLModel.metadata


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    engine = make_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _render_item(type_: str, obj: Any, autogen_context: Any) -> Any:
    """Enum columns are plain strings in the database; render them so."""
    from triage.models.types import EnumString

    if type_ == "type" and isinstance(obj, EnumString):
        return f"sa.String(length={obj.length})"
    return False


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_item=_render_item,
        render_as_batch=True,  # SQLite needs batch mode to alter tables
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
