"""score(case facts, triage facts, now, policy) -> Score with its factors. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from scoring.model import CaseFacts, Factor, Override, OverrideKind, Score, TriageFacts
from scoring.policy import Policy

# How a factor's label names a stored code; a code not listed reads as its words.
RESTRICTION_WORDS = {
    "no_contact_own_children": "no contact with own children",
    "excluded_from_family_home": "excluded from the family home",
    "supervised_contact_only": "supervised contact only",
}
OFFENCE_WORDS = {
    "iioc": "indecent images of children (IIOC)",
    "other": "other offence",
}


def _words(code: str, known: dict[str, str]) -> str:
    return known.get(code, code.replace("_", " "))


def restriction_words(code: str) -> str:
    """A family restriction's kind as the labels (and the pages) name it."""
    return _words(code, RESTRICTION_WORDS)


def offence_words(code: str) -> str:
    """An offence category as the labels (and the pages) name it."""
    return _words(code, OFFENCE_WORDS)


def restriction_days(case: CaseFacts, today: date) -> int | None:
    """Days a family restriction has been in force today, or None if none is in force."""
    if case.restriction_kind is None or case.restriction_start is None or case.restriction_start > today:
        return None
    if case.restriction_end is not None and case.restriction_end < today:
        return None
    return (today - case.restriction_start).days


def restriction_points(days: int, weights: dict[str, float]) -> float:
    """Non-decreasing in ``days``: linear, steeper after ``steep_after_days``, flat after ``cap_days``."""
    cap = int(weights["cap_days"])
    steep = int(weights["steep_after_days"])
    capped = days if days < cap else cap
    early = capped if capped < steep else steep
    late = capped - steep if capped > steep else 0
    return float(weights["base"]) + early * float(weights["per_day"]) + late * float(weights["per_day_after"])


def _approaching(when: date | None, today: date, weights: dict[str, float]) -> float:
    if when is None:
        return 0.0
    days_left = (when - today).days
    window = float(weights["window_days"])
    if days_left > window:
        return 0.0
    share = 1.0 if days_left <= 0 else (window - days_left) / window
    return round(float(weights["points"]) * share, 2)


def _add(factors: list[Factor], code: str, label: str, points: float, source: str) -> None:
    """A factor counts only if it gives points (rounded to hundredths)."""
    if points:
        factors.append(Factor(code, label, round(points, 2), source))


def score(
    case: CaseFacts, triage: TriageFacts, now: datetime, policy: Policy, overrides: Iterable[Override] = ()
) -> Score:
    """Each factor's fact is tested before its weights are looked up: a rescore scores every
    case, and most facts are absent from most cases."""
    today = now.date()
    factors: list[Factor] = []
    weights = policy.factors
    if case.suspect_access_children_home and (w := weights.get("access_children_home")):
        _add(
            factors,
            "access_children_home",
            "Suspect has access to children at home",
            w["points"],
            "suspect_access_children_home",
        )
    if case.suspect_access_children_work and (w := weights.get("access_children_work")):
        _add(
            factors,
            "access_children_work",
            "Suspect has access to children through work",
            w["points"],
            "suspect_access_children_work",
        )
    if case.children_in_household > 0 and (w := weights.get("children_in_household")):
        _add(
            factors,
            "children_in_household",
            f"{case.children_in_household} child(ren) in the household",
            min(case.children_in_household * w["per_child"], w["max"]),
            "children_in_household",
        )
    if case.section47_open and (w := weights.get("section47_open")):
        _add(factors, "section47_open", "Open section 47 enquiry", w["points"], "section47_open")
    if case.child_protection_plan and (w := weights.get("child_protection_plan")):
        _add(
            factors,
            "child_protection_plan",
            "Child protection plan in place",
            w["points"],
            "child_protection_plan",
        )
    if (days := restriction_days(case, today)) is not None and (w := weights.get("family_restriction")):
        kind = restriction_words(str(case.restriction_kind))
        _add(
            factors,
            "family_restriction",
            f"Family restriction ({kind}) in force for {days} days",
            restriction_points(days, w),
            f"restriction_start {case.restriction_start}",
        )
    if triage.known_bad_by_category and (w := weights.get("known_bad_hits")):
        total = 0.0
        for category, count in triage.known_bad_by_category.items():
            rate = next(
                (p for prefix, p in w["per_file"].items() if category.startswith(prefix)),
                w["default_per_file"],
            )
            total += rate * count
        files = sum(triage.known_bad_by_category.values())
        _add(
            factors,
            "known_bad_hits",
            f"{files} file(s) matching known-bad hash sets",
            min(total, w["max"]),
            ", ".join(f"{c}: {n}" for c, n in sorted(triage.known_bad_by_category.items())),
        )
    if triage.child_yara_hits and (w := weights.get("child_yara_hits")):
        _add(
            factors,
            "child_yara_hits",
            f"{triage.child_yara_hits} child-related YARA hit(s)",
            min(triage.child_yara_hits * w["per_hit"], w["max"]),
            "triage YARA hits",
        )
    if case.bail_return_date is not None and (w := weights.get("bail_return_approaching")):
        _add(
            factors,
            "bail_return_approaching",
            f"Bail return on {case.bail_return_date}",
            _approaching(case.bail_return_date, today, w),
            "bail_return_date",
        )
    if case.next_court_date is not None and (w := weights.get("court_date_approaching")):
        _add(
            factors,
            "court_date_approaching",
            f"Next court date {case.next_court_date}",
            _approaching(case.next_court_date, today, w),
            "next_court_date",
        )
    if w := weights.get("offence_seriousness"):
        _add(
            factors,
            "offence_seriousness",
            f"Offence: {offence_words(case.offence_category)}",
            w["points"].get(case.offence_category, 0),
            "offence_category",
        )
    if today > case.received_date and (w := weights.get("waiting_time")):
        weeks = (today - case.received_date).days / 7
        _add(
            factors,
            "waiting_time",
            f"Waiting {int(weeks)} week(s) since received",
            min(weeks * w["per_week"], w["max"]),
            f"received_date {case.received_date}",
        )

    pinned = held = False
    for override in overrides:
        if override.expires_at <= now:
            continue
        until = override.expires_at.isoformat(timespec="minutes")
        if override.kind is OverrideKind.boost:
            _add(
                factors,
                "override_boost",
                f"Boost by {override.author}: {override.reason} (until {until})",
                override.points,
                "manager override",
            )
        elif override.kind is OverrideKind.pin:
            pinned = True
            factors.append(
                Factor(
                    "override_pin",
                    f"Pinned to top by {override.author}: {override.reason} (until {until})",
                    0.0,
                    "manager override",
                )
            )
        else:
            held = True
            factors.append(
                Factor(
                    "override_hold",
                    f"On hold by {override.author}: {override.reason} (until {until})",
                    0.0,
                    "manager override",
                )
            )
    total = round(sum([x.points for x in factors]), 2)
    return Score(
        total=total,
        factors=tuple(factors),
        policy_version=policy.version,
        pinned=pinned and not held,
        held=held,
    )
