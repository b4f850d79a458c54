"""withdrawn_token: a token signed out is refused for the rest of its lifetime

Signing out of the pages deleted the browser's cookie but left the token it held valid for up
to eight hours: anyone who had copied it (from a shared station's browser profile, a proxy
log) could go on using it. Each token carries an id (``jti``); signing out, from the pages or
with ``POST /auth/logout``, records that id here until the token's own expiry.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from triage.models.types import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "withdrawn_token",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"]),
        sa.PrimaryKeyConstraint("jti"),
    )
    with op.batch_alter_table("withdrawn_token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_withdrawn_token_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_withdrawn_token_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("withdrawn_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_withdrawn_token_expires_at"))
        batch_op.drop_index(batch_op.f("ix_withdrawn_token_account_id"))
    op.drop_table("withdrawn_token")
