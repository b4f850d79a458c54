"""Sending a run id to the configured queue backend. Tasks are named by string, so the API
never imports the worker package; the database, not the broker, is the record of truth."""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from triage.models.runs import RunState, TriageRun
from triage.models.types import utcnow
from triage.settings import QueueBackend, Settings

log = logging.getLogger("triage.dispatch")

QUEUE_NAME = "triage"
UPKEEP_QUEUE = "upkeep"  # the scheduled rescore, consumed by `triage scheduler`
CELERY_TASK = "triage.run"
RQ_JOB = "workers.rq_jobs.run_triage"


@lru_cache(maxsize=4)
def _celery(broker_url: str) -> Any:
    from celery import Celery

    return Celery("triage-client", broker=broker_url)


def send(settings: Settings, run_id: int) -> None:
    """Hand ``run_id`` to the broker (nothing to do for the local worker, which polls)."""
    if settings.queue_backend is QueueBackend.celery:
        _celery(settings.broker_url).send_task(CELERY_TASK, args=[run_id], queue=QUEUE_NAME)
    elif settings.queue_backend is QueueBackend.rq:
        from redis import Redis
        from rq import Queue, Retry

        queue = Queue(QUEUE_NAME, connection=Redis.from_url(settings.broker_url))
        queue.enqueue(
            RQ_JOB,
            run_id,
            job_timeout=settings.run_time_limit_seconds + 300,
            retry=Retry(max=3, interval=[10, 60, 300]),
            result_ttl=86400,
            failure_ttl=7 * 86400,
        )


def dispatch(session: Session, settings: Settings, run_id: int) -> bool:
    """Send and record when; a broker that is down leaves the run queued for the sweeper."""
    try:
        send(settings, run_id)
    except Exception as exc:  # noqa: BLE001 - any broker failure: the sweeper sends it again
        log.warning("run_id=%s could not be sent to %s: %s", run_id, settings.queue_backend.value, exc)
        return False
    session.execute(
        update(TriageRun)
        .where(col(TriageRun.id) == run_id)
        .values(dispatched_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return True


def stale_queued(session: Session, settings: Settings) -> list[int]:
    """Queued runs whose message may have been lost (never sent, or sent long ago)."""
    cutoff = utcnow() - timedelta(seconds=settings.redispatch_after_seconds)
    rows = session.exec(
        select(TriageRun.id).where(
            col(TriageRun.state) == RunState.queued,
            col(TriageRun.cancel_requested).is_(False),
            (col(TriageRun.dispatched_at).is_(None)) | (col(TriageRun.dispatched_at) < cutoff),
        )
    ).all()
    return [r for r in rows if r is not None]
