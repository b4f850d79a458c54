"""``triage backlog`` and ``triage vendors``: the figures a manager reads."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlmodel import col, select

from triage import backlog as backlog_figures
from triage import queue
from triage.cli.output import console, counted, fail
from triage.cli.types import RowIdArgument
from triage.db import make_engine, session_scope
from triage.models.types import INT32_MAX, utcnow
from triage.models.vendors import Vendor
from triage.settings import get_settings


def backlog(
    as_json: Annotated[bool, typer.Option("--json", help="every figure as JSON, for scripts")] = False,
    csv: Annotated[bool, typer.Option("--csv", help="the figures as CSV (no forecast)")] = False,
    target_date: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="recommend what to outsource to meet it")
    ] = None,
    extra_examiners: Annotated[int, typer.Option(min=0, help="what-if: more examiners")] = 0,
    extra_outsourcing: Annotated[
        int, typer.Option(min=0, help="what-if: more exhibits outsourced a month")
    ] = 0,
) -> None:
    """Backlog figures and the forecast of clearance, to read (or JSON, or CSV for the
    figures)."""
    with session_scope(make_engine(get_settings().database_url)) as session:
        now = utcnow()
        figures = backlog_figures.figures(session, now)
        if csv:
            typer.echo(backlog_figures.figures_csv(figures), nl=False)
            return
        figures["forecast"] = backlog_figures.forecast(session, now, extra_examiners, extra_outsourcing)
        if target_date is not None:
            figures["recommendation"] = backlog_figures.recommend(session, now, target_date.date())
    if as_json:
        typer.echo(json.dumps(figures, indent=2, default=str))
    else:
        _show_backlog(figures)


def _listed(counts: dict[str, int]) -> str:
    """``{"in_examination": 3}`` as "in examination 3"."""
    return ", ".join(f"{str(key).replace('_', ' ')} {value}" for key, value in counts.items())


def _clears(outlook: dict[str, Any]) -> str:
    if outlook["clears_on"] is None:
        return "does not clear (nothing is being examined or outsourced)"
    return f"clears on {outlook['clears_on']} ({outlook['weeks_to_clear']:g} weeks)"


def _show_backlog(figures: dict[str, Any]) -> None:
    """The figures a manager reads, in words and tables (``--json`` has every one)."""
    states = _listed(figures["by_state"])
    console.print(
        f"[b]{counted(figures['waiting_exhibits'], 'exhibit')} waiting[/b] on {str(figures['as_of'])[:10]}"
        + (f": {states}" if states else ""),
        soft_wrap=True,
        markup=True,  # counts, a date and state names: nothing a user wrote
    )
    if figures["by_device_type"]:
        console.print(f"by kind of device: {_listed(figures['by_device_type'])}", soft_wrap=True)
    ages = ", ".join(f"{k}: {v}" for k, v in figures["age_buckets_days"].items())
    console.print(f"by days waiting: {ages}", soft_wrap=True)
    if oldest := figures.get("oldest"):
        console.print(f"oldest: {oldest['crime_reference']} / {oldest['reference']}, {oldest['days']} days")
    restricted = figures["days_under_family_restriction"]
    console.print(
        f"{counted(figures['child_welfare_cases_waiting'], 'child-welfare case')} waiting; "
        f"{counted(restricted['cases'], 'case')} under a family restriction, "
        f"{restricted['total']} days in all (longest {restricted['max']})",
        soft_wrap=True,
    )
    pace = figures["in_house_completions_per_week"]
    console.print(
        f"examined in house: {pace['last_4_weeks']:g} a week over 4 weeks, "
        f"{pace['last_12_weeks']:g} over 12; "
        f"with vendors: {figures['with_vendors']} ({figures['overdue_with_vendors']} overdue)",
        soft_wrap=True,
    )
    spend = figures["spend"]
    budget = spend["budget_pence"]
    console.print(
        f"spent with vendors in {spend['financial_year']}: £{spend['spent_pence'] / 100:,.2f}"
        + (f" of £{budget / 100:,.2f}" if budget is not None else " (no budget set)"),
        soft_wrap=True,
    )
    forecast = figures["forecast"]
    console.print(
        f"[b]at the current pace[/b] the backlog {_clears(forecast['current'])}", soft_wrap=True, markup=True
    )
    if forecast["extra_examiners"] or forecast["extra_outsourcing_per_month"]:
        console.print(
            f"with {counted(forecast['extra_examiners'], 'more examiner')} and "
            f"{forecast['extra_outsourcing_per_month']} more outsourced a month "
            f"it {_clears(forecast['what_if'])}",
            soft_wrap=True,
        )
    if advice := figures.get("recommendation"):
        _show_recommendation(advice)


def _show_recommendation(advice: dict[str, Any]) -> None:
    picks = advice["outsource"]
    if not advice["queued"]:
        console.print(f"nothing is queued for examination to meet {advice['target_date']}")
        return
    console.print(
        f"[b]to examine all {advice['queued']} queued by {advice['target_date']}[/b]: "
        + (f"outsource {counted(len(picks), 'exhibit')}" if picks else "nothing needs to be outsourced")
        + (f"; {advice['cannot_place']} cannot be placed with any vendor" if advice["cannot_place"] else ""),
        soft_wrap=True,
        markup=True,
    )
    if picks:
        table = Table("exhibit", "vendor", "due back", "in house expected", "child welfare")
        for pick in picks:
            table.add_row(
                f"{pick['crime_reference']} / {pick['reference']} (#{pick['exhibit_id']})",
                f"{pick['vendor']} (#{pick['vendor_id']})",
                pick["due_date"],
                pick["in_house_expected"] or "-",
                "yes" if pick["child_welfare"] else "",
            )
        console.print(table)
    before, after = advice["child_welfare_wait_before"], advice["child_welfare_wait_after"]
    if before["cases"]:
        console.print(
            f"child-welfare cases' wait: longest {before['max_days']} days, mean {before['mean_days']:g}, "
            f"before; {after['max_days']} and {after['mean_days']:g} after",
            soft_wrap=True,
        )


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


def simulate(
    weeks: Annotated[int, typer.Option(min=1, max=520)] = 52,
    examiners: Annotated[int, typer.Option(min=0)] = 4,
    rate: Annotated[float, typer.Option(min=0.1, help="exhibits per examiner per week")] = 3.0,
    arrivals: Annotated[
        float, typer.Option(min=0, help="exhibits arriving per week (all device types)")
    ] = 16.0,
    child_share: Annotated[float, typer.Option(min=0, max=1, help="share in child-welfare cases")] = 0.35,
    vendor_capacity: Annotated[int, typer.Option(min=0, help="exhibits a month to the vendor")] = 8,
    vendor_turnaround: Annotated[int, typer.Option(min=1, help="days")] = 30,
    backlog: Annotated[int, typer.Option(min=0, help="exhibits waiting at the start")] = 150,
    seed: Annotated[int, typer.Option()] = 1,
    chart: Annotated[Path, typer.Option(help="PNG chart of the backlog under each policy")] = Path(
        "var/simulation.png"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="every figure as JSON, week by week")] = False,
) -> None:
    """Simulate the unit under FIFO and under the scoring policy (same arrivals, fixed seed):
    backlog over time, days children spend under family restriction waiting, clearance."""
    from triage import simulate as sim

    share = {"laptop": 0.375, "phone": 0.5, "external_disk": 0.125}
    try:
        scenario = sim.Scenario(
            weeks=weeks,
            arrivals_per_week={k: arrivals * v for k, v in share.items()},
            child_welfare_share=child_share,
            examiners=examiners,
            exhibits_per_examiner_per_week=rate,
            vendor_capacity_per_month=vendor_capacity,
            vendor_turnaround_days=vendor_turnaround,
            initial_backlog=backlog,
            seed=seed,
        )
    except ValueError as exc:
        raise fail(f"{exc}; fewer weeks, arrivals or backlog", code=2) from None
    results = sim.simulate(scenario, queue.policy(get_settings().policy_path))
    sim.chart(results, chart)
    summaries = {name: r.summary() for name, r in results.items()}
    if as_json:
        typer.echo(json.dumps(summaries | {"chart": str(chart)}, indent=2))
    else:
        _show_simulation(summaries, chart)


def _show_simulation(summaries: dict[str, dict[str, Any]], chart: Path) -> None:
    """Each policy's outcome side by side, and its backlog every four weeks (``--json`` has
    every week)."""
    names = list(summaries)
    outcome = Table("", *names, caption="(days a case waited under a family restriction)")
    rows = [
        ("days under restriction: mean", "mean_days_under_restriction"),
        ("days under restriction: 95th percentile", "p95_days_under_restriction"),
        ("cases under a family restriction", "restricted_cases"),
        ("exhibits waiting at the end", "final_backlog"),
        ("backlog cleared on", "clearance_date"),
    ]
    for label, key in rows:
        outcome.add_row(label, *(_figure(summaries[name][key]) for name in names))
    console.print(outcome)
    weeks = len(summaries[names[0]]["backlog_by_week"])
    shown_weeks = sorted({*range(4, weeks + 1, 4), weeks})
    backlog = Table("week", *(f"{name}: exhibits waiting" for name in names))
    for week in shown_weeks:
        backlog.add_row(str(week), *(str(summaries[name]["backlog_by_week"][week - 1]) for name in names))
    console.print(backlog)
    console.print(f"chart: {chart}", soft_wrap=True)


def _figure(value: Any) -> str:
    return "not cleared" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def outsource(
    exhibit_id: RowIdArgument,
    vendor: Annotated[int, typer.Option(min=1, max=INT32_MAX, help="vendor id (see `triage vendors`)")],
    as_user: Annotated[str, typer.Option("--as", help="the manager sending it (audited as them)")],
    reason: Annotated[str, typer.Option()] = "outsourced to meet the backlog",
) -> None:
    """Send an exhibit to an approved vendor; refused with the reason if it may not go."""
    from triage import accounts
    from triage import vendors as vendor_rules
    from triage.context import Context
    from triage.errors import TriageError
    from triage.models.exhibits import Exhibit

    try:
        with session_scope(make_engine(get_settings().database_url)) as session:
            actor = accounts.find_account(session, as_user)
            if not actor.is_active:
                raise TriageError(f"account {as_user!r} is disabled")
            exhibit = session.get(Exhibit, exhibit_id)
            if exhibit is None:
                raise TriageError(f"exhibit {exhibit_id} not found")
            record = vendor_rules.dispatch(
                session, Context(actor=actor), exhibit, vendor_rules.get_vendor(session, vendor), reason
            )
            typer.echo(
                f"outsourcing {record.id}: exhibit {exhibit_id} to vendor {vendor}, due {record.due_date}, "
                f"image MD5 {record.dispatch_md5}"
            )
    except TriageError as exc:
        raise fail(str(exc), label="refused") from None
