"""The policy: a versioned TOML file of weights. Unknown factors or keys are refused with
the line they are on, at load (that is, at start-up)."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

KNOWN: dict[str, set[str]] = {
    "access_children_home": {"points"},
    "access_children_work": {"points"},
    "children_in_household": {"per_child", "max"},
    "section47_open": {"points"},
    "child_protection_plan": {"points"},
    "family_restriction": {"base", "per_day", "steep_after_days", "per_day_after", "cap_days"},
    "known_bad_hits": {"per_file", "default_per_file", "max"},
    "child_yara_hits": {"per_hit", "max"},
    "bail_return_approaching": {"window_days", "points"},
    "court_date_approaching": {"window_days", "points"},
    "offence_seriousness": {"points"},
    "waiting_time": {"per_week", "max"},
}


class PolicyError(ValueError):
    """The policy file is unusable; the message names the line."""


@dataclass(frozen=True)
class Policy:
    version: str
    factors: dict[str, dict[str, Any]]
    source: str

    def get(self, factor: str) -> dict[str, Any] | None:
        return self.factors.get(factor)


def _line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    return 0


def _weight(value: object) -> bool:
    """Whether ``value`` can be a weight: a number, finite (TOML has ``inf``, which made every
    score it touched infinite, and no JSON answer can hold that) and not negative."""
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    )


def parse(text: str, source: str = "<policy>") -> Policy:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{source}: {exc}") from exc
    version = data.get("version")
    if not isinstance(version, str) or not version:
        raise PolicyError(f"{source}: a policy needs a version string")
    factors = data.get("factors", {})
    for name, values in factors.items():
        if name not in KNOWN:
            line = _line_of(text, f"[factors.{name}]")
            raise PolicyError(f"{source}:{line}: unknown policy factor {name!r}")
        for key, value in values.items():
            if key not in KNOWN[name]:
                line = _line_of(text, f"{key}")
                raise PolicyError(f"{source}:{line}: unknown key {key!r} in factor {name!r}")
            numbers = value.values() if isinstance(value, dict) else [value]
            if not all(_weight(n) for n in numbers):
                line = _line_of(text, f"{key}")
                raise PolicyError(f"{source}:{line}: {name}.{key} must be a finite number >= 0")
    restriction = factors.get("family_restriction")
    if restriction and not restriction.get("steep_after_days", 0) <= restriction.get("cap_days", 0):
        raise PolicyError(
            f"{source}:{_line_of(text, 'cap_days')}: cap_days must not be before steep_after_days"
        )
    return Policy(version=version, factors=factors, source=source)


def load(path: Path | None = None) -> Policy:
    """The policy at ``path``, or the default policy shipped with the package."""
    if path is None:
        text = resources.files("scoring").joinpath("policies/default.toml").read_text(encoding="utf-8")
        return parse(text, "default.toml")
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:  # a wrong TRIAGE_SCORING_POLICY: refused at start-up in one line
        raise PolicyError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:  # saved by an editor in a Windows code page, say
        line = raw.count(b"\n", 0, exc.start) + 1
        raise PolicyError(f"{path}:{line}: not UTF-8 text (a TOML file must be saved as UTF-8)") from None
    return parse(text, str(path))
