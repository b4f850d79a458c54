"""Registering hash sets and rule sets: duplicates, and two admins registering at once."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from triage import leftovers, registry
from triage.analysis.hashsets import HashSetInfo
from triage.context import system_context
from triage.db import session_scope
from triage.errors import ConflictError, HashSetError, RulesError
from triage.models.runs import HashSetRecord, RuleSetRecord
from triage.settings import Settings

BODY = "d41d8cd98f00b204e9800998ecf8427e  empty\n"


def _register(engine: Engine, settings: Settings, source: Path) -> HashSetRecord:
    with session_scope(engine) as session:
        return registry.register_hashset(session, system_context(), settings, source)


def _kept(settings: Settings) -> list[str]:
    sources = Path(settings.artifact_dir) / "hashsets" / "sources"
    return sorted(p.name for p in sources.glob("*/*"))


def test_a_duplicate_under_another_name_is_refused_before_it_is_copied_or_indexed(
    engine: Engine, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "nsrl.txt", tmp_path / "renamed.txt"
    first.write_text(BODY)
    second.write_text(BODY)
    record = _register(engine, settings, first)
    indexed: list[Path] = []
    monkeypatch.setattr(registry, "load_hashset", lambda source, *a, **k: indexed.append(source))
    with pytest.raises(ConflictError, match=rf"registered already as #{record.id} \(nsrl.txt\)"):
        _register(engine, settings, second)
    assert indexed == [] and _kept(settings) == ["nsrl.txt"]


def _registered_first(
    engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch, **theirs: Any
) -> None:
    """Another admin's registration of the same content commits first (``theirs`` overrides
    fields of their record). On PostgreSQL it lands between this one's duplicate check and
    its insert, where only the unique content hash can refuse it. On SQLite the check's
    transaction holds the write lock until the insert, so the latest it can land is while
    this one indexes or compiles."""
    if engine.dialect.name == "sqlite":
        for name in ("load_hashset", "compile_rules"):
            monkeypatch.setattr(
                registry, name, _then_theirs(engine, settings, getattr(registry, name), theirs)
            )
        return
    real = registry.audit.add_created

    def racing(session: Session, ctx: Any, record: Any, *args: Any) -> None:
        _commit_theirs(engine, record, theirs)
        real(session, ctx, record, *args)

    monkeypatch.setattr(registry.audit, "add_created", racing)


def _then_theirs(
    engine: Engine, settings: Settings, real: Callable[..., Any], theirs: dict[str, Any]
) -> Callable[..., Any]:
    def working(*args: Any, **kwargs: Any) -> Any:
        done = real(*args, **kwargs)
        if isinstance(done, HashSetInfo):
            _commit_theirs(
                engine,
                HashSetRecord(
                    source_path=settings.artifact_name(done.source),
                    store_path=settings.artifact_name(done.store),
                    sha256=done.source_sha256,
                    name="",
                    kind=done.kind.value,
                    format=done.format,
                    entries=done.entries,
                ),
                theirs,
            )
        else:
            _commit_theirs(
                engine,
                RuleSetRecord(name="", sha256=done.sha256, path="x", files=[], rule_count=done.rule_count),
                theirs,
            )
        return done

    return working


def _commit_theirs(engine: Engine, like: HashSetRecord | RuleSetRecord, theirs: dict[str, Any]) -> None:
    with Session(engine) as other:
        other.add(type(like).model_validate({**like.model_dump(), "name": "theirs", **theirs}))
        other.commit()


@pytest.mark.parametrize("same_copy", [True, False], ids=["their record keeps the copy", "it does not"])
def test_the_same_set_registered_at_the_same_moment_is_a_conflict_not_a_fault(
    engine: Engine, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, same_copy: bool
) -> None:
    # Both pass the duplicate check; the unique content hash refuses the later insert. That
    # was an IntegrityError: a 500 from the API, a traceback from the CLI.
    source = tmp_path / "set.md5"
    source.write_text(BODY)
    _registered_first(
        engine, settings, monkeypatch, **({} if same_copy else {"source_path": str(tmp_path / "theirs")})
    )
    with pytest.raises(ConflictError, match=r"registered already as #\d+ \(theirs\)"):
        _register(engine, settings, source)
    with Session(engine) as session:
        assert [r.name for r in session.exec(select(HashSetRecord))] == ["theirs"]
    # The copy stays exactly when the registered set names it.
    assert _kept(settings) == (["set.md5"] if same_copy else [])


def test_a_copy_that_fails_half_way_leaves_nothing_to_be_taken_for_whole(
    engine: Engine, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A copy written in place and cut short (disk full, killed) would be found by the next
    # registration of the same content and indexed as if whole.
    source = tmp_path / "set.md5"
    source.write_text(BODY * 3)

    def cut_short(src: Path, dst: Path) -> str:
        Path(dst).write_text(BODY)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(registry, "_copy_hashing", cut_short)
    with pytest.raises(OSError, match="No space"):
        _register(engine, settings, source)
    sources = Path(settings.artifact_dir) / "hashsets" / "sources"
    assert [p for p in sources.rglob("*") if p.is_file()] == []
    monkeypatch.undo()
    assert _register(engine, settings, source).entries == 1


def test_the_same_rule_set_registered_at_the_same_moment_is_a_conflict(
    engine: Engine, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "r.yar"
    rules.write_text('rule one { strings: $a = "abc" condition: $a }')
    _registered_first(engine, settings, monkeypatch)
    with pytest.raises(ConflictError, match=r"rule set is registered already as #\d+ \(theirs\)"):  # noqa: PT012
        with session_scope(engine) as session:
            registry.register_ruleset(session, system_context(), settings, rules)
    with Session(engine) as session:
        assert [r.name for r in session.exec(select(RuleSetRecord))] == ["theirs"]


def test_a_rule_file_left_damaged_by_an_earlier_attempt_is_written_afresh(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    # A copy cut short (by the code before copies were renamed into place, or by a crash) must
    # not be taken for the rule file: a run would then find the set changed on disk.
    rules = tmp_path / "r.yar"
    rules.write_text('rule one { strings: $a = "abc" condition: $a }')
    compiled = registry.compile_rules([rules])
    damaged = Path(settings.artifact_dir) / "rules" / compiled.sha256 / "r.yar"
    damaged.parent.mkdir(parents=True)
    damaged.write_text("rule one { stri")
    with session_scope(engine) as session:
        record = registry.register_ruleset(session, system_context(), settings, rules)
    assert damaged.read_text() == rules.read_text()
    assert registry.load_ruleset(record, settings).sha256 == record.sha256


def test_a_kept_hash_set_copy_left_damaged_is_replaced_before_it_is_indexed(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    source = tmp_path / "set.md5"
    source.write_text(BODY * 2 + "0cc175b9c0f1b6a831c399e269772661  a\n")
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    damaged = Path(settings.artifact_dir) / "hashsets" / "sources" / sha / "set.md5"
    damaged.parent.mkdir(parents=True)
    damaged.write_text(BODY)  # cut short: one hash of the two
    record = _register(engine, settings, source)
    assert record.entries == 2 and damaged.read_bytes() == source.read_bytes()


def test_a_rule_folder_with_sub_folders_is_kept_as_it_was_compiled(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    # Two vendors' sets side by side, each with an index.yar, and files whose order under the
    # folder differs from their order by name: kept flat, one index.yar overwrote the other
    # and runs found the set "changed on disk".
    root = tmp_path / "rules"
    (root / "vendor_a").mkdir(parents=True)
    (root / "vendor_b").mkdir()
    (root / "vendor_a" / "index.yar").write_text('rule a { strings: $a = "aaa" condition: $a }')
    (root / "vendor_a" / "zeta.yar").write_text('rule z { strings: $z = "zzz" condition: $z }')
    (root / "vendor_b" / "index.yar").write_text('rule b { strings: $b = "bbb" condition: $b }')
    with session_scope(engine) as session:
        record = registry.register_ruleset(session, system_context(), settings, root)
    assert record.rule_count == 3
    registry._compiled.clear()  # as a worker process would: compiled from the kept copy
    assert registry.load_ruleset(record, settings).rule_count == 3


def test_a_rule_file_changed_while_it_is_registered_is_refused(
    engine: Engine, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "r.yar"
    rules.write_text('rule one { strings: $a = "abc" condition: $a }')
    real = registry.compile_rules

    def then_edited(paths: list[Path], **kwargs: Any) -> Any:
        compiled = real(paths, **kwargs)
        rules.write_text('rule one { strings: $a = "abd" condition: $a }')  # saved by an editor meanwhile
        return compiled

    monkeypatch.setattr(registry, "compile_rules", then_edited)
    with pytest.raises(RulesError, match=r"r\.yar: changed while it was being registered"):  # noqa: PT012
        with session_scope(engine) as session:
            registry.register_ruleset(session, system_context(), settings, rules)
    with Session(engine) as session:
        assert session.exec(select(RuleSetRecord)).first() is None
    kept = Path(settings.artifact_dir) / "rules"
    assert [p for p in kept.rglob("*") if p.is_file()] == []


def test_a_hash_set_changed_while_it_is_registered_is_refused(
    engine: Engine, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hashed, then copied and indexed: a file still being written (a download, an export)
    # would be recorded under the hash of one version while the store held another.
    source = tmp_path / "set.md5"
    source.write_text(BODY)
    real = registry.file_sha256

    def then_appended(path: Path) -> str:
        sha = real(path)
        if path == source:
            with source.open("a") as fh:
                fh.write("0cc175b9c0f1b6a831c399e269772661  a\n")
        return sha

    monkeypatch.setattr(registry, "file_sha256", then_appended)
    with pytest.raises(HashSetError, match=r"set\.md5: changed while it was being registered"):
        _register(engine, settings, source)
    with Session(engine) as session:
        assert session.exec(select(HashSetRecord)).first() is None
    assert _kept(settings) == []
    index = Path(settings.artifact_dir) / "hashsets" / "index"
    assert not index.exists() or list(index.iterdir()) == []


def test_a_rule_file_is_kept_with_the_files_it_includes(
    engine: Engine, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An index that includes a sub-folder's files (as public sets are laid out): only the
    # index was kept, so runs could not compile it, or compiled whatever their current folder
    # held under that name.
    root = tmp_path / "public"
    (root / "malware").mkdir(parents=True)
    (root / "index.yar").write_text(
        'include "./malware/family.yar"\nrule idx { strings: $a = "idx" condition: $a }'
    )
    (root / "malware" / "family.yar").write_text('rule fam { strings: $a = "fam" condition: $a }')
    (root / "notes.txt").write_text("not a rule file: not kept")
    with session_scope(engine) as session:
        record = registry.register_ruleset(session, system_context(), settings, root / "index.yar")
    assert record.files == ["index.yar"] and record.rule_count == 2
    kept = settings.artifact(record.path)
    assert sorted(p.relative_to(kept).as_posix() for p in kept.rglob("*") if p.is_file()) == [
        "index.yar",
        "malware/family.yar",
    ]
    registry._compiled.clear()
    monkeypatch.chdir(tmp_path)
    (root / "malware" / "family.yar").unlink()  # the admin's copy is gone: the kept one is used
    assert registry.load_ruleset(record, settings).rule_count == 2


def test_a_registration_sweeps_what_killed_ones_left(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    # An installation run from the command line alone never starts the API, whose start-up
    # sweeps these too: a partial copy of a set of NSRL size stayed for good.
    partial = Path(settings.artifact_dir) / "hashsets" / "sources" / "ab" / ".nsrl.txt.copying-1-2"
    partial.parent.mkdir(parents=True)
    partial.write_text("x")
    old = time.time() - leftovers.STALE_SECONDS - 60
    os.utime(partial, (old, old))
    source = tmp_path / "set.md5"
    source.write_text(BODY)
    _register(engine, settings, source)
    assert not partial.exists()


def test_the_kept_copy_is_not_read_again_to_hash_it(
    engine: Engine, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It was hashed as it was copied; hashing it again before and after indexing read a set
    # of NSRL size (gigabytes) twice more.
    from triage.analysis.hashsets import store

    hashed: list[Path] = []
    real = store.file_sha256

    def counting(path: Path) -> str:
        hashed.append(path)
        return real(path)

    monkeypatch.setattr(store, "file_sha256", counting)
    source = tmp_path / "set.md5"
    source.write_text(BODY)
    record = _register(engine, settings, source)
    assert hashed == [] and record.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
