"""Hash sets and YARA rule sets managed by admins: validated when registered, copied into the
artifact store and versioned by content hash, so a run records exactly what it used."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from triage import audit
from triage.analysis.hashsets import HashSetInfo, HashSetKind, load_hashset
from triage.analysis.hashsets.store import Progress, discard_store, file_sha256
from triage.analysis.yarascan import RULE_SUFFIXES, RuleSet, compile_rules
from triage.context import Context
from triage.db import end_read_transaction
from triage.errors import ConflictError, HashSetError, NotFoundError, RulesError
from triage.evidence.paths import not_usable, shown
from triage.leftovers import remove_stale
from triage.models.accounts import Role
from triage.models.runs import HashSetRecord, RuleSetRecord
from triage.settings import Settings

COPY_BLOCK = 4 * 1024 * 1024


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
    disposable: bool = False,
) -> HashSetRecord:
    """Validate and index ``source``, then record it; the same content registered twice is
    a 409. ``progress`` is told how the indexing goes (see ``load_hashset``). A
    ``disposable`` source (an upload the caller throws away afterwards) is moved into the
    artifact store, where it is on the same disk, rather than copied.

    Indexing takes minutes at NSRL size, so it runs outside any transaction: the session's
    read transaction (the caller's load) is ended first, and the database is asked only
    afterwards. Nothing may be pending in the session."""
    if ctx.actor is not None:
        ctx.require(Role.admin)
    if (problem := not_usable(source)) is not None:
        raise HashSetError(f"{shown(source)}: {problem}")
    remove_leftovers(settings)  # of registrations killed half way (also swept at API start)
    end_read_transaction(session)
    sha = file_sha256(source)
    _refuse_registered(session, HashSetRecord, sha, "hash set")  # before copying gigabytes again
    end_read_transaction(session)
    sources, index = _hashset_dirs(settings)
    # The copy that is indexed and kept (what was registered must stay readable) keeps the
    # file's own name, in a folder named by its content, so that a complaint about a line
    # names the file the admin gave; a copy that proves not to be a hash set is not kept.
    kept = sources / sha / source.name
    copied = _copy_into_place(source, kept, sha, move=disposable)

    def discard() -> None:
        if copied:
            kept.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # the folder goes too, unless something else is in it
                kept.parent.rmdir()

    try:
        info = load_hashset(
            kept,
            index,
            kind=HashSetKind(kind) if kind else None,
            name=name or source.name,
            progress=progress,
            known_sha256=sha,  # what ``kept`` holds: hashed as it was copied, or checked in place
        )
    except HashSetError:
        discard()
        raise
    record = HashSetRecord(
        name=info.name,
        kind=info.kind.value,
        format=info.format,
        source_path=settings.artifact_name(kept),
        sha256=sha,
        entries=info.entries,
        store_path=settings.artifact_name(info.store),
        created_by=ctx.actor_id,
    )
    try:
        # Registered meanwhile by someone else (the same content, while this one indexed)?
        _add_unless_registered(session, ctx, record, "hashset.register", "hash set")
    except ConflictError:
        if not session.exec(
            select(HashSetRecord).where(HashSetRecord.source_path == record.source_path)
        ).first():
            discard()  # unless the other registration keeps this very copy
        raise
    return record


Registered = TypeVar("Registered", HashSetRecord, RuleSetRecord)


def _refuse_registered(session: Session, model: type[Registered], sha: str, what: str) -> None:
    existing = session.exec(select(model).where(model.sha256 == sha)).first()
    if existing is not None:
        state = "" if existing.active else ", inactive: activate it instead"
        raise ConflictError(f"this {what} is registered already as #{existing.id} ({existing.name}{state})")


def _add_unless_registered(
    session: Session, ctx: Context, record: Registered, action: str, what: str
) -> None:
    """Insert and audit ``record``; the same content registered by someone else since it was
    checked (two admins at once: the unique hash refuses the second) is a 409, not a fault.
    The session has nothing else pending (its read was ended before the long work), so
    rolling it back loses nothing but this record."""
    model = type(record)
    _refuse_registered(session, model, record.sha256, what)
    try:
        audit.add_created(session, ctx, record, action, what.replace(" ", "_"))
    except IntegrityError:
        session.rollback()
        _refuse_registered(session, model, record.sha256, what)
        raise  # not a duplicate after all: a fault, reported as one


def _copy_into_place(source: Path, kept: Path, sha: str, move: bool = False) -> bool:
    """Copy (or ``move``) ``source``, whose SHA-256 is ``sha``, to ``kept`` unless that holds
    it already; True if done. A copy is written beside and renamed into place, so ``kept`` is
    always whole: a registration of the same content at the same moment indexes a complete
    file, never one half written."""
    if kept.exists() and file_sha256(kept) == sha:
        return False
    # Not there, or left damaged by a copy cut short (before copies were renamed into place).
    kept.parent.mkdir(parents=True, exist_ok=True)
    if move:
        try:
            source.replace(kept)
            return True
        except OSError as exc:
            if exc.errno != errno.EXDEV:  # on another disk: copied below
                raise
    partial = kept.with_name(f".{kept.name}.copying-{os.getpid()}-{threading.get_ident()}")
    try:
        if _copy_hashing(source, partial) != sha:
            # Still being written (a download, an export): the set would be recorded under
            # the hash of one version and indexed from another.
            raise HashSetError(
                f"{shown(source)}: changed while it was being registered; register it again once complete"
            )
        partial.replace(kept)
    finally:
        partial.unlink(missing_ok=True)
    return True


def _copy_hashing(source: Path, target: Path) -> str:
    """Copy ``source`` to ``target`` in one pass, returning the SHA-256 of what was copied."""
    digest = hashlib.sha256()
    with source.open("rb") as src, target.open("wb") as out:
        while block := src.read(COPY_BLOCK):
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


def rebuild_index(record: HashSetRecord, settings: Settings) -> None:
    """Build a registered hash set's index (and its filter) again from its kept copy, which
    must still be the file registered (it is hashed again): an index is derived, and a backup
    may leave it out, or a disk fault damage it."""
    store, source = settings.artifact(record.store_path), settings.artifact(record.source_path)
    if file_sha256(source) != record.sha256:  # before minutes of indexing the wrong file
        raise HashSetError(f"{shown(source)}: no longer the file registered (its SHA-256 differs)")
    discard_store(store)
    # The kept copy is private: nothing writes it while it is indexed, so it is hashed once.
    info = load_hashset(source, store.parent, fmt=record.format, known_sha256=record.sha256)
    if Path(info.store) != store or info.entries != record.entries:  # a reader or store changed since
        discard_store(info.store)
        raise HashSetError(
            f"the kept copy indexes as {info.entries:,} digests in {shown(info.store)}, where "
            f"{record.entries:,} in {shown(store)} were registered"
        )


def remove_leftovers(settings: Settings, now: float | None = None) -> None:
    """Remove what registrations killed half way left behind (see ``leftovers``): staged rule
    folders, partial copies of hash sets, indexes and filters being built."""
    base = Path(settings.artifact_dir)
    remove_stale(
        itertools.chain(
            base.glob("rules/.registering-*"),
            base.glob("hashsets/sources/*/.*.copying-*"),
            base.glob("hashsets/index/*.building"),
        ),
        now,
    )


def hashset_info(record: HashSetRecord, settings: Settings) -> HashSetInfo:
    return HashSetInfo(
        record.name,
        HashSetKind(record.kind),
        record.format,
        str(settings.artifact(record.source_path)),
        record.sha256,
        record.entries,
        str(settings.artifact(record.store_path)),
    )


def register_ruleset(
    session: Session, ctx: Context, settings: Settings, source: Path, name: str | None = None
) -> RuleSetRecord:
    """Compile the rules (refused if they do not), keep a copy, record their hash. A large
    set takes seconds to compile, so the session's read transaction is ended first (see
    ``register_hashset``)."""
    if ctx.actor is not None:
        ctx.require(Role.admin)
    remove_leftovers(settings)
    end_read_transaction(session)
    compiled = compile_rules([source])  # refuses a path that is neither a file nor a folder
    if source.is_file() and source.suffix.lower() not in RULE_SUFFIXES:
        # Kept in a folder, it would be passed over there like any such file in a folder.
        *others, last = sorted(RULE_SUFFIXES)
        raise RulesError(f"a rule file's name must end in {', '.join(others)} or {last}")
    _refuse_registered(session, RuleSetRecord, compiled.sha256, "rule set")
    end_read_transaction(session)  # the kept copy is compiled too
    target = Path(settings.artifact_dir) / "rules" / compiled.sha256
    kept = _keep_rules(source, target, compiled)
    record = RuleSetRecord(
        name=name or source.name,
        sha256=compiled.sha256,
        path=settings.artifact_name(target),
        files=kept,
        rule_count=compiled.rule_count,
        created_by=ctx.actor_id,
    )
    _add_unless_registered(session, ctx, record, "ruleset.register", "rule set")
    return record


def _keep_rules(source: Path, target: Path, compiled: RuleSet) -> list[str]:
    """Copy the rule files of ``source`` and the files they include into ``target`` as they
    are laid out: a folder's sub-folders are kept, since two vendors' sets may each have an
    ``index.yar``, includes are relative to the including file, and the files' order is part
    of the hash. They are copied to a private folder first and compiled there, so that a file
    saved meanwhile is refused rather than kept under the hash of another version; then each
    is renamed into place, whole (small files: always written afresh). Returns the paths of
    the rule files given, inside ``target``, in the order they are compiled."""
    base = source if source.is_dir() else source.parent
    given = [Path(f).relative_to(base) for f in compiled.files]
    included = [Path(f).relative_to(base.resolve()) for f in compiled.included]
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".registering-"))
    try:
        for inside in [*given, *included]:
            (staging / inside).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(base / inside, staging / inside)
        if compile_rules([staging / inside for inside in given], root=staging).sha256 != compiled.sha256:
            raise RulesError(
                f"{shown(source)}: changed while it was being registered; register it again once saved"
            )
        for copy in sorted(p for p in staging.rglob("*") if p.is_file()):
            inside = copy.relative_to(staging)
            (target / inside).parent.mkdir(parents=True, exist_ok=True)
            copy.replace(target / inside)
        return [inside.as_posix() for inside in given]
    finally:
        shutil.rmtree(staging, ignore_errors=True)


_compiled: dict[str, RuleSet] = {}


def load_ruleset(record: RuleSetRecord, settings: Settings, fresh: bool = False) -> RuleSet:
    """Compile a registered rule set once per process and check it is what was registered
    (``fresh``: again from its kept copy, though this process has it already)."""
    if fresh or record.sha256 not in _compiled:
        kept = settings.artifact(record.path)
        ruleset = compile_rules([kept / name for name in record.files], root=kept)
        if ruleset.sha256 != record.sha256:
            raise RulesError(f"rule set #{record.id} on disk no longer matches its registered hash")
        _compiled[record.sha256] = ruleset
    return _compiled[record.sha256]


def set_active(session: Session, ctx: Context, record: HashSetRecord | RuleSetRecord, active: bool) -> None:
    """Take a set out of use for new runs, or back into it; audited. Runs already queued keep
    what they were given. Sets are never deleted: past runs name them."""
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


def ruleset_in_use(session: Session) -> int | None:
    """The rule set a new run uses unless told otherwise: the newest active one."""
    return session.exec(
        select(RuleSetRecord.id).where(col(RuleSetRecord.active)).order_by(col(RuleSetRecord.id).desc())
    ).first()


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
