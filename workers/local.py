"""The embedded local worker: claims queued runs straight from the database (no broker)."""

from __future__ import annotations

import logging
import threading

from sqlalchemy.engine import Engine

from triage import jobs, runs
from triage.db import make_engine, session_scope
from triage.settings import Settings
from workers.outage import OutageLog
from workers.sweeper import Upkeep

log = logging.getLogger("triage.worker.local")


class LocalWorker:
    def __init__(
        self, settings: Settings, engine: Engine | None = None, worker_id: str | None = None
    ) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.database_url)
        self.worker_id = worker_id or jobs.worker_identity("local")
        self.upkeep = Upkeep(self.engine, settings)

    def run_one(self) -> bool:
        """Sweep (and rescore when due), then take and run the oldest queued run; False when
        there was none."""
        self.upkeep.tick()
        with session_scope(self.engine) as session:
            run_id = runs.next_queued(session)
        if run_id is None:
            return False
        jobs.execute_run(run_id, self.worker_id, self.settings, self.engine)
        return True

    def run_forever(self, stop: threading.Event) -> None:
        log.info("local worker %s started", self.worker_id)
        outage = OutageLog(log, "local worker", self.settings.database_url)
        while not stop.is_set():
            try:
                busy = self.run_one()
            except Exception as exc:  # noqa: BLE001 - the worker stays up and takes the next run
                outage.failed(exc)
                busy = False
            else:
                outage.succeeded()
            if not busy:
                stop.wait(self.settings.poll_interval_seconds)


def start_in_thread(settings: Settings) -> threading.Event:
    """Run a local worker beside the API (the embedded shape); returns its stop event."""
    stop = threading.Event()
    thread = threading.Thread(
        target=LocalWorker(settings).run_forever, args=(stop,), daemon=True, name="local-worker"
    )
    thread.start()
    return stop
