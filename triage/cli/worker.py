"""``triage worker``: run triage jobs on the local worker, Celery or RQ; ``triage scheduler``:
the clocks beside Celery or RQ workers."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated

import typer

from triage.settings import QueueBackend, Settings, get_settings


def worker(
    backend: Annotated[QueueBackend | None, typer.Option(help="default: TRIAGE_QUEUE_BACKEND")] = None,
    once: Annotated[bool, typer.Option(help="local: run queued runs until none is left, then exit")] = False,
) -> None:
    """Run triage jobs; a sweeper beside them returns runs whose worker died to the queue."""
    settings = _start(backend)
    settings.check_artifact_dir()  # each run's listing and DFXML go there (not the scheduler's)
    chosen = settings.queue_backend
    stop = threading.Event()
    if chosen is QueueBackend.local:
        from workers.local import LocalWorker

        local = LocalWorker(settings)
        from triage.launch import STOPPING_SIGNALS

        for stopping in STOPPING_SIGNALS:  # a service manager; its terminal closed
            signal.signal(stopping, lambda *_: stop.set())
        try:  # a run under way when asked to stop goes back to the queue (jobs.execute_run)
            if once:
                while not stop.is_set() and local.run_one(stop):
                    pass
            else:
                local.run_forever(stop)
        except KeyboardInterrupt:
            stop.set()
        return
    from workers.sweeper import start_process

    start_process(settings)  # a process, not a thread: Celery and RQ fork this one
    if chosen is QueueBackend.celery:
        from workers.celery_app import make_celery

        app = make_celery(settings)
        app.worker_main(
            [
                "worker",
                "--loglevel=INFO",
                "--queues=triage",
                "--concurrency=1",
                "--without-gossip",
                "--without-mingle",
            ]
        )
    else:
        from redis import Redis
        from rq import Queue, Worker

        from triage.dispatch import QUEUE_NAME

        connection = Redis.from_url(settings.broker_url)
        Worker([Queue(QUEUE_NAME, connection=connection)], connection=connection).work(with_scheduler=False)
    stop.set()


def scheduler(
    backend: Annotated[
        QueueBackend | None, typer.Option(help="celery or rq; default: TRIAGE_QUEUE_BACKEND")
    ] = None,
) -> None:
    """Rescore every case every TRIAGE_RESCORE_INTERVAL_SECONDS (Celery beat or an RQ cron job),
    beside Celery or RQ workers. Run exactly one; the local worker needs none."""
    settings = _start(backend)
    if settings.queue_backend is QueueBackend.local:
        typer.echo(
            "triage scheduler is for --backend celery or rq: the local worker rescores on its own schedule",
            err=True,
        )
        raise typer.Exit(2)
    from workers import scheduler as clocks

    clocks.run(settings)


def _start(backend: QueueBackend | None) -> Settings:
    """Start-up of a long-running worker process: logging, the settings with the chosen
    backend (default: TRIAGE_QUEUE_BACKEND), and a bad scoring policy refused now, naming
    its line, rather than at the first rescore."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = get_settings()
    from triage import queue

    queue.policy(settings.policy_path)
    # Validated again with the backend chosen (a copy would not be): RQ needs a Redis URL.
    return Settings(**(settings.model_dump() | {"queue_backend": backend or settings.queue_backend}))
