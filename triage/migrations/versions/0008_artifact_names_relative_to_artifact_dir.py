"""Artifact files named relative to the artifact folder

Hash sets' kept copies and indexes, rule sets' folders and runs' listings and DFXML were
recorded by the paths they were written to: whole paths, or (with a relative
``TRIAGE_ARTIFACT_DIR``, the default) paths relative to the directory the service ran in.
A restore to another place, or a worker that mounts the artifact folder elsewhere, found none
of them. They are now recorded relative to the artifact folder (``Settings.artifact_name``);
this migration renames the rows written before, against the artifact folder that
``triage db upgrade`` is configured with. A path outside that folder is kept whole.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 10:00:00
"""

from __future__ import annotations

import os
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

from triage.settings import get_settings

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

COLUMNS = {
    "hash_set": ("source_path", "store_path"),
    "rule_set": ("path",),
    "triage_run": ("listing_path", "dfxml_path"),
}


def _base() -> str:
    return os.path.abspath(get_settings().artifact_dir)


def _relative(value: str, base: str) -> str:
    # A relative value was relative to the directory the service ran in, as ``abspath`` takes it.
    whole = os.path.abspath(value)
    if os.path.commonpath([whole, base]) != base:
        return whole
    return os.path.relpath(whole, base).replace(os.sep, "/")


def _rename(name: Callable[[str], str]) -> None:
    connection = op.get_bind()
    for table, columns in COLUMNS.items():
        for column in columns:
            rows = connection.execute(
                sa.text(f"SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL")  # noqa: S608 - names above
            ).all()
            changed = [{"id": id_, "value": name(value)} for id_, value in rows if name(value) != value]
            if changed:
                connection.execute(
                    sa.text(f"UPDATE {table} SET {column} = :value WHERE id = :id"),  # noqa: S608 - names above
                    changed,
                )


def upgrade() -> None:
    base = _base()
    _rename(lambda value: _relative(value, base))


def downgrade() -> None:
    base = _base()
    _rename(lambda value: os.path.join(base, value))
