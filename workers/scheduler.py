"""The clocks in production: one ``triage scheduler`` rescores every case every
``TRIAGE_RESCORE_INTERVAL_SECONDS`` (days under restriction and dates approaching move scores
even when nothing is edited).

- Celery: Celery beat sends ``triage.rescore`` to the ``upkeep`` queue.
- RQ: an RQ cron scheduler enqueues :func:`scheduled_rescore` on the ``upkeep`` queue.

Triage workers take one forensic job at a time and a scan can last hours, so the scheduler
process also consumes the ``upkeep`` queue itself: a rescore never waits behind a scan. The
embedded local worker schedules its own rescores (``workers.sweeper.Upkeep``). Run exactly
one scheduler; a second would only rescore more often, as each rescore takes a PostgreSQL
advisory lock and one that finds it taken skips its turn.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal

from triage.db import make_engine
from triage.dispatch import UPKEEP_QUEUE
from triage.orphans import on_parent_exit
from triage.settings import QueueBackend, Settings, get_settings
from workers.sweeper import rescore_all

log = logging.getLogger("triage.scheduler")

RESCORE_TASK = "triage.rescore"


def scheduled_rescore() -> int:
    """The scheduled job itself (Celery task and RQ job): rescore every case, or nothing when
    another rescore holds the lock. Returns the number of cases scored."""
    settings = get_settings()
    engine = make_engine(settings.database_url)
    try:
        scored = rescore_all(engine, settings)
    finally:
        engine.dispose()
    log.info("scheduled rescore: %s cases scored", scored)
    return scored


def run(settings: Settings) -> None:
    """Run the scheduler of ``settings.queue_backend`` until stopped (SIGTERM or Ctrl-C)."""
    if settings.queue_backend is QueueBackend.celery:
        _run_celery(settings)
    elif settings.queue_backend is QueueBackend.rq:
        _run_rq(settings)
    else:
        raise ValueError("the local worker schedules its own rescores; a scheduler is for celery or rq")


def _run_celery(settings: Settings) -> None:
    """A Celery worker of the upkeep queue with beat embedded (``-B``), which is right for
    exactly one such process. The schedule is held in memory (``celery.beat:Scheduler``): after
    a restart the first rescore runs at once, which is what the clocks want anyway."""
    from workers.celery_app import make_celery

    make_celery(settings).worker_main(
        [
            "worker",
            "--beat",
            "--scheduler=celery.beat:Scheduler",
            "--loglevel=INFO",
            f"--queues={UPKEEP_QUEUE}",
            "--concurrency=1",
            "--hostname=scheduler@%h",
            "--without-gossip",
            "--without-mingle",
        ]
    )


def _run_rq(settings: Settings) -> None:
    """An RQ worker of the upkeep queue here, and RQ's cron scheduler in a spawned child (the
    worker forks a work horse per job, so no thread runs beside it)."""
    from redis import Redis
    from rq import Queue, Worker

    context = multiprocessing.get_context("spawn")
    cron = context.Process(
        target=_rq_cron_main, args=(settings.model_dump(), os.getpid()), daemon=True, name="triage-rq-cron"
    )
    cron.start()
    connection = Redis.from_url(settings.broker_url)
    Worker([Queue(UPKEEP_QUEUE, connection=connection)], connection=connection).work(with_scheduler=False)


def _rq_cron_main(settings_data: dict[str, object], parent: int) -> None:
    """Entry point of the RQ cron process: it stops (and records its death in Redis) when the
    scheduler it serves is gone, even if that one was killed outright."""
    from redis import Redis
    from rq.cron import CronScheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings(**settings_data)  # type: ignore[arg-type]

    on_parent_exit(lambda: os.kill(os.getpid(), signal.SIGTERM), parent)  # a graceful stop
    cron = CronScheduler(connection=Redis.from_url(settings.broker_url), name=f"triage-scheduler-{parent}")
    cron.register(
        scheduled_rescore,
        queue_name=UPKEEP_QUEUE,
        interval=max(1, round(settings.rescore_interval_seconds)),
        job_timeout=3600,
        result_ttl=86400,
    )
    cron.start()
