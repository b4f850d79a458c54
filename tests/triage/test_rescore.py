"""Rescoring many cases at once: the bulk path (on PostgreSQL, chunks stored by writer threads
on their own connections) stores exactly what the scoring function says, carries it to the
tasks, and leaves unchanged scores untouched."""

from __future__ import annotations

import gc
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

import scoring
from tests.conftest import make_account
from tests.factories import queued_cases
from triage import queue, score_store
from triage.models.accounts import Role
from triage.models.cases import Case
from triage.models.queue import CaseScore, ExaminationTask

CASES = 1200
NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several chunks and a short last one, as 100,000 cases make in production."""
    monkeypatch.setattr(score_store, "CHUNK", 500)


def _populate(engine: Engine, n: int) -> None:
    officer = make_account(engine, "officer", Role.investigator)
    assert officer.id is not None
    queued_cases(engine, n, officer.id, seed=7, today=NOW.date(), restricted_share=0.4, bail_share=0.2)


def _stored(engine: Engine) -> dict[int, CaseScore]:
    with Session(engine) as s:
        return {row.case_id: row for row in s.exec(select(CaseScore)).all()}


def test_bulk_rescore_stores_what_scoring_says_and_only_rewrites_changes(engine: Engine) -> None:
    _populate(engine, CASES)
    with Session(engine) as s:
        assert queue.rescore(s, NOW) == CASES
        s.commit()
    first = _stored(engine)
    with Session(engine) as s:
        cases = {c.id: c for c in s.exec(select(Case)).all() if c.id is not None}
        tasks = {t.case_id: t for t in s.exec(select(ExaminationTask)).all()}
    assert len(first) == CASES
    for case_id, case in cases.items():
        expected = scoring.score(queue.case_facts(case), scoring.TriageFacts(), NOW, queue.policy())
        stored = first[case_id]
        assert stored.total == expected.total
        assert stored.factors == [f.as_dict() for f in expected.factors]
        assert stored.policy_version == expected.policy_version
        assert tasks[case_id].priority == expected.total

    # The same moment again: nothing changed, so nothing is rewritten.
    with Session(engine) as s:
        queue.rescore(s, NOW + timedelta(minutes=1))
        s.commit()
    again = _stored(engine)
    assert all(again[i].computed_at == first[i].computed_at for i in first)

    # A day later the clocks moved: changed scores are stored, with their new time.
    later = NOW + timedelta(days=1)
    with Session(engine) as s:
        queue.rescore(s, later)
        s.commit()
    moved = _stored(engine)
    changed = [i for i in first if moved[i].total != first[i].total]
    assert changed, "a day of waiting changes some scores"
    assert all(moved[i].computed_at == later for i in changed)
    with Session(engine) as s:
        tasks = {t.case_id: t for t in s.exec(select(ExaminationTask)).all()}
    assert all(tasks[i].priority == moved[i].total for i in first)


def test_the_last_chunk_of_cases_goes_in_smaller_chunks() -> None:
    """Once the scoring ends the rescore waits only for the chunks still being written, so once
    at most CHUNK cases are left they go in chunks TAIL_SPLIT times smaller; every case once,
    in order."""
    rows = [(i, float(i), False, False, (), "2026.11-1") for i in range(1, 1201)]
    chunks = list(score_store._copy_chunks(rows, NOW, len(rows)))
    assert [(lo, hi) for _, lo, hi in chunks] == [(1, 500), (501, 1000), (1001, 1125), (1126, 1200)]
    ids = [int(line.split(b"\t")[0]) for payload, _, _ in chunks for line in payload.splitlines()]
    assert ids == list(range(1, 1201))
    assert [hi - lo + 1 for _, lo, hi in score_store._copy_chunks(rows, NOW)] == [500, 500, 200]


def test_one_case_rescored_alone_matches_the_bulk_result(engine: Engine) -> None:
    _populate(engine, CASES)
    with Session(engine) as s:
        queue.rescore(s, NOW)
        s.commit()
    bulk = _stored(engine)
    with Session(engine) as s:
        s.execute(CaseScore.__table__.delete())  # type: ignore[attr-defined]
        s.commit()
        for case_id in (1, 2, 3):
            queue.rescore(s, NOW, [case_id])
        s.commit()
    alone = _stored(engine)
    assert set(alone) == {1, 2, 3}
    for case_id in (1, 2, 3):
        assert alone[case_id].factors == bulk[case_id].factors
        assert alone[case_id].total == bulk[case_id].total


def test_a_rescore_leaves_the_garbage_collector_as_it_found_it(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rescore pauses the cyclic collector while it scores; afterwards, and after a
    failure, the collector is back as it was (on, or still off if the caller had turned it off)."""
    _populate(engine, 20)
    seen: list[bool] = []
    real_score = scoring.score

    def watching(*args: object, **kwargs: object) -> scoring.Score:
        seen.append(gc.isenabled())
        return real_score(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(scoring, "score", watching)
    assert gc.isenabled()
    with Session(engine) as s:
        queue.rescore(s, NOW)
        s.commit()
    assert seen and not any(seen), "the collector ran during the scoring"
    assert gc.isenabled()

    def failing(*args: object, **kwargs: object) -> scoring.Score:
        raise RuntimeError("scoring failed")

    monkeypatch.setattr(scoring, "score", failing)
    with Session(engine) as s, pytest.raises(RuntimeError):
        queue.rescore(s, NOW)
    assert gc.isenabled()
    gc.disable()
    try:
        monkeypatch.setattr(scoring, "score", real_score)
        with Session(engine) as s:
            queue.rescore(s, NOW)
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_case_scores_leave_room_for_updates_in_place(database_url: str, engine: Engine) -> None:
    """PostgreSQL: half of each case_score page is left free (migration 0006), so a rescore's
    updates stay on their page and write no index entry."""
    with Session(engine) as s:
        options = s.execute(text("SELECT reloptions FROM pg_class WHERE relname = 'case_score'")).scalar()
    assert options == ["fillfactor=50"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_whole_queue_rescore_commits_chunk_by_chunk_and_leaves_no_task_locked(
    database_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claims pass locked tasks by: were the rescore's task updates held until it ends, a
    claim in the meantime would be handed a lower task from a chunk not yet written. Each chunk
    (500 cases here, the last 200 in chunks of 125 and 75) is committed as it is written
    instead."""
    _populate(engine, CASES)
    score, calls = scoring.score, [0]
    seen: dict[str, int] = {}

    def watching(*args: object, **kwargs: object) -> scoring.Score:
        calls[0] += 1
        if calls[0] == CASES:
            # The last case is being scored, so the rescore has not ended; the first two
            # chunks (and the third, of 125) are handed over by now and must become visible,
            # and unlocked, meanwhile.
            deadline = time.monotonic() + 10
            with engine.connect() as other:
                while time.monotonic() < deadline:
                    seen["stored"] = other.execute(text("SELECT count(*) FROM case_score")).scalar_one()
                    other.rollback()
                    if seen["stored"] >= 1000:
                        break
                    time.sleep(0.05)
                seen["unlocked"] = len(
                    other.execute(
                        text("SELECT id FROM examination_task WHERE case_id <= 1000 FOR UPDATE NOWAIT")
                    ).all()
                )
                other.rollback()
        return score(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(scoring, "score", watching)
    with Session(engine) as caller:
        assert queue.rescore(caller, NOW) == CASES
        with engine.connect() as other:
            locked = other.execute(text("SELECT id FROM examination_task FOR UPDATE NOWAIT")).all()
            assert len(locked) == CASES  # NOWAIT: none of them is locked
            other.rollback()
        caller.rollback()  # the caller's own transaction holds nothing of the rescore's
    assert 1000 <= seen["stored"] < CASES and seen["unlocked"] == 1000, seen
    assert len(_stored(engine)) == CASES
