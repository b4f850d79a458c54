"""account.token_version: tokens issued before a password change or a disable stop working

A bearer token (and the pages' sign-in cookie, which holds one) stayed valid for its whole
lifetime, eight hours by default, after an admin changed the password of an account thought
compromised, or disabled it and enabled it again. Each token now carries the account's
version, raised by either; tokens issued before this migration carry none and count as 0.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("token_version", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.drop_column("token_version")
