"""Pure prioritisation: case facts + triage facts + clock + policy -> score with reasons.

Depends on nothing of ours and does no I/O beyond reading a policy file when asked.
"""

from scoring.model import CaseFacts, Factor, Override, OverrideKind, Score, TriageFacts
from scoring.policy import Policy, PolicyError, load, parse
from scoring.score import restriction_days, restriction_points, score

__all__ = [
    "CaseFacts",
    "Factor",
    "Override",
    "OverrideKind",
    "Policy",
    "PolicyError",
    "Score",
    "TriageFacts",
    "load",
    "parse",
    "restriction_days",
    "restriction_points",
    "score",
]
