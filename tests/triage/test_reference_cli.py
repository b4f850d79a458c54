"""`triage hashsets` and `triage rules` on the command line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from triage.cli import app as cli
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
    assert result.exit_code == 0 and "1 rules" in result.output, result.output
    broken = tmp_path / "broken.yar"
    broken.write_text("rule { nope")
    result = runner.invoke(cli, ["rules", "add", str(broken)])
    assert result.exit_code == 1 and "compile" in result.output
    assert "r.yar" in runner.invoke(cli, ["rules", "list"]).output


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
