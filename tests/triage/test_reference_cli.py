"""`triage hashsets` and `triage rules` on the command line."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from triage.cli import app as cli
from triage.models.runs import HashSetRecord, RuleSetRecord
from triage.settings import get_settings


@pytest.fixture
def runner(
    monkeypatch: pytest.MonkeyPatch, database_url: str, engine: Engine, tmp_path: Path
) -> Iterator[CliRunner]:
    monkeypatch.setenv("TRIAGE_DATABASE_URL", database_url)
    monkeypatch.setenv("TRIAGE_ARTIFACT_DIR", str(tmp_path / "artifacts"))
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_hash_sets_and_rules_are_added_and_listed(runner: CliRunner, tmp_path: Path) -> None:
    good = tmp_path / "nsrl.txt"
    good.write_text("d41d8cd98f00b204e9800998ecf8427e\n")
    result = runner.invoke(cli, ["hashsets", "add", str(good), "--kind", "known_good", "--name", "filter"])
    assert result.exit_code == 0, result.output
    assert "known_good" in result.output and "1 hashes" in result.output
    assert "filter" in runner.invoke(cli, ["hashsets", "list"]).output
    again = runner.invoke(cli, ["hashsets", "add", str(good)])
    assert again.exit_code == 1 and "registered already" in again.output
    assert again.output.count("\n") == 1, again.output  # one line, nothing else on a pipe

    rules = tmp_path / "r.yar"
    rules.write_text('rule one { strings: $a = "abc" condition: $a }')
    result = runner.invoke(cli, ["rules", "add", str(rules)])
    assert result.exit_code == 0 and "1 rule in 1 file" in result.output, result.output
    broken = tmp_path / "broken.yar"
    broken.write_text("rule { nope")
    result = runner.invoke(cli, ["rules", "add", str(broken)])
    assert result.exit_code == 1 and "compile" in result.output
    assert "r.yar" in runner.invoke(cli, ["rules", "list"]).output


def test_names_and_paths_are_printed_as_written_not_read_as_rich_markup(
    runner: CliRunner, tmp_path: Path
) -> None:
    # Rich read "[/x]" in a hash set's name as a closing tag: registering it ended in a
    # MarkupError traceback, and so did every `triage hashsets list` after; "[bold]" vanished
    # into a style. A refusal naming such a path was a traceback too.
    name = "NSRL [/x] [bold]2026"
    good = tmp_path / "set.md5"
    good.write_text("d41d8cd98f00b204e9800998ecf8427e\n")
    added = runner.invoke(cli, ["hashsets", "add", str(good), "--name", name])
    assert added.exit_code == 0 and name in added.output, added.output
    listed = runner.invoke(cli, ["hashsets", "list"])  # the table folds the name at a space
    assert listed.exit_code == 0 and "NSRL [/x]" in listed.output and "[bold]2026" in listed.output
    again = runner.invoke(cli, ["hashsets", "add", str(good)])
    assert (
        again.exit_code == 1
        and again.output == f"error: this hash set is registered already as #1 ({name})\n"
    )
    absent = tmp_path / "no[/such].md5"
    refused = runner.invoke(cli, ["hashsets", "add", str(absent)])
    assert refused.exit_code == 1 and refused.output.count("\n") == 1 and "no[/such].md5" in refused.output


@pytest.mark.parametrize(
    "args",
    [
        ["hashsets", "deactivate", str(2**31)],
        ["rules", "activate", str(10**20)],
        ["outsource", str(2**31), "--vendor", "1", "--as", "manager"],
        ["outsource", "1", "--vendor", str(2**63), "--as", "manager"],
    ],
)
def test_ids_past_the_databases_range_are_refused_as_they_are_parsed(
    runner: CliRunner, args: list[str]
) -> None:
    # They reached the database: an OverflowError traceback on SQLite, not "not found".
    result = runner.invoke(cli, args)
    said = " ".join(result.output.replace("│", " ").split())  # the words, out of typer's box
    assert result.exit_code == 2 and "less than or equal to 2147483647" in said, result.output


def test_paths_that_cannot_be_looked_up_are_refused_in_one_line(runner: CliRunner, tmp_path: Path) -> None:
    too_long = str(tmp_path / ("a" * 300))
    for command in (
        ["hashsets", "add", too_long],
        ["rules", "add", too_long],
        ["hashsets", "add", str(tmp_path)],
    ):
        result = runner.invoke(cli, command)
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
        assert "cannot be looked up" in result.output or "not a regular file" in result.output, result.output


def test_sets_are_taken_out_of_use_and_back_from_the_command_line(
    runner: CliRunner, tmp_path: Path, engine: Engine
) -> None:
    good = tmp_path / "nsrl.txt"
    good.write_text("d41d8cd98f00b204e9800998ecf8427e\n")
    assert runner.invoke(cli, ["hashsets", "add", str(good)]).exit_code == 0
    for name in ("old", "new"):
        (tmp_path / f"{name}.yar").write_text(f'rule {name} {{ strings: $a = "{name}" condition: $a }}')
        assert runner.invoke(cli, ["rules", "add", str(tmp_path / f"{name}.yar")]).exit_code == 0
    with Session(engine) as session:
        (hashset,) = session.exec(select(HashSetRecord)).all()
        old, new = session.exec(select(RuleSetRecord).order_by(col(RuleSetRecord.id))).all()

    result = runner.invoke(cli, ["hashsets", "deactivate", str(hashset.id)])
    assert result.exit_code == 0 and f"hash set #{hashset.id} 'nsrl.txt' deactivated" in result.output
    assert re.search(rf"{hashset.id}\s.*\bno\b", runner.invoke(cli, ["hashsets", "list"]).output)
    result = runner.invoke(cli, ["rules", "deactivate", str(new.id)])
    assert result.exit_code == 0 and f"new runs use rule set #{old.id}" in result.output, result.output
    again = runner.invoke(cli, ["hashsets", "add", str(good)])
    assert again.exit_code == 1 and "inactive: activate it instead" in again.output

    assert "activated" in runner.invoke(cli, ["hashsets", "activate", str(hashset.id)]).output
    result = runner.invoke(cli, ["rules", "activate", str(new.id)])
    assert result.exit_code == 0 and f"new runs use rule set #{new.id}" in result.output
    listing = runner.invoke(cli, ["rules", "list"]).output
    assert re.search(rf"{new.id}\s.*yes\s.*yes", listing) and re.search(rf"{old.id}\s.*yes\s.*no", listing)
    with Session(engine) as session:
        assert session.get(HashSetRecord, hashset.id).active  # type: ignore[union-attr]

    missing = runner.invoke(cli, ["rules", "activate", "999999"])
    assert missing.exit_code == 1 and "rule set 999999 not found" in missing.output


def test_db_check_finds_every_recorded_file_missing_or_changed(
    runner: CliRunner, engine: Engine, tmp_path: Path
) -> None:
    # After a restore, a move or a disk fault, runs failed one by one (or results answered
    # 404) with nothing saying which files were gone.
    from tests.conftest import make_account
    from tests.factories import case_with_exhibit, row_id
    from triage.models.accounts import Role
    from triage.models.exhibits import ExhibitState
    from triage.models.images import EvidenceImage
    from triage.models.runs import RunState, TriageRun

    listed = tmp_path / "bad.md5"
    listed.write_text("d41d8cd98f00b204e9800998ecf8427e\n" * 2 + "0" * 32 + "\n")
    rules = tmp_path / "r.yar"
    rules.write_text('rule one { strings: $a = "abc" condition: $a }')
    assert runner.invoke(cli, ["hashsets", "add", str(listed)]).exit_code == 0
    assert runner.invoke(cli, ["rules", "add", str(rules)]).exit_code == 0
    listing, dfxml = tmp_path / "files.jsonl", tmp_path / "dfxml.xml"
    listing.write_text("{}\n")
    dfxml.write_text("<dfxml/>")
    evidence = tmp_path / "laptop.dd"
    evidence.write_bytes(b"\0" * 512)
    manager = make_account(engine, "manager", Role.manager)
    ioc = row_id(make_account(engine, "ioc", Role.investigator))
    with Session(engine) as s:
        _, exhibit = case_with_exhibit(s, ioc, "CR/1")
        _, done_with = case_with_exhibit(s, ioc, "CR/2", exhibit_state=ExhibitState.returned)
        image = EvidenceImage(
            exhibit_id=row_id(exhibit),
            path=str(evidence),
            format="raw",
            size_bytes=1,
            registered_by=row_id(manager),
        )
        s.add(image)
        # Handed back: its image need not be kept, and is not looked for.
        s.add(
            EvidenceImage(
                exhibit_id=row_id(done_with),
                path="/gone.dd",
                format="raw",
                size_bytes=1,
                registered_by=row_id(manager),
            )
        )
        s.flush()
        s.add(
            TriageRun(
                exhibit_id=row_id(exhibit),
                image_id=row_id(image),
                state=RunState.succeeded,
                listing_path=str(listing),
                dfxml_path=str(dfxml),
            )
        )
        s.commit()
        kept_set = s.exec(select(HashSetRecord)).one()
        kept_rules = s.exec(select(RuleSetRecord)).one()

    whole = runner.invoke(cli, ["db", "check", "--rehash"])
    assert whole.exit_code == 0 and "every recorded file is in place (4 records checked)" in whole.output

    kept = get_settings().artifact  # the database names them relative to the artifact folder
    kept(kept_set.source_path).write_text("0" * 32 + "\n")  # changed on disk
    (kept(kept_rules.path) / kept_rules.files[0]).write_text("rule two { condition: true }")
    dfxml.unlink()
    evidence.unlink()  # the evidence store not mounted, say
    quick = runner.invoke(cli, ["db", "check"])  # the kept copy's content is not re-hashed
    assert quick.exit_code == 1 and "3 problems in 4 records checked" in quick.output, quick.output
    assert "no longer matches its registered hash" in quick.output and "DFXML is missing" in quick.output
    assert "image #1 of exhibit E/1: its file is not there (is the evidence store mounted?)" in quick.output
    full = runner.invoke(cli, ["db", "check", "--rehash"])
    assert full.exit_code == 1 and "4 problems" in full.output and "registered SHA-256" in full.output
    kept(kept_set.store_path).unlink()
    gone = runner.invoke(cli, ["db", "check"])
    assert "its index is missing" in gone.output and "4 problems" in gone.output
    refused = runner.invoke(cli, ["db", "check", "--repair"])  # not from a kept copy that changed
    assert (
        refused.exit_code == 1
        and "not rebuilt" in refused.output
        and "no longer the file registered" in refused.output
    )
    assert not kept(kept_set.store_path).exists()


def test_db_check_repair_builds_a_missing_or_damaged_index_again(
    runner: CliRunner, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An index is derived from the kept copy: a backup may leave it out, a disk fault damage it.
    listed = tmp_path / "bad.md5"
    listed.write_text("d41d8cd98f00b204e9800998ecf8427e\n" + "0" * 32 + "\n")
    assert runner.invoke(cli, ["hashsets", "add", str(listed)]).exit_code == 0
    with Session(engine) as s:
        store = get_settings().artifact(s.exec(select(HashSetRecord)).one().store_path)
    for damage in (store.unlink, lambda: store.write_bytes(b"not a database" * 100)):
        damage()
        assert runner.invoke(cli, ["db", "check"]).exit_code == 1
        repaired = runner.invoke(cli, ["db", "check", "--repair"])
        assert repaired.exit_code == 0 and "index built again from its kept copy" in repaired.output, (
            repaired.output
        )
        assert runner.invoke(cli, ["db", "check"]).exit_code == 0
    hits = runner.invoke(cli, ["db", "check"])
    assert "every recorded file is in place (1 record checked)" in hits.output
    # An index of NSRL size takes minutes to build: not inside a transaction, which on
    # SQLite holds every writer (the API, the workers) off for as long.
    from tests.api.helpers import probing
    from triage import registry

    probes: list[bool] = []
    monkeypatch.setattr(registry, "rebuild_index", probing(registry.rebuild_index, engine, probes))
    store.unlink()
    assert runner.invoke(cli, ["db", "check", "--repair"]).exit_code == 0
    assert probes == [True]
