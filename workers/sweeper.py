"""The sweeper every worker runs beside its jobs: expired leases go back to the queue (and
to the broker), runs that keep killing workers are quarantined. The embedded local worker also
rescores every case for the clocks here; with Celery or RQ, `triage scheduler` does that
(workers/scheduler.py)."""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.process
import os
import threading
import time

from sqlalchemy.engine import Engine

from triage import dispatch, queue, runs
from triage.db import make_engine, session_scope
from triage.models.runs import RunState
from triage.orphans import on_parent_exit
from triage.settings import QueueBackend, Settings
from workers.outage import OutageLog

log = logging.getLogger("triage.sweeper")


def rescore_all(engine: Engine, settings: Settings) -> int:
    """The clocks move scores (days under restriction, approaching dates): rescore everything,
    unless another whole-queue rescore is running right now (then 0)."""
    with session_scope(engine) as session:
        if not queue.lock_rescore(session, wait=False):
            log.info("rescore skipped: another rescore of every case is running now")
            return 0
        return queue.rescore(session, policy_path=settings.policy_path)


def sweep_once(engine: Engine, settings: Settings) -> list[tuple[int, RunState]]:
    with session_scope(engine) as session:
        queue.sweep(session)  # examiners' lapsed leases
    with session_scope(engine) as session:
        changed = runs.sweep(session)
    if settings.queue_backend is not QueueBackend.local:
        requeued = [run_id for run_id, state in changed if state is RunState.queued]
        with session_scope(engine) as session:
            for run_id in requeued + [
                r for r in dispatch.stale_queued(session, settings) if r not in requeued
            ]:
                dispatch.dispatch(session, settings, run_id)
    for run_id, state in changed:
        log.warning("run_id=%s lease expired; now %s", run_id, state.value)
    return changed


def _sweeper_main(settings_data: dict[str, object], parent: int) -> None:
    """Entry point of the sweeper process: sweep until the worker it serves is gone."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings(**settings_data)  # type: ignore[arg-type]
    engine = make_engine(settings.database_url)
    stop = threading.Event()
    sweeper = Sweeper(engine, settings, stop)
    sweeper.start()
    on_parent_exit(stop.set, parent)
    sweeper.join()


def start_process(settings: Settings) -> multiprocessing.process.BaseProcess:
    """Run the sweeper in its own process. Celery's prefork pool and RQ's work horse fork the
    worker; a thread beside them could hold a lock (logging, the database driver) at the
    moment of a fork and leave the child deadlocked, so the sweeper never runs as a thread
    in a process that forks."""
    context = multiprocessing.get_context("spawn")
    process = context.Process(
        target=_sweeper_main, args=(settings.model_dump(), os.getpid()), daemon=True, name="triage-sweeper"
    )
    process.start()
    return process


class Upkeep:
    """What every worker does between jobs: sweep; and, in the local worker, which has no
    scheduler beside it, rescore every case when it is due (the first time at once)."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine, self.settings = engine, settings
        self._last_rescore: float | None = None

    def tick(self) -> None:
        sweep_once(self.engine, self.settings)
        if self.settings.queue_backend is not QueueBackend.local:
            return
        now = time.monotonic()
        if self._last_rescore is None or now - self._last_rescore >= self.settings.rescore_interval_seconds:
            rescore_all(self.engine, self.settings)
            self._last_rescore = now


class Sweeper(threading.Thread):
    def __init__(self, engine: Engine, settings: Settings, stop: threading.Event) -> None:
        super().__init__(daemon=True, name="sweeper")
        self.upkeep = Upkeep(engine, settings)
        self.stop, self.interval = stop, settings.sweep_interval_seconds

    def run(self) -> None:
        outage = OutageLog(log, "sweeper", self.upkeep.settings.database_url)
        while not self.stop.wait(self.interval):
            try:
                self.upkeep.tick()
            except Exception as exc:  # noqa: BLE001 - a database blip must not stop the sweeper
                outage.failed(exc)
            else:
                outage.succeeded()
