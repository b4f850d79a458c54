"""RQ transport: `rq worker triage --url REDIS_URL` or `triage worker --backend rq`."""

from __future__ import annotations

from triage import jobs


def run_triage(run_id: int) -> str | None:
    """The job: thin, it takes a run id and calls the engine."""
    state = jobs.execute_run(int(run_id), jobs.worker_identity("rq"))
    return state.value if state else None
