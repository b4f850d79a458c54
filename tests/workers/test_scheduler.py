"""Scheduled rescoring: `triage scheduler` (Celery beat, RQ's cron scheduler) rescores every case
on the clock, nothing else does so beside Celery or RQ workers, and a scheduled rescore skips
its turn while another rescore of every case runs."""

from __future__ import annotations

import os
import signal
import subprocess
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import delete, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from tests.conftest import make_account
from tests.factories import queued_cases
from tests.processes import descendants, kill_tree
from tests.workers.conftest import TRIAGE, wait_for
from triage import queue
from triage.models.accounts import Role
from triage.models.queue import CaseScore
from triage.settings import QueueBackend, Settings
from workers.sweeper import Upkeep, rescore_all

CASES = 4


def _scores(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(CaseScore)).one())


@pytest.mark.parametrize("backend", ["celery", "rq"])
def test_the_scheduler_rescores_every_case_on_its_interval(
    backend: str, worker_env: dict[str, str], engine_w: Engine, tmp_path: Path
) -> None:
    officer = make_account(engine_w, "officer", Role.investigator)
    assert officer.id is not None
    queued_cases(engine_w, CASES, officer.id, seed=5, today=date(2026, 11, 20))
    assert _scores(engine_w) == 0
    log_path = tmp_path / "scheduler.log"
    env = {**os.environ, **worker_env, "TRIAGE_RESCORE_INTERVAL_SECONDS": "2"}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [TRIAGE, "scheduler", "--backend", backend],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def logs() -> str:
        return log_path.read_text(errors="replace")[-4000:]

    try:
        # The first rescore at start-up...
        wait_for(lambda: _scores(engine_w) == CASES, 60, "the first scheduled rescore", logs)
        # ...and again on the interval: scores thrown away come back without anyone asking.
        with Session(engine_w) as s:
            s.execute(delete(CaseScore))
            s.commit()
        assert _scores(engine_w) == 0
        wait_for(lambda: _scores(engine_w) == CASES, 30, "the next scheduled rescore", logs)
        children = descendants(proc.pid)
        assert children, "the scheduler runs its beat/cron beside its upkeep worker"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) is not None
        # Its helpers (beat or cron, pool or work horse) end with it.
        gone = lambda: not any(Path(f"/proc/{pid}").exists() for pid in children)  # noqa: E731
        wait_for(gone, 30, "its helpers to exit", logs)
    finally:
        kill_tree(proc)


def test_the_scheduler_refuses_the_local_backend() -> None:
    result = subprocess.run([TRIAGE, "scheduler", "--backend", "local"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "celery or rq" in result.stderr


@pytest.mark.parametrize("backend", ["local", "celery"])
def test_only_the_local_worker_rescores_between_jobs(
    backend: str, engine: Engine, settings: Settings
) -> None:
    officer = make_account(engine, "officer", Role.investigator)
    assert officer.id is not None
    queued_cases(engine, CASES, officer.id, seed=6, today=date(2026, 11, 20))
    upkeep = Upkeep(engine, settings.model_copy(update={"queue_backend": QueueBackend(backend)}))
    upkeep.tick()
    # Beside Celery or RQ workers the scheduler owns the clocks, so N workers do not rescore N times.
    assert _scores(engine) == (CASES if backend == "local" else 0)


def test_a_scheduled_rescore_skips_while_another_runs_then_scores_every_case(
    engine: Engine, settings: Settings
) -> None:
    officer = make_account(engine, "officer", Role.investigator)
    assert officer.id is not None
    queued_cases(engine, CASES, officer.id, seed=3, today=date(2026, 11, 20))
    if engine.dialect.name == "postgresql":
        # Another rescore holds the lock for the length of its transaction.
        with engine.connect() as other:
            other.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": queue.RESCORE_LOCK})
            assert rescore_all(engine, settings) == 0
            assert _scores(engine) == 0  # skipped: nothing written
            other.rollback()  # that rescore's transaction ends, and the lock with it
    assert rescore_all(engine, settings) == CASES
    assert _scores(engine) == CASES
