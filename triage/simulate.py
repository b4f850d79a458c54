"""A discrete-event simulation of a unit's examination work, to compare FIFO with the scoring
policy on the same arrivals (same seed, same figures). It uses the real ``scoring.score``.

Events: exhibits arrive (a Poisson number a day by device type, a share of them in
child-welfare cases, some with a family restriction in force), examiners finish jobs at their
rate, a vendor takes up to its monthly capacity and returns each after its turnaround. The
queue is rescored once a day, as the production sweeper does.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import scoring

START = date(2026, 1, 5)

# The exhibits a scenario may hold: its starting backlog and the arrivals it expects over its
# weeks. The simulation rescores everything waiting every day: a unit's scenario (the default
# is about 1,000) runs in a second or two, 50,000 in about a minute, and a slip of the keyboard
# (a million a week) went on for many minutes, filling gigabytes, before it was stopped.
MAX_EXHIBITS = 100_000


@dataclass(frozen=True)
class Scenario:
    weeks: int = 52
    arrivals_per_week: dict[str, float] = field(
        default_factory=lambda: {"laptop": 6.0, "phone": 8.0, "external_disk": 2.0}
    )
    child_welfare_share: float = 0.35
    restriction_share: float = 0.7  # of child-welfare cases, those with a family restriction
    examiners: int = 4
    exhibits_per_examiner_per_week: float = 3.0
    vendor_capacity_per_month: int = 8
    vendor_turnaround_days: int = 30
    initial_backlog: int = 150
    seed: int = 1

    def __post_init__(self) -> None:
        expected = self.initial_backlog + sum(self.arrivals_per_week.values()) * self.weeks
        if expected > MAX_EXHIBITS:
            raise ValueError(
                f"the scenario holds about {expected:,.0f} exhibits (backlog plus arrivals over "
                f"{self.weeks} weeks): more than the {MAX_EXHIBITS:,} this simulation takes"
            )


@dataclass
class _Item:
    ident: int
    arrived: date
    facts: scoring.CaseFacts
    restricted: bool
    score: float = 0.0
    done: date | None = None


@dataclass
class PolicyResult:
    policy: str
    backlog_by_week: list[int]
    restricted_waits_days: list[int]
    clearance_date: date | None

    def summary(self) -> dict[str, Any]:
        waits = sorted(self.restricted_waits_days)
        return {
            "policy": self.policy,
            "mean_days_under_restriction": round(sum(waits) / len(waits), 1) if waits else 0.0,
            "p95_days_under_restriction": _p95(waits),
            "restricted_cases": len(waits),
            "final_backlog": self.backlog_by_week[-1] if self.backlog_by_week else 0,
            "clearance_date": self.clearance_date.isoformat() if self.clearance_date else None,
            "backlog_by_week": self.backlog_by_week,
        }


def _p95(values: list[int]) -> int:
    if not values:
        return 0
    return values[max(0, math.ceil(0.95 * len(values)) - 1)]


POISSON_PIECE = 50.0


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson number of mean ``mean``: Knuth's method, drawn in pieces of a mean of at most
    ``POISSON_PIECE`` and summed (a sum of Poisson numbers is a Poisson number of their total
    mean). In one piece, ``exp(-mean)`` underflowed to 0 from a mean of about 745 a day, and
    the method then gave about 745 whatever the mean."""
    count = 0
    while mean > 0:
        piece = min(mean, POISSON_PIECE)
        limit, product = math.exp(-piece), rng.random()
        while product > limit:
            count += 1
            product *= rng.random()
        mean -= piece
    return count


