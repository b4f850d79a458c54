"""``triage queue`` and ``triage rescore``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from triage import queue
from triage.cli.output import console
from triage.db import make_engine, session_scope
from triage.settings import get_settings


def show_queue(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 30,
    reasons: Annotated[bool, typer.Option(help="show each score's factors")] = False,
) -> None:
    """The examination queue in priority order, with expected examination dates."""
    settings = get_settings()
    with session_scope(make_engine(settings.database_url)) as session:
        entries, total = queue.queue_entries(session, 0, limit)
        if not entries:
            console.print("Nothing is waiting for examination.")
            return
        table = Table("#", "case", "exhibit", "device", "score", "flags", "expected")
        for entry in entries:
            task, score = entry["task"], entry["score"]
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
                str(entry["position"]),
                entry["case"].crime_reference,
                entry["exhibit"].reference,
                task.device_type,
                f"{task.priority:.1f}",
                flags,
                str(entry["expected"] or queue.NO_PACE),
            )
            if reasons:
                for factor in score.factors:
                    table.add_row("", "", "", "", f"+{factor['points']}", factor["label"], "")
    console.print(table)
    if total > len(entries):
        console.print(f"The first {len(entries)} of {total} waiting (--limit shows more).")


def rescore() -> None:
    """Recompute every case's score now (the clocks move scores: restriction days, dates)."""
    settings = get_settings()
    queue.policy(settings.policy_path)  # a bad policy refuses before anything is written
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        queue.sweep(session)  # committed first: the rescore's writer rewrites the same tasks
    with session_scope(engine) as session:
        queue.lock_rescore(session, wait=True)  # after a scheduled rescore already running
        count = queue.rescore(session, policy_path=settings.policy_path)
    console.print(f"rescored {count} cases")
