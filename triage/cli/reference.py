"""``triage hashsets`` and ``triage rules``: admins manage the reference sets runs use."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table

from triage import registry
from triage.cli.output import command_group, console, counted, err, fail, hashset_progress
from triage.cli.types import RowIdArgument
from triage.context import system_context
from triage.db import make_engine, session_scope
from triage.errors import TriageError
from triage.settings import get_settings

hashsets_app = command_group("Hash sets (known-bad: VICS, CAID, lists; known-good: NSRL).")
rules_app = command_group("YARA rule sets.")


@hashsets_app.command("add")
def hashsets_add(
    path: Path,
    name: Annotated[str | None, typer.Option(help="default: the file name")] = None,
    kind: Annotated[str | None, typer.Option(help="known_bad or known_good (default: by format)")] = None,
) -> None:
    """Validate, index and register a hash set file.

    Indexing takes minutes for a set of NSRL size; on a terminal its progress is shown.
    """
    settings = get_settings()
    settings.check_artifact_dir()
    try:
        # Indexing a set of NSRL size takes minutes: a terminal shows how far it has got.
        with (
            Progress(
                SpinnerColumn(),
                TextColumn("{task.description}", markup=False),
                console=err,
                transient=True,
                disable=not err.is_terminal,  # not even a blank line when not a terminal
            ) as bar,
            session_scope(make_engine(settings.database_url)) as session,
        ):
            task = bar.add_task(f"reading {path.name}", total=None)
            told = hashset_progress(path.name, lambda text: bar.update(task, description=text))
            record = registry.register_hashset(session, system_context(), settings, path, name, kind, told)
    except (TriageError, ValueError) as exc:
        raise fail(str(exc)) from None
    console.print(
        f"hash set #{record.id} {record.name!r}: {record.format}, {record.kind}, "
        f"{record.entries} hashes, sha256 {record.sha256}"
    )


@hashsets_app.command("list")
def hashsets_list() -> None:
    """List registered hash sets."""
    with session_scope(make_engine(get_settings().database_url)) as session:
        table = Table("id", "name", "kind", "format", "entries", "active", "sha256")
        for r in registry.list_hashsets(session):
            table.add_row(
                str(r.id),
                r.name,
                r.kind,
                r.format,
                str(r.entries),
                "yes" if r.active else "no",
                r.sha256[:16],
            )
    console.print(table)


@hashsets_app.command("deactivate")
def hashsets_deactivate(hashset_id: RowIdArgument) -> None:
    """Stop new runs using a hash set (runs already queued keep it; audited)."""
    _set_active("hashsets", hashset_id, False)


@hashsets_app.command("activate")
def hashsets_activate(hashset_id: RowIdArgument) -> None:
    """Let new runs use a deactivated hash set again (audited)."""
    _set_active("hashsets", hashset_id, True)


def _set_active(kind: str, set_id: int, active: bool) -> None:
    settings = get_settings()
    try:
        with session_scope(make_engine(settings.database_url)) as session:
            get = registry.get_hashset if kind == "hashsets" else registry.get_ruleset
            record = get(session, set_id)
            registry.set_active(session, system_context(), record, active)
            in_use = registry.ruleset_in_use(session)
    except TriageError as exc:
        raise fail(str(exc)) from None
    what = "hash set" if kind == "hashsets" else "rule set"
    done = f"{what} #{set_id} {record.name!r} {'activated' if active else 'deactivated'}"
    if kind == "rules":  # one rule set a run: say which new runs will use
        done += f"; new runs use {f'rule set #{in_use}' if in_use is not None else 'no rules'}"
    console.print(done)


@rules_app.command("add")
def rules_add(path: Path, name: Annotated[str | None, typer.Option()] = None) -> None:
    """Compile and register a YARA rule file or folder (refused if it does not compile)."""
    settings = get_settings()
    settings.check_artifact_dir()
    try:
        with session_scope(make_engine(settings.database_url)) as session:
            record = registry.register_ruleset(session, system_context(), settings, path, name)
            rules, files = counted(record.rule_count, "rule"), counted(len(record.files), "file")
            console.print(
                f"rule set #{record.id} {record.name!r}: {rules} in {files}, sha256 {record.sha256}",
                soft_wrap=True,
            )
    except TriageError as exc:
        raise fail(str(exc)) from None


@rules_app.command("list")
def rules_list() -> None:
    """List registered rule sets."""
    with session_scope(make_engine(get_settings().database_url)) as session:
        table = Table("id", "name", "rules", "files", "active", "new runs use it", "sha256")
        in_use = registry.ruleset_in_use(session)
        for r in registry.list_rulesets(session):
            table.add_row(
                str(r.id),
                r.name,
                str(r.rule_count),
                str(len(r.files)),
                "yes" if r.active else "no",
                "yes" if r.id == in_use else "no",
                r.sha256[:16],
            )
    console.print(table)


@rules_app.command("deactivate")
def rules_deactivate(ruleset_id: RowIdArgument) -> None:
    """Stop new runs using a rule set; they use the newest active one (audited)."""
    _set_active("rules", ruleset_id, False)


@rules_app.command("activate")
def rules_activate(ruleset_id: RowIdArgument) -> None:
    """Make a deactivated rule set eligible again: new runs use the newest active one
    (audited)."""
    _set_active("rules", ruleset_id, True)
