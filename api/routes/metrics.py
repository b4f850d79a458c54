"""Prometheus metrics, read from the database at scrape time (true across all workers)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from sqlalchemy import func
from sqlmodel import Session, col, select

from triage.models.queue import ExaminationTask, TaskState
from triage.models.runs import FINAL_RUN_STATES, RunState, TriageRun
from triage.models.types import utcnow

router = APIRouter(tags=["health"])
BUCKETS = (10, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 24 * 3600)


class RunCollector:
    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Any]:
        with Session(self.engine) as session:
            counts = dict(session.exec(select(TriageRun.state, func.count()).group_by(TriageRun.state)).all())
            active = GaugeMetricFamily("triage_runs", "Triage runs queued or in progress", labels=["state"])
            for state in (RunState.queued, RunState.verifying, RunState.running):
                active.add_metric([state.value], counts.get(state, 0))
            yield active
            finished = CounterMetricFamily(
                "triage_runs_finished", "Triage runs by final state", labels=["state"]
            )
            for state in sorted(FINAL_RUN_STATES):
                finished.add_metric([state.value], counts.get(state, 0))
            yield finished
            done = session.exec(
                select(func.coalesce(func.sum(TriageRun.bytes_total), 0)).where(
                    TriageRun.state == RunState.succeeded
                )
            ).one()
            yield CounterMetricFamily(
                "triage_bytes_triaged", "Bytes of files analysed by succeeded runs", value=float(done)
            )
            durations = [
                (end - start).total_seconds()
                for start, end in session.exec(
                    select(TriageRun.started_at, TriageRun.finished_at).where(
                        TriageRun.state == RunState.succeeded,
                        col(TriageRun.started_at).is_not(None),
                        col(TriageRun.finished_at).is_not(None),
                    )
                ).all()
                if start and end
            ]
            buckets = [(str(b), float(sum(1 for d in durations if d <= b))) for b in BUCKETS]
            buckets.append(("+Inf", float(len(durations))))
            yield HistogramMetricFamily(
                "triage_run_duration_seconds",
                "Wall time of succeeded runs",
                buckets=buckets,
                sum_value=sum(durations),
            )


class QueueCollector:
    """The examination queue: tasks waiting (held ones apart), being examined and done, and how
    long the longest-waiting task has waited."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Any]:
        with Session(self.engine) as session:
            rows = session.exec(
                select(ExaminationTask.state, ExaminationTask.held, func.count()).group_by(
                    col(ExaminationTask.state), col(ExaminationTask.held)
                )
            ).all()
            oldest = session.exec(
                select(func.min(ExaminationTask.queued_at)).where(ExaminationTask.state == TaskState.queued)
            ).one()
        counts = {"queued": 0, "held": 0, "claimed": 0}
        completed = 0
        for state, held, n in rows:
            if state == TaskState.queued:
                counts["held" if held else "queued"] += n
            elif state == TaskState.claimed:
                counts["claimed"] += n
            elif state == TaskState.completed:
                completed += n
        tasks = GaugeMetricFamily(
            "triage_examination_tasks",
            "Examination tasks waiting (queued), held by a manager, or being examined (claimed)",
            labels=["state"],
        )
        for state, n in counts.items():
            tasks.add_metric([state], n)
        yield tasks
        yield CounterMetricFamily(
            "triage_examination_tasks_completed", "Examination tasks completed", value=completed
        )
        waited = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
        yield GaugeMetricFamily(
            "triage_oldest_queued_task_age_seconds",
            "How long the longest-waiting queued examination task has waited (0: none waiting)",
            value=max(waited, 0.0),
        )


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    registry = CollectorRegistry()
    registry.register(RunCollector(request.app.state.engine))  # type: ignore[arg-type]
    registry.register(QueueCollector(request.app.state.engine))  # type: ignore[arg-type]
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
