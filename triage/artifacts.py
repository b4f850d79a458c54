"""Whether every file the database names is still there, as it was recorded: the kept copies
of hash sets and rule sets, the hash sets' indexes, each triage run's file listing and DFXML,
and the evidence images of exhibits still in work. For after a restore from backup, a move
(of the evidence store too) or a disk fault (``triage db check``); runs would otherwise fail
one by one, or their results answer 404, with nothing saying why."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session, col, select

from triage import registry
from triage.analysis.hashsets import HashSetStore
from triage.analysis.hashsets.store import file_sha256
from triage.db import end_read_transaction
from triage.errors import HashSetError, RulesError
from triage.evidence.paths import shown
from triage.models.exhibits import Exhibit, ExhibitState
from triage.models.images import EvidenceImage
from triage.models.runs import HashSetRecord, TriageRun
from triage.settings import Settings


@dataclass(frozen=True)
class Problem:
    what: str  # "hash set #3 (nsrl.db)"
    problem: str


@dataclass
class Report:
    checked: int = 0  # records whose files were looked at
    problems: list[Problem] = field(default_factory=list)
    rebuilt: list[str] = field(default_factory=list)  # hash sets whose index was built again

    def add(self, what: str, problem: str) -> None:
        self.problems.append(Problem(what, problem))


def check(
    session: Session,
    settings: Settings,
    rehash: bool = False,
    repair: bool = False,
    told: Callable[[str], None] | None = None,
) -> Report:
    """Check every recorded artifact. ``rehash``: also hash each hash set's kept copy against
    its registered SHA-256 (gigabytes at NSRL size); rule sets are always compiled and hashed
    (they are small). ``repair``: build a hash set's missing or damaged index again from its
    kept copy (an index is derived: a backup may leave it out). ``told`` hears what is being
    checked, for a progress line."""
    report = Report()
    hashsets, rulesets = registry.list_hashsets(session), registry.list_rulesets(session)
    with_results = select(TriageRun).where(
        col(TriageRun.listing_path).is_not(None) | col(TriageRun.dfxml_path).is_not(None)
    )
    finished = list(session.exec(with_results.order_by(col(TriageRun.id))))
    in_work = list(
        session.exec(
            select(EvidenceImage, Exhibit.reference)
            .join(Exhibit, col(Exhibit.id) == EvidenceImage.exhibit_id)
            .where(col(Exhibit.state).not_in(DONE_WITH))
            .order_by(col(EvidenceImage.id))
        )
    )
    # The checks read files, for minutes when an index is built again: not inside a
    # transaction, which on SQLite holds every writer off (see ``end_read_transaction``).
    end_read_transaction(session)
    for record in hashsets:
        if told:
            told(f"hash set #{record.id}")
        _check_hashset(record, settings, rehash, report, repair)
    for ruleset in rulesets:
        if told:
            told(f"rule set #{ruleset.id}")
        report.checked += 1
        try:
            registry.load_ruleset(ruleset, settings, fresh=True)
        except (RulesError, OSError) as exc:
            report.add(f"rule set #{ruleset.id} ({ruleset.name})", str(exc))
    for run in finished:
        report.checked += 1
        for label, name in (("file listing", run.listing_path), ("DFXML", run.dfxml_path)):
            if name and not (found := settings.artifact(name)).is_file():
                report.add(f"triage run #{run.id}", f"its {label} is missing: {shown(found)}")
    for image, exhibit in in_work:
        report.checked += 1
        missing = [segment for segment in image.segments or [image.path] if not Path(segment).is_file()]
        if missing:
            report.add(
                f"image #{image.id} of exhibit {exhibit}",
                f"{_segments(missing)} not there (is the evidence store mounted?): {shown(missing[0])}",
            )
    return report


# Exhibits whose images need not be there any more: examined, handed back or destroyed.
DONE_WITH = (ExhibitState.examined, ExhibitState.returned, ExhibitState.disposed)


def _segments(missing: list[str]) -> str:
    return "its file is" if len(missing) == 1 else f"{len(missing)} of its segments are"


def _check_hashset(
    record: HashSetRecord, settings: Settings, rehash: bool, report: Report, repair: bool
) -> None:
    report.checked += 1
    what = f"hash set #{record.id} ({record.name})"
    source = settings.artifact(record.source_path)
    if not source.is_file():
        report.add(what, f"its kept copy is missing: {shown(source)}")
    elif rehash and file_sha256(source) != record.sha256:
        report.add(what, f"its kept copy no longer has the registered SHA-256: {shown(source)}")
    problem = _index_problem(record, settings.artifact(record.store_path))
    if problem is None:
        return
    if repair and source.is_file():
        try:
            registry.rebuild_index(record, settings)
        except HashSetError as exc:
            problem = f"{problem}; not rebuilt: {exc}"
        else:
            report.rebuilt.append(what)
            return
    report.add(what, problem)


def _index_problem(record: HashSetRecord, store: Path) -> str | None:
    if not store.is_file():
        return f"its index is missing (runs that use it fail): {shown(store)}"
    try:
        opened = HashSetStore(store)
        try:
            entries = opened.count()
        finally:
            opened.close()
    except sqlite3.DatabaseError as exc:
        return f"its index cannot be read ({exc}): {shown(store)}"
    if entries != record.entries:
        return f"its index holds {entries:,} digests, registered with {record.entries:,}"
    return None
