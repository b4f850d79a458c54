"""Compiling YARA rule sets: the files they include, and what the set's hash covers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from triage.analysis.yarascan import RuleSet, Scanner, compile_rules
from triage.errors import RulesError


def _rule(name: str, text: str, include: str = "") -> str:
    head = f'include "{include}"\n' if include else ""
    return f'{head}rule {name} {{ strings: $a = "{text}" condition: $a }}\n'


@pytest.fixture
def public_set(tmp_path: Path) -> Path:
    """A public set's layout: an index that includes files of a sub-folder, which include
    files relative to themselves."""
    root = tmp_path / "rules"
    (root / "malware" / "common").mkdir(parents=True)
    (root / "index.yar").write_text(_rule("index", "idx", include="./malware/family.yar"))
    (root / "malware" / "family.yar").write_text(_rule("family", "fam", include="common/shared.yar"))
    (root / "malware" / "common" / "shared.yar").write_text(_rule("shared", "shr"))
    return root


@pytest.fixture
def elsewhere(tmp_path: Path) -> Iterator[Path]:
    """The process runs in another folder (a worker's is never the admin's), which holds a
    file of the same name as an include."""
    other = tmp_path / "elsewhere"
    (other / "malware").mkdir(parents=True)
    (other / "malware" / "family.yar").write_text(_rule("impostor", "imp"))
    before = Path.cwd()
    os.chdir(other)
    try:
        yield other
    finally:
        os.chdir(before)


def _matches(rules: RuleSet, data: bytes) -> set[str]:
    result = Scanner(rules).scan(data, path="/x", filetype="", size=len(data))
    return {m["rule"] for m in result.matches}


def test_includes_are_read_relative_to_the_including_file_not_the_current_folder(
    public_set: Path, elsewhere: Path
) -> None:
    # They were read relative to the current folder: refused ("can't open include file"),
    # or worse, compiled from another file of the same name there.
    rules = compile_rules([public_set / "index.yar"])
    assert rules.rule_count == 3
    assert _matches(rules, b"..idx..fam..shr..") == {"index", "family", "shared"}
    assert _matches(rules, b"imp") == set()
    assert [Path(f).relative_to(public_set.resolve()).as_posix() for f in rules.included] == [
        "malware/family.yar",
        "malware/common/shared.yar",
    ]


def test_an_included_file_is_part_of_the_sets_hash(public_set: Path) -> None:
    before = compile_rules([public_set / "index.yar"]).sha256
    (public_set / "malware" / "common" / "shared.yar").write_text(_rule("shared", "changed"))
    assert compile_rules([public_set / "index.yar"]).sha256 != before


def test_an_include_outside_the_rules_given_is_refused(public_set: Path, tmp_path: Path) -> None:
    (tmp_path / "outside.yar").write_text(_rule("outside", "out"))
    (public_set / "index.yar").write_text(_rule("index", "idx", include="../outside.yar"))
    with pytest.raises(
        RulesError, match=r"index\.yar: include '\.\./outside\.yar' is outside the rules given"
    ):
        compile_rules([public_set / "index.yar"])


def test_a_missing_include_names_the_file_that_includes_it(public_set: Path) -> None:
    (public_set / "malware" / "common" / "shared.yar").unlink()
    with pytest.raises(RulesError, match=r"family\.yar: include 'common/shared\.yar': no such file"):
        compile_rules([public_set])


def test_one_include_name_for_two_files(tmp_path: Path) -> None:
    # Two vendors' index files each include their own common.yar: fine. yara-python names a
    # file that includes more only by its include name, so if one of those included more,
    # which folder its includes are in could not be told: refused, not guessed.
    root = tmp_path / "rules"
    for vendor in ("a", "b"):
        (root / vendor).mkdir(parents=True)
        (root / vendor / "index.yar").write_text(_rule(f"{vendor}_index", vendor * 3, include="common.yar"))
        (root / vendor / "common.yar").write_text(_rule(f"{vendor}_common", vendor * 4))
    assert compile_rules([root]).rule_count == 4
    (root / "b" / "common.yar").write_text(_rule("b_common", "bbbb", include="more.yar"))
    (root / "b" / "more.yar").write_text(_rule("b_more", "bbbbb"))
    with pytest.raises(RulesError, match=r"include 'more\.yar' in 'common\.yar', which names 2 files"):
        compile_rules([root])


def test_a_file_that_another_includes_is_compiled_once(public_set: Path) -> None:
    # The folder of a public set: its index includes the other files, which are in the folder
    # too. Compiled on their own as well, every rule of theirs ran twice and matched twice.
    rules = compile_rules([public_set])
    assert [Path(f).name for f in rules.files] == ["index.yar"]
    assert rules.rule_count == 3
    result = Scanner(rules).scan(b"..fam..", path="/x", filetype="", size=7)
    assert [m["rule"] for m in result.matches] == ["family"]
    assert rules.sha256 == compile_rules([public_set / "index.yar"]).sha256


def test_a_link_in_a_rule_folder_to_a_file_outside_it_is_refused(public_set: Path, tmp_path: Path) -> None:
    # A folder given inside the reference roots must not bring in a file from elsewhere.
    (tmp_path / "outside.yar").write_text(_rule("outside", "out"))
    (public_set / "malware" / "linked.yar").symlink_to(tmp_path / "outside.yar")
    with pytest.raises(RulesError, match=r"linked\.yar: a link to a file outside .*rules"):
        compile_rules([public_set])


def test_a_link_inside_a_rule_folder_to_a_file_in_it_is_read(public_set: Path) -> None:
    (public_set / "alias.yar").symlink_to(public_set / "malware" / "common" / "shared.yar")
    assert compile_rules([public_set]).rule_count == 3


def test_a_rule_file_named_twice_is_compiled_once(tmp_path: Path) -> None:
    # Given twice, in its folder and by itself, or through a link: compiled once a name, and
    # every file it matched got each match that many times (9 hits for 3 files).
    rule = tmp_path / "rules" / "any.yar"
    rule.parent.mkdir()
    rule.write_text("rule any_file { condition: filesize > 0 }\n")
    (tmp_path / "link.yar").symlink_to(rule)
    rules = compile_rules([rule, rule.parent / "." / "any.yar", rule.parent, tmp_path / "link.yar"])
    assert [Path(f).name for f in rules.files] == ["any.yar"] and rules.rule_count == 1
    result = Scanner(rules).scan(b"x", path="/x", filetype="", size=1)
    assert [m["rule"] for m in result.matches] == ["any_file"]
    assert rules.sha256 == compile_rules([rule]).sha256


def test_a_compile_error_names_the_file_it_is_in(public_set: Path) -> None:
    # YARA numbers the line of rules given as text but not their file: with a folder of
    # hundreds, "line 1: undefined string" did not say where.
    (public_set / "zz_broken.yar").write_text('rule broken { strings: $a = "x" condition: $b }\n')
    with pytest.raises(
        RulesError, match=r'zz_broken\.yar: rules do not compile: line 1: undefined string "\$b"'
    ):
        compile_rules([public_set])


def test_a_module_this_yara_lacks_is_named(public_set: Path) -> None:
    # Public sets import "magic" or "cuckoo", which yara-python is built without; YARA then
    # reported 'invalid field name "mime_type"', with neither the file nor the module.
    (public_set / "malware" / "common" / "shared.yar").write_text(
        'import "magic"\nrule jpeg { condition: magic.mime_type() == "image/jpeg" }\n'
    )
    with pytest.raises(
        RulesError, match=r"shared\.yar: imports the YARA module 'magic', which this YARA does not"
    ):
        compile_rules([public_set])


def test_a_rule_file_whose_name_is_not_utf8_is_refused(public_set: Path) -> None:
    # Its name is hashed into the set's hash and recorded: it ended in a traceback.
    (public_set / os.fsdecode(b"r\xffle.yar")).write_text(_rule("odd", "odd"))
    with pytest.raises(RulesError, match=r"r\\xffle\.yar: the path is not UTF-8 text"):
        compile_rules([public_set])
