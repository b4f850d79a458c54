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

# How long a stopping `triage serve` waits for its local worker to give its run back. A scan
# reports progress at least every 0.2 s once its analysis runs; before that, compiling a large
# rule set or opening the image can take seconds. Well inside a service manager's grace period
# (systemd 90 s; Docker 10 s).
STOP_WAIT_SECONDS = 8.0


class LocalWorker:
    def __init__(
        self, settings: Settings, engine: Engine | None = None, worker_id: str | None = None
    ) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.database_url)
        self.worker_id = worker_id or jobs.worker_identity("local")
        self.upkeep = Upkeep(self.engine, settings)

    def run_one(self, stop: threading.Event | None = None) -> bool:
        """Sweep (and rescore when due), then take and run the oldest queued run; False when
        there was none. ``stop`` set while the run is under way gives it back to the queue."""
        self.upkeep.tick()
        if stop is not None and stop.is_set():  # asked to stop during the upkeep: take nothing
            return False
        with session_scope(self.engine) as session:
            run_id = runs.next_queued(session)
        if run_id is None:
            return False
        jobs.execute_run(run_id, self.worker_id, self.settings, self.engine, stop)
        return True

    def run_forever(self, stop: threading.Event) -> None:
        log.info("local worker %s started", self.worker_id)
        outage = OutageLog(log, "local worker", self.settings.database_url)
        while not stop.is_set():
            try:
                busy = self.run_one(stop)
            except Exception as exc:  # noqa: BLE001 - the worker stays up and takes the next run
                outage.failed(exc)
                busy = False
            else:
                outage.succeeded()
            if not busy:
                stop.wait(self.settings.poll_interval_seconds)


class Beside:
    """A local worker running in a thread beside the API (the embedded shape)."""

    def __init__(self, settings: Settings) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=LocalWorker(settings).run_forever, args=(self._stop,), daemon=True, name="local-worker"
        )
        self._thread.start()

    def stop(self, wait: float = STOP_WAIT_SECONDS) -> bool:
        """Stop it: a run under way is given back to the queue within a second or so (at its
        scan's next word of progress). False if it had not stopped within ``wait`` seconds;
        its run then goes back to the queue when its lease lapses, as if it had died."""
        self._stop.set()
        self._thread.join(wait)
        return not self._thread.is_alive()
