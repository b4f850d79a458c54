"""``triage backlog`` and ``triage vendors``: the figures a manager reads."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlmodel import col, select

from triage import backlog as backlog_figures
from triage.db import make_engine, session_scope
from triage.models.types import utcnow
from triage.models.vendors import Vendor
from triage.settings import get_settings

console = Console()


def backlog(
    csv: Annotated[bool, typer.Option("--csv", help="CSV instead of JSON")] = False,
    extra_examiners: Annotated[int, typer.Option(min=0, help="what-if: more examiners")] = 0,
    extra_outsourcing: Annotated[
        int, typer.Option(min=0, help="what-if: more exhibits outsourced a month")
    ] = 0,
) -> None:
    """Backlog figures and the forecast of clearance (JSON, or CSV for the figures)."""
    with session_scope(make_engine(get_settings().database_url)) as session:
        now = utcnow()
        figures = backlog_figures.figures(session, now)
        if csv:
            typer.echo(backlog_figures.figures_csv(figures), nl=False)
            return
        figures["forecast"] = backlog_figures.forecast(session, now, extra_examiners, extra_outsourcing)
    typer.echo(json.dumps(figures, indent=2, default=str))


def vendors() -> None:
    """Vendors with their accreditation, capacity and status."""
    with session_scope(make_engine(get_settings().database_url)) as session:
        table = Table("id", "name", "status", "accredited until", "IIOC", "per month", "turnaround")
        for v in session.exec(select(Vendor).order_by(col(Vendor.id))).all():
            table.add_row(
                str(v.id),
                v.name,
                str(v.status),
                str(v.accreditation_expires),
                "yes" if v.iioc_authorised else "no",
                str(v.capacity_per_month),
                f"{v.turnaround_days} d",
            )
    console.print(table)
