"""audit_event: index by action and time

The sign-in throttle counts a username's failed sign-ins of the last minutes in the audit log
(shared by every API worker process, and kept across restarts), beside the successful ones
that reset the count. Indexed by action alone, each sign-in would read every sign-in ever
recorded; by action and time it reads the window. The new index serves what the old one did.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 12:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index("ix_audit_event_action_at", ["action", "at"], unique=False)
        batch_op.drop_index("ix_audit_event_action")


def downgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index("ix_audit_event_action", ["action"], unique=False)
        batch_op.drop_index("ix_audit_event_action_at")
