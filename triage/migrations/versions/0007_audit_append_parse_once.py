"""audit_append: parse the events once (PostgreSQL)

Migration 0005's function read each field with ``e->>'name'`` on a ``json`` value, and
PostgreSQL parses ``json`` text again for every such operator: eleven parses of each event,
its canonical body included, while the chain's advisory lock is held (every audited write,
examiners' claims among them, waits on that lock). ``json_to_recordset`` parses the array
once into typed columns; ``before`` and ``after`` stay ``json``, their text as sent. The links
are computed as before (``triage.audit.link``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 10:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# 8015127 (0x7A0D17): the advisory lock key that serialises chain appends.
FUNCTION = r"""
CREATE OR REPLACE FUNCTION triage_audit_append(events json) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    prev text;
    link text;
    e record;
BEGIN
    PERFORM pg_advisory_xact_lock(8015127);
    -- A statement after the lock sees every chain append committed before it.
    SELECT hash INTO prev FROM audit_event ORDER BY id DESC LIMIT 1;
    prev := coalesce(prev, repeat('0', 64));
    FOR e IN
        SELECT * FROM ROWS FROM (json_to_recordset(events) AS (
            at timestamptz, actor_id integer, actor_name text, action text, object_type text,
            object_id text, before json, after json, request_id text, body text))
        WITH ORDINALITY AS r
        ORDER BY r.ordinality
    LOOP
        link := encode(sha256(convert_to(prev || E'\n' || e.body, 'UTF8')), 'hex');
        INSERT INTO audit_event (at, actor_id, actor_name, action, object_type, object_id,
                                 before, after, request_id, prev_hash, hash)
        VALUES (e.at, e.actor_id, e.actor_name, e.action, e.object_type, e.object_id,
                e.before, e.after, e.request_id, prev, link);
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
        from importlib import import_module

        op.execute(import_module("triage.migrations.versions.0005_audit_append_function").FUNCTION)
