"""`triage outsource`, `triage backlog` and `triage vendors` on the command line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from tests.conftest import Users
from tests.factories import case_with_exhibit, row_id
from triage.cli import app as cli
from triage.models.cases import OffenceCategory
from triage.models.exhibits import DeviceType
from triage.models.vendors import Vendor, VendorStatus
from triage.settings import get_settings


@pytest.fixture
def runner(
    monkeypatch: pytest.MonkeyPatch, database_url: str, engine: Engine, tmp_path: Path
) -> Iterator[CliRunner]:
    monkeypatch.setenv("TRIAGE_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_outsource_refuses_with_the_reason_then_sends(
    runner: CliRunner, users: Users, engine: Engine
) -> None:
    with Session(engine) as s:
        _, exhibit = case_with_exhibit(
            s, row_id(users.investigator), "CR/CLI", offence=OffenceCategory.fraud, device=DeviceType.phone
        )
        vendor = Vendor(
            name="Acme",
            accreditation_expires=date.today() + timedelta(days=30),
            capacity_per_month=1,
            turnaround_days=14,
            status=VendorStatus.suspended,
        )
        s.add(vendor)
        s.commit()
        exhibit_id, vendor_id = exhibit.id, vendor.id
    args = ["outsource", str(exhibit_id), "--vendor", str(vendor_id), "--as", "manager"]
    refused = runner.invoke(cli, args)
    assert refused.exit_code == 1 and "suspended" in refused.output
    with Session(engine) as s:
        row = s.get(Vendor, vendor_id)
        assert row is not None
        row.status = VendorStatus.approved
        s.add(row)
        s.commit()
    assert runner.invoke(cli, [*args[:-1], "examiner"]).exit_code == 1  # examiners may not outsource
    sent = runner.invoke(cli, args)
    assert sent.exit_code == 0, sent.output
    assert f"due {date.today() + timedelta(days=14)}" in sent.output
    target = (date.today() + timedelta(days=30)).isoformat()
    figures = json.loads(runner.invoke(cli, ["backlog", "--json", "--target-date", target]).output)
    assert figures["with_vendors"] == 1 and figures["recommendation"]["queued"] == 0
    # Without --json, the same figures to read (it printed JSON only).
    shown = runner.invoke(cli, ["backlog", "--target-date", target], terminal_width=200)
    assert shown.exit_code == 0 and not shown.output.lstrip().startswith("{"), shown.output
    assert f"{figures['waiting_exhibits']} exhibit" in shown.output
    assert "with vendors: 1 (0 overdue)" in shown.output
    assert f"nothing is queued for examination to meet {target}" in shown.output
    assert "Acme" in runner.invoke(cli, ["vendors"]).output


def test_queue_lists_the_top_of_the_queue_in_order_with_reasons(
    runner: CliRunner, users: Users, engine: Engine
) -> None:
    from tests.factories import queued_cases
    from triage import queue

    empty = runner.invoke(cli, ["queue"])
    assert empty.exit_code == 0 and empty.output == "Nothing is waiting for examination.\n"
    assert users.investigator.id is not None
    queued_cases(engine, 12, users.investigator.id, seed=3, today=date.today(), restricted_share=0.5)
    with Session(engine) as s:
        queue.rescore(s)
        s.commit()
        top = [e["case"].crime_reference for e in queue.queue_entries(s, 0, 5)[0]]
    shown = runner.invoke(cli, ["queue", "--limit", "5", "--reasons"], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    lines = [line for line in shown.output.splitlines() if any(ref in line.split() for ref in top)]
    assert [next(ref for ref in top if ref in line.split()) for line in lines] == top
    assert "Waiting" in shown.output  # a factor's label, shown with --reasons
    assert shown.output.endswith("The first 5 of 12 waiting (--limit shows more).\n")


def test_the_outsourcing_advice_reads_as_a_table() -> None:
    from triage.cli import backlog as backlog_cli
    from triage.cli.output import console

    advice = {
        "target_date": "2027-01-31",
        "queued": 4,
        "outsource": [
            {
                "exhibit_id": 9,
                "crime_reference": "CR/Q2",
                "reference": "CR/Q2-1",
                "vendor_id": 1,
                "vendor": "Quick",
                "due_date": "2027-01-05",
                "in_house_expected": "2027-02-10",
                "child_welfare": True,
            }
        ],
        "cannot_place": 1,
        "child_welfare_wait_before": {"cases": 2, "mean_days": 6.5, "max_days": 10},
        "child_welfare_wait_after": {"cases": 2, "mean_days": 4.0, "max_days": 5},
    }
    with console.capture() as captured:
        backlog_cli._show_recommendation(advice)
    text = captured.get()
    assert "to examine all 4 queued by 2027-01-31: outsource 1 exhibit; 1 cannot be placed" in text
    row = next(line for line in text.splitlines() if "CR/Q2 / CR/Q2-1" in line)
    assert "Quick (#1)" in row and "2027-01-05" in row and "2027-02-10" in row and "yes" in row
    assert "longest 10 days, mean 6.5, before; 5 and 4 after" in text
