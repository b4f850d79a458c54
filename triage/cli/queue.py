"""``triage queue`` and ``triage rescore``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlmodel import col, select

from triage import queue
from triage.db import make_engine, session_scope
from triage.models.cases import Case
from triage.models.exhibits import Exhibit
from triage.models.queue import CaseScore
from triage.settings import get_settings

console = Console()


def show_queue(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 30,
    reasons: Annotated[bool, typer.Option(help="show each score's factors")] = False,
) -> None:
    """The examination queue in priority order, with expected examination dates."""
    settings = get_settings()
    with session_scope(make_engine(settings.database_url)) as session:
        snapshot = queue.queue_snapshot(session)
        tasks = queue.positions(session)[:limit]
        cases = {
            c.id: c
            for c in session.exec(select(Case).where(col(Case.id).in_({t.case_id for t in tasks}))).all()
        }
        exhibits = {
            e.id: e
            for e in session.exec(
                select(Exhibit).where(col(Exhibit.id).in_({t.exhibit_id for t in tasks}))
            ).all()
        }
        scores = {s.case_id: s for s in session.exec(select(CaseScore)).all()}
        table = Table("#", "case", "exhibit", "device", "score", "flags", "expected")
        for task in tasks:
            position, expected = snapshot[task.id or 0]
            score = scores.get(task.case_id)
            flags = " ".join(
                f
                for f, on in (
                    ("PINNED", task.pinned),
                    ("HELD", task.held),
                    ("IIOC", task.needs_iioc_clearance),
                )
                if on
            )
            table.add_row(
                str(position),
                cases[task.case_id].crime_reference,
                exhibits[task.exhibit_id].reference,
                task.device_type,
                f"{task.priority:.1f}",
                flags,
                str(expected or "no recent pace"),
            )
            if reasons and score:
                for factor in score.factors:
                    table.add_row("", "", "", "", f"+{factor['points']}", factor["label"], "")
    console.print(table)


def rescore() -> None:
    """Recompute every case's score now (the clocks move scores: restriction days, dates)."""
    settings = get_settings()
    with session_scope(make_engine(settings.database_url)) as session:
        queue.sweep(session)
        count = queue.rescore(
            session, policy_path=str(settings.scoring_policy) if settings.scoring_policy else None
        )
    console.print(f"rescored {count} cases")
