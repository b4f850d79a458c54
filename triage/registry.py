"""Hash sets and YARA rule sets managed by admins: validated when registered, copied into the
artifact store and versioned by content hash, so a run records exactly what it used."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from sqlmodel import Session, col, select

from triage import audit
from triage.analysis.hashsets import HashSetInfo, HashSetKind, load_hashset
from triage.analysis.hashsets.store import Progress, file_sha256
from triage.analysis.yarascan import RuleSet, compile_rules, rule_files
from triage.context import Context
from triage.db import end_read_transaction
from triage.errors import ConflictError, HashSetError, NotFoundError, RulesError
from triage.evidence.paths import not_usable, shown
from triage.models.accounts import Role
from triage.models.runs import HashSetRecord, RuleSetRecord
from triage.settings import Settings


def _hashset_dirs(settings: Settings) -> tuple[Path, Path]:
    base = Path(settings.artifact_dir) / "hashsets"
    return base / "sources", base / "index"


def register_hashset(
    session: Session,
    ctx: Context,
    settings: Settings,
    source: Path,
    name: str | None = None,
    kind: str | None = None,
    progress: Progress | None = None,
) -> HashSetRecord:
    """Validate and index ``source``, then record it; the same content registered twice is
    a 409. ``progress`` is told how the indexing goes (see ``load_hashset``).

    Indexing takes minutes at NSRL size, so it runs outside any transaction: the session's
    read transaction (the caller's load) is ended first, and the database is asked only
    afterwards. Nothing may be pending in the session."""
    if ctx.actor is not None:
        ctx.require(Role.admin)
    if (problem := not_usable(source)) is not None:
        raise HashSetError(f"{shown(source)}: {problem}")
    end_read_transaction(session)
    sha = file_sha256(source)
    sources, index = _hashset_dirs(settings)
    # The copy that is indexed and kept (what was registered must stay readable) keeps the
    # file's own name, in a folder named by its content, so that a complaint about a line
    # names the file the admin gave; a copy that proves not to be a hash set is not kept.
    kept = sources / sha / source.name
    copied = not kept.exists()
    if copied:
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, kept)

    def discard() -> None:
        if copied:
            kept.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # the folder goes too, unless something else is in it
                kept.parent.rmdir()

    try:
        info = load_hashset(
            kept, index, kind=HashSetKind(kind) if kind else None, name=name or source.name, progress=progress
        )
    except HashSetError:
        discard()
        raise
    existing = session.exec(select(HashSetRecord).where(HashSetRecord.sha256 == sha)).first()
    if existing is not None:  # its store was found ready: indexing it again took no time
        discard()
        raise ConflictError(f"this hash set is registered already as #{existing.id} ({existing.name})")
    record = HashSetRecord(
        name=info.name,
        kind=info.kind.value,
        format=info.format,
        source_path=str(kept),
        sha256=sha,
        entries=info.entries,
        store_path=info.store,
        created_by=ctx.actor_id,
    )
    audit.add_created(session, ctx, record, "hashset.register", "hash_set")
    return record


def hashset_info(record: HashSetRecord) -> HashSetInfo:
    return HashSetInfo(
        record.name,
        HashSetKind(record.kind),
        record.format,
        record.source_path,
        record.sha256,
        record.entries,
        record.store_path,
    )


def register_ruleset(
    session: Session, ctx: Context, settings: Settings, source: Path, name: str | None = None
) -> RuleSetRecord:
    """Compile the rules (refused if they do not), keep a copy, record their hash. A large
    set takes seconds to compile, so the session's read transaction is ended first (see
    ``register_hashset``)."""
    if ctx.actor is not None:
        ctx.require(Role.admin)
    end_read_transaction(session)
    compiled = compile_rules([source])
    existing = session.exec(select(RuleSetRecord).where(RuleSetRecord.sha256 == compiled.sha256)).first()
    if existing is not None:
        raise ConflictError(f"this rule set is registered already as #{existing.id} ({existing.name})")
    target = Path(settings.artifact_dir) / "rules" / compiled.sha256
    target.mkdir(parents=True, exist_ok=True)
    for file in rule_files([source]):
        shutil.copyfile(file, target / file.name)
    record = RuleSetRecord(
        name=name or source.name,
        sha256=compiled.sha256,
        path=str(target),
        files=[Path(f).name for f in compiled.files],
        rule_count=compiled.rule_count,
        created_by=ctx.actor_id,
    )
    audit.add_created(session, ctx, record, "ruleset.register", "rule_set")
    return record


_compiled: dict[str, RuleSet] = {}


def load_ruleset(record: RuleSetRecord) -> RuleSet:
    """Compile a registered rule set once per process and check it is what was registered."""
    if record.sha256 not in _compiled:
        ruleset = compile_rules([Path(record.path)])
        if ruleset.sha256 != record.sha256:
            raise RulesError(f"rule set #{record.id} on disk no longer matches its registered hash")
        _compiled[record.sha256] = ruleset
    return _compiled[record.sha256]


def set_active(session: Session, ctx: Context, record: HashSetRecord | RuleSetRecord, active: bool) -> None:
    if ctx.actor is not None:
        ctx.require(Role.admin)
    before = audit.snapshot(record)
    record.active = active
    session.add(record)
    session.flush()
    kind = "hash_set" if isinstance(record, HashSetRecord) else "rule_set"
    audit.record(
        session,
        ctx,
        f"{kind}.{'activate' if active else 'deactivate'}",
        kind,
        record.id,
        before,
        audit.snapshot(record),
    )


def get_hashset(session: Session, hashset_id: int) -> HashSetRecord:
    record = session.get(HashSetRecord, hashset_id)
    if record is None:
        raise NotFoundError(f"hash set {hashset_id} not found")
    return record


def get_ruleset(session: Session, ruleset_id: int) -> RuleSetRecord:
    record = session.get(RuleSetRecord, ruleset_id)
    if record is None:
        raise NotFoundError(f"rule set {ruleset_id} not found")
    return record


def list_hashsets(session: Session) -> list[HashSetRecord]:
    return list(session.exec(select(HashSetRecord).order_by(col(HashSetRecord.id))).all())


def list_rulesets(session: Session) -> list[RuleSetRecord]:
    return list(session.exec(select(RuleSetRecord).order_by(col(RuleSetRecord.id))).all())
