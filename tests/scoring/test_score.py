"""The pure scoring function and its policy file."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import scoring
from scoring import CaseFacts, Override, OverrideKind, TriageFacts

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
POLICY = scoring.load()


def _case(**kw: object) -> CaseFacts:
    base: dict[str, object] = {"offence_category": "iioc", "received_date": date(2026, 5, 1)}
    base.update(kw)
    return CaseFacts(**base)  # type: ignore[arg-type]


def test_children_at_home_and_a_seven_month_restriction_outrank_the_same_case_without_children() -> None:
    restricted = _case(
        children_in_household=2,
        suspect_access_children_home=True,
        restriction_kind="no_contact_own_children",
        restriction_start=NOW.date() - timedelta(days=213),
    )
    plain = _case()
    a = scoring.score(restricted, TriageFacts(), NOW, POLICY)
    b = scoring.score(plain, TriageFacts(), NOW, POLICY)
    assert a.total > b.total
    codes = {f.code for f in a.factors}
    assert {"access_children_home", "children_in_household", "family_restriction"} <= codes
    # Even if the plain case arrived long before, it stays below.
    older = scoring.score(_case(received_date=date(2025, 1, 1)), TriageFacts(), NOW, POLICY)
    assert a.total > older.total


@given(days=st.integers(min_value=0, max_value=2000), more=st.integers(min_value=0, max_value=2000))
def test_more_days_of_restriction_never_lower_a_score(days: int, more: int) -> None:
    def total(d: int) -> float:
        case = _case(
            restriction_kind="excluded_from_family_home", restriction_start=NOW.date() - timedelta(days=d)
        )
        return scoring.score(case, TriageFacts(), NOW, POLICY).total

    assert total(days + more) >= total(days)


def test_restriction_points_grow_steeply_after_90_days_and_stop_at_180() -> None:
    w = POLICY.factors["family_restriction"]
    p = [scoring.restriction_points(d, w) for d in (0, 30, 60, 90, 120, 150, 180, 400)]
    assert p[1] - p[0] == p[2] - p[1] == p[3] - p[2]  # linear up to 90
    assert p[4] - p[3] > p[3] - p[2]  # steeper after
    assert p[6] == p[7]  # capped at 180


def test_a_restriction_not_in_force_scores_nothing() -> None:
    ended = _case(
        restriction_kind="supervised_contact_only",
        restriction_start=date(2026, 1, 1),
        restriction_end=date(2026, 6, 1),
    )
    future = _case(restriction_kind="supervised_contact_only", restriction_start=date(2027, 1, 1))
    for case in (ended, future):
        assert "family_restriction" not in {
            f.code for f in scoring.score(case, TriageFacts(), NOW, POLICY).factors
        }


def test_every_factor_names_the_fact_it_came_from() -> None:
    case = _case(
        section47_open=True,
        child_protection_plan=True,
        bail_return_date=NOW.date() + timedelta(days=7),
        next_court_date=NOW.date() + timedelta(days=10),
        suspect_access_children_work=True,
        restriction_kind="excluded_from_family_home",
        restriction_start=NOW.date() - timedelta(days=40),
    )
    result = scoring.score(case, TriageFacts({"VICS 1 child abuse material": 3}, 2), NOW, POLICY)
    for factor in result.factors:
        assert factor.label and factor.source and factor.points > 0
        assert "_" not in factor.label, factor.label  # plain English, not the stored code
    labels = {f.code: f.label for f in result.factors}
    restriction = "Family restriction (excluded from the family home) in force for 40 days"
    assert labels["family_restriction"] == restriction
    assert labels["offence_seriousness"] == "Offence: indecent images of children (IIOC)"
    assert result.policy_version == POLICY.version
    hits = next(f for f in result.factors if f.code == "known_bad_hits")
    assert hits.points == 120  # 3 x 40 for VICS category 1


def test_overrides_boost_pin_hold_and_expire() -> None:
    case = _case()
    later = NOW + timedelta(days=1)
    boost = Override(OverrideKind.boost, "court asked", "mgr", later, 50)
    assert scoring.score(case, TriageFacts(), NOW, POLICY, [boost]).total == pytest.approx(
        scoring.score(case, TriageFacts(), NOW, POLICY).total + 50
    )
    pinned = scoring.score(case, TriageFacts(), NOW, POLICY, [Override(OverrideKind.pin, "x", "mgr", later)])
    assert (
        pinned.pinned
        and pinned.sort_key()
        > scoring.score(_case(children_in_household=5), TriageFacts(), NOW, POLICY).sort_key()
    )
    assert not scoring.score(
        case,
        TriageFacts(),
        later + timedelta(seconds=1),
        POLICY,
        [Override(OverrideKind.pin, "x", "mgr", later)],
    ).pinned
    held = scoring.score(
        case, TriageFacts(), NOW, POLICY, [Override(OverrideKind.hold, "awaiting", "mgr", later)]
    )
    assert held.held and held.sort_key() < scoring.score(case, TriageFacts(), NOW, POLICY).sort_key()


def test_an_unknown_policy_factor_is_refused_with_its_line() -> None:
    text = 'version = "x"\n\n[factors.section47_open]\npoints = 1\n\n[factors.star_sign]\npoints = 3\n'
    with pytest.raises(scoring.PolicyError, match=r":6: unknown policy factor 'star_sign'"):
        scoring.parse(text, "custom.toml")
    with pytest.raises(scoring.PolicyError, match="unknown key"):
        scoring.parse('version = "x"\n[factors.section47_open]\npointz = 1\n')
    with pytest.raises(scoring.PolicyError, match="version"):
        scoring.parse("[factors.section47_open]\npoints = 1\n")
    with pytest.raises(scoring.PolicyError, match=">= 0"):
        scoring.parse('version = "x"\n[factors.section47_open]\npoints = -5\n')
    # TOML's inf was taken, and every score it touched was infinite, which no JSON answer holds.
    for weight in ("inf", "nan", "{ a = inf }"):
        with pytest.raises(
            scoring.PolicyError, match=r":3: section47_open.points must be a finite number >= 0"
        ):
            scoring.parse(f'version = "x"\n[factors.section47_open]\npoints = {weight}\n')


def test_a_policy_file_that_cannot_be_read_or_is_not_utf8_is_refused_with_its_line(tmp_path: Path) -> None:
    # Both ended `triage serve` and `triage rescore` in a traceback. A unit's policy edited in
    # Notepad with a pound sign in a comment is saved in Windows-1252, not UTF-8.
    cp1252 = tmp_path / "policy.toml"
    cp1252.write_bytes(
        'version = "local-1"\n# budget \u00a3 40k\n[factors.section47_open]\npoints = 9\n'.encode("cp1252")
    )
    with pytest.raises(scoring.PolicyError, match=r"policy.toml:2: not UTF-8 text"):
        scoring.load(cp1252)
    with pytest.raises(scoring.PolicyError, match=r"absent.toml: cannot be read: No such file or directory"):
        scoring.load(tmp_path / "absent.toml")


def test_scoring_is_pure_same_inputs_same_output() -> None:
    case = _case(
        children_in_household=1,
        restriction_kind="no_contact_own_children",
        restriction_start=date(2026, 8, 1),
    )
    assert scoring.score(case, TriageFacts(), NOW, POLICY) == scoring.score(case, TriageFacts(), NOW, POLICY)
