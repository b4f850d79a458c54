"""The backlog simulator: the scoring policy shortens children's waits where FIFO does not."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from triage.cli import app as cli
from triage.simulate import Scenario, _poisson, chart, simulate

OVERLOADED = Scenario(weeks=52, examiners=3, initial_backlog=300, seed=1)


def test_scoring_brings_down_what_fifo_leaves_over_180_days() -> None:
    results = simulate(OVERLOADED)
    fifo, policy = results["fifo"].summary(), results["scoring"].summary()
    assert fifo["p95_days_under_restriction"] > 180
    assert policy["p95_days_under_restriction"] < fifo["p95_days_under_restriction"]
    assert policy["mean_days_under_restriction"] < fifo["mean_days_under_restriction"]
    assert policy["restricted_cases"] == fifo["restricted_cases"] > 0  # the same arrivals
    assert len(fifo["backlog_by_week"]) == 52


def test_the_same_seed_gives_the_same_figures_and_another_seed_does_not() -> None:
    first = {k: v.summary() for k, v in simulate(OVERLOADED).items()}
    again = {k: v.summary() for k, v in simulate(OVERLOADED).items()}
    other = {
        k: v.summary()
        for k, v in simulate(Scenario(weeks=52, examiners=3, initial_backlog=300, seed=2)).items()
    }
    assert first == again and first != other


def test_enough_examiners_clear_the_backlog() -> None:
    results = simulate(Scenario(weeks=26, examiners=12, initial_backlog=40))
    assert results["fifo"].summary()["clearance_date"] is not None


def test_chart_is_a_png(tmp_path: Path) -> None:
    target = chart(simulate(Scenario(weeks=8)), tmp_path / "sim.png")
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_triage_simulate_prints_figures_and_writes_the_chart(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["simulate", "--weeks", "8", "--chart", str(tmp_path / "c.png")])
    assert result.exit_code == 0, result.output
    assert "95th percentile" in result.output and (tmp_path / "c.png").exists()
    summaries = {k: v.summary() for k, v in simulate(Scenario(weeks=8)).items()}
    # Each policy's final backlog in the outcome table, and the backlog of week 4.
    rows = [[cell.strip() for cell in line.strip("│ ").split("│")] for line in result.output.splitlines()]
    final = next(row for row in rows if row[0] == "exhibits waiting at the end")
    assert final[1:] == [str(summaries[k]["final_backlog"]) for k in ("fifo", "scoring")]
    week_4 = next(row for row in rows if row[0] == "4")
    assert week_4[1:] == [str(summaries[k]["backlog_by_week"][3]) for k in ("fifo", "scoring")]


def test_triage_simulate_json_has_every_week(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["simulate", "--weeks", "6", "--json", "--chart", str(tmp_path / "c.png")]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert len(figures["scoring"]["backlog_by_week"]) == 6 and figures["chart"] == str(tmp_path / "c.png")


def test_large_daily_arrivals_are_drawn_with_their_mean() -> None:
    # Knuth's method in one piece: exp(-mean) underflowed to 0 from a mean of about 745, and
    # every draw came out near 745 whatever the mean.
    rng = random.Random(7)
    draws = [_poisson(rng, 10_000.0) for _ in range(20)]
    assert all(abs(d - 10_000) < 500 for d in draws), draws  # five standard deviations
    assert len(set(draws)) > 1


def test_a_scenario_too_large_to_simulate_is_refused_in_one_line(tmp_path: Path) -> None:
    # A slip of the keyboard (a million arrivals a week) ran for many minutes, filling gigabytes.
    with pytest.raises(ValueError, match="more than the 100,000"):
        Scenario(weeks=520, arrivals_per_week={"phone": 1_000_000.0})
    chart_file = tmp_path / "c.png"
    result = CliRunner().invoke(
        cli,
        ["simulate", "--weeks", "1", "--arrivals", "0", "--backlog", "100001", "--chart", str(chart_file)],
    )
    assert result.exit_code == 2, result.output
    assert "about 100,001 exhibits" in result.output and "Traceback" not in result.output
    assert not chart_file.exists()
