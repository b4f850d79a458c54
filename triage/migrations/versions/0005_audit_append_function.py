"""audit_append: chain and insert audit events in one round trip (PostgreSQL)

The function takes the chain's advisory lock, reads the newest event's hash and links each
new event to it with the formula of ``triage.audit.link``:
sha256(prev_hash || '\n' || canonical body), hex. The canonical body is computed by the
application (``triage.audit.canonical_body``) and passed in; ``triage audit verify``
recomputes every link in Python, so the two must agree (the audit tests check they do).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 02:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# 8015127 (0x7A0D17): the advisory lock key that serialises chain appends.
FUNCTION = r"""
CREATE OR REPLACE FUNCTION triage_audit_append(events json) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    prev text;
    link text;
    e json;
BEGIN
    PERFORM pg_advisory_xact_lock(8015127);
    -- A statement after the lock sees every chain append committed before it.
    SELECT hash INTO prev FROM audit_event ORDER BY id DESC LIMIT 1;
    prev := coalesce(prev, repeat('0', 64));
    FOR e IN SELECT value FROM json_array_elements(events) LOOP
        link := encode(sha256(convert_to(prev || E'\n' || (e->>'body'), 'UTF8')), 'hex');
        INSERT INTO audit_event (at, actor_id, actor_name, action, object_type, object_id,
                                 before, after, request_id, prev_hash, hash)
        VALUES ((e->>'at')::timestamptz, (e->>'actor_id')::integer, e->>'actor_name',
                e->>'action', e->>'object_type', e->>'object_id', e->'before', e->'after',
                e->>'request_id', prev, link);
        prev := link;
    END LOOP;
END
$$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS triage_audit_append(json)")
