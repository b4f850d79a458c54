"""Celery transport: `celery -A workers.celery_app worker -Q triage` or `triage worker --backend celery`;
`triage scheduler --backend celery` runs beat (the clocks).

Settings for long forensic jobs (see ../shared/REFERENCE.md): late acknowledgement, reject on
worker loss, no prefetch, one run per process, a visibility timeout longer than the longest
run, soft and hard time limits. Creating the app connects to nothing.
"""

from __future__ import annotations

import multiprocessing
import os

from celery import Celery
from celery.signals import worker_process_init

from triage import jobs
from triage.dispatch import CELERY_TASK, QUEUE_NAME, UPKEEP_QUEUE
from triage.settings import Settings, get_settings
from workers.scheduler import RESCORE_TASK, scheduled_rescore


def run_triage(run_id: int) -> str | None:
    """The task: thin, it takes a run id and calls the engine."""
    state = jobs.execute_run(int(run_id), jobs.worker_identity("celery"))
    return state.value if state else None


def allow_scan_children(**_: object) -> None:
    """Prefork pool processes are flagged daemonic, and Python refuses to let a daemonic
    process start children; the scan needs its isolated children (which exit by themselves
    if their parent dies), so the flag is cleared in each pool process. Billiard also leaves
    its own authkey type behind, which the standard library cannot hand to a spawned child."""
    import multiprocessing.process as mp_process

    process = multiprocessing.current_process()
    process._config["daemon"] = False  # type: ignore[attr-defined]
    process._config["authkey"] = mp_process.AuthenticationString(os.urandom(32))  # type: ignore[attr-defined]


def make_celery(settings: Settings) -> Celery:
    app = Celery("triage", broker=settings.broker_url)
    limit = settings.run_time_limit_seconds
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=1,  # a run already uses every core through its own processes
        task_default_queue=QUEUE_NAME,
        task_soft_time_limit=limit,
        task_time_limit=limit + 300,
        broker_transport_options={"visibility_timeout": limit + 3600},
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        worker_hijack_root_logger=False,
    )
    app.task(name=CELERY_TASK)(run_triage)
    # The clocks: Celery beat, run by `triage scheduler` (workers/scheduler.py), sends the
    # rescore to the upkeep queue, which that scheduler consumes itself.
    app.task(name=RESCORE_TASK)(scheduled_rescore)
    app.conf.task_routes = {RESCORE_TASK: {"queue": UPKEEP_QUEUE}}
    app.conf.beat_schedule = {
        "rescore": {
            "task": RESCORE_TASK,
            "schedule": settings.rescore_interval_seconds,
            "options": {"queue": UPKEEP_QUEUE, "expires": settings.rescore_interval_seconds},
        },
    }
    worker_process_init.connect(allow_scan_children, weak=False)
    return app


app = make_celery(get_settings())
