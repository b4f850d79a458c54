"""The exhibit lifecycle as an explicit state machine.

registered -> awaiting_imaging -> imaged -> triage_queued -> triaging -> triaged ->
awaiting_examination -> in_examination -> examined -> returned | disposed, plus outsourced
and back. A few side doors a real unit needs are listed here too, each with its reason.
"""

from __future__ import annotations

from triage.errors import ConflictError
from triage.models.exhibits import ExhibitState as S

TRANSITIONS: dict[S, frozenset[S]] = {
    # A device that cannot be imaged (e.g. a locked phone) goes straight to examination.
    S.registered: frozenset({S.awaiting_imaging, S.awaiting_examination, S.outsourced}),
    S.awaiting_imaging: frozenset({S.imaged, S.awaiting_examination, S.outsourced}),
    S.imaged: frozenset({S.triage_queued, S.awaiting_examination, S.outsourced}),
    # A queued run may be cancelled; a failed run returns the exhibit to imaged.
    S.triage_queued: frozenset({S.triaging, S.imaged}),
    S.triaging: frozenset({S.triaged, S.imaged, S.triage_queued}),
    # A triaged exhibit may be triaged again (new hash sets or rules).
    S.triaged: frozenset({S.awaiting_examination, S.triage_queued, S.outsourced}),
    S.awaiting_examination: frozenset({S.in_examination, S.outsourced, S.triage_queued}),
    # Handing a job back returns it to the queue.
    S.in_examination: frozenset({S.examined, S.awaiting_examination}),
    S.examined: frozenset({S.returned, S.disposed}),
    S.outsourced: frozenset({S.examined, S.awaiting_examination}),
    S.returned: frozenset(),
    S.disposed: frozenset(),
}


def allowed_next(state: S) -> frozenset[S]:
    return TRANSITIONS[state]


def check_transition(current: S, target: S) -> None:
    """Raise ``ConflictError`` (409) unless ``current -> target`` is a legal move."""
    if target not in TRANSITIONS[S(current)]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[S(current)])) or "none"
        raise ConflictError(f"illegal transition {S(current).value} -> {target.value}; allowed: {allowed}")