def _arrivals(scenario: Scenario) -> list[_Item]:
    """The same arrivals for every policy: drawn once from the seed."""
    rng = random.Random(scenario.seed)  # noqa: S311 - a reproducible simulation, not cryptography
    items: list[_Item] = []

    def make(day: date) -> _Item:
        child = rng.random() < scenario.child_welfare_share
        restricted = child and rng.random() < scenario.restriction_share
        facts = scoring.CaseFacts(
            offence_category="iioc" if child else rng.choice(["fraud", "drugs", "violence", "other"]),
            received_date=day,
            children_in_household=rng.randint(1, 3) if child else 0,
            suspect_access_children_home=child,
            restriction_kind="no_contact_own_children" if restricted else None,
            restriction_start=day - timedelta(days=rng.randint(0, 14)) if restricted else None,
        )
        return _Item(len(items), day, facts, restricted)

    for n in range(scenario.initial_backlog):
        items.append(make(START - timedelta(days=1 + n % 120)))
    for day_number in range(scenario.weeks * 7):
        day = START + timedelta(days=day_number)
        for mean in scenario.arrivals_per_week.values():
            for _ in range(_poisson(rng, mean / 7)):
                items.append(make(day))
    return items


def run_policy(scenario: Scenario, policy_name: str, policy: scoring.Policy) -> PolicyResult:
    items = _arrivals(scenario)
    by_day: dict[date, list[_Item]] = {}
    for item in items:
        by_day.setdefault(max(item.arrived, START), []).append(item)
    waiting: list[_Item] = []
    daily = scenario.examiners * scenario.exhibits_per_examiner_per_week / 7  # jobs a day, in house
    credit = 0.0
    vendor_returns: list[tuple[float, int, _Item]] = []
    backlog_by_week: list[int] = []
    clearance: date | None = None
    sent_this_month = 0
    days = scenario.weeks * 7
    for offset in range(days):
        today = START + timedelta(days=offset)
        waiting.extend(by_day.get(today, []))
        if today.day == 1:
            sent_this_month = 0
        now = datetime(today.year, today.month, today.day, 9, tzinfo=UTC)
        if policy_name == "scoring":  # daily rescoring, as the sweeper does
            for item in waiting:
                item.score = scoring.score(item.facts, scoring.TriageFacts(), now, policy).total
            waiting.sort(key=lambda i: (-i.score, i.arrived, i.ident))
        else:
            waiting.sort(key=lambda i: (i.arrived, i.ident))
        # Weekly, the vendor takes work beyond a week of in-house capacity, the least urgent
        # it has room for (FIFO: simply the oldest).
        monthly = scenario.vendor_capacity_per_month
        while offset % 7 == 0 and len(waiting) > daily * 7 and sent_this_month < monthly:
            item = waiting.pop() if policy_name == "scoring" else waiting.pop(0)
            heapq.heappush(vendor_returns, (offset + scenario.vendor_turnaround_days, item.ident, item))
            sent_this_month += 1
        while vendor_returns and vendor_returns[0][0] <= offset:
            _, _, item = heapq.heappop(vendor_returns)
            item.done = today
        credit = min(credit + daily, daily + 1)  # idle examiners do not bank time
        while credit >= 1 and waiting:
            waiting.pop(0).done = today
            credit -= 1
        if offset % 7 == 6:
            backlog_by_week.append(len(waiting) + len(vendor_returns))
        if clearance is None and not waiting and offset > 0:
            clearance = today  # nothing waits in house; work with vendors is in hand
    horizon = START + timedelta(days=days)
    # Cases still waiting at the end count with the days they have waited so far.
    waits = [
        ((item.done or horizon) - item.facts.restriction_start).days
        for item in items
        if item.restricted and item.facts.restriction_start is not None and item.arrived < horizon
    ]
    return PolicyResult(policy_name, backlog_by_week, waits, clearance)


def simulate(scenario: Scenario, policy: scoring.Policy | None = None) -> dict[str, PolicyResult]:
    policy = policy or scoring.load()
    return {name: run_policy(scenario, name, policy) for name in ("fifo", "scoring")}


def chart(results: dict[str, PolicyResult], target: Path) -> Path:
    """Backlog over time under each policy, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4), dpi=100)
    for name, result in results.items():
        summary = result.summary()
        axis.plot(
            range(1, len(result.backlog_by_week) + 1),
            result.backlog_by_week,
            label=f"{name}: p95 {summary['p95_days_under_restriction']} days under restriction",
        )
    axis.set_xlabel("week")
    axis.set_ylabel("exhibits waiting")
    axis.set_title("Simulated backlog: FIFO and the scoring policy")
    axis.legend()
    figure.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target)
    plt.close(figure)
    return target
