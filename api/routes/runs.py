"""Triage runs: start, follow, cancel, read hits and download metadata (never file content)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from sqlmodel import col, select

from api.deps import CtxDep, ExhibitDep, PageDep, RunDep, SessionDep, SettingsDep
from api.schemas import Paged
from triage import dispatch, runs
from triage.errors import NotFoundError
from triage.models.runs import HitPublic, RunPublic, RunStart, TriageHit, TriageRun
from triage.pagination import paginate
from triage.settings import Settings

router = APIRouter(tags=["runs"])


def public(run: TriageRun, settings: Settings) -> RunPublic:
    out = RunPublic.model_validate(run)
    out.seconds_left = runs.seconds_left(run)
    out.has_listing = bool(run.listing_path and settings.artifact(run.listing_path).exists())
    out.has_dfxml = bool(run.dfxml_path and settings.artifact(run.dfxml_path).exists())
    return out


@router.post("/exhibits/{exhibit_id}/runs", response_model=RunPublic, status_code=201, responses={409: {}})
def start_run(
    exhibit: ExhibitDep, data: RunStart, session: SessionDep, ctx: CtxDep, settings: SettingsDep
) -> RunPublic:
    """Queue a triage run (409 if the exhibit has no image or a run is already active)."""
    run = runs.start_run(session, ctx, exhibit, data, settings.run_max_attempts)
    session.commit()
    dispatch.dispatch(session, settings, run.id or 0)
    session.commit()
    return public(run, settings)


@router.get("/exhibits/{exhibit_id}/runs", response_model=list[RunPublic])
def list_runs(exhibit: ExhibitDep, session: SessionDep, settings: SettingsDep) -> list[RunPublic]:
    rows = session.exec(
        select(TriageRun).where(TriageRun.exhibit_id == exhibit.id).order_by(col(TriageRun.id).desc())
    ).all()
    return [public(r, settings) for r in rows]


@router.get("/runs/{run_id}", response_model=RunPublic)
def get_run(run: RunDep, settings: SettingsDep) -> RunPublic:
    """State, progress (bytes and files), estimated seconds left, summary and provenance."""
    return public(run, settings)


@router.post("/runs/{run_id}/cancel", response_model=RunPublic, responses={409: {}})
def cancel_run(run: RunDep, session: SessionDep, ctx: CtxDep, settings: SettingsDep) -> RunPublic:
    run = runs.cancel(session, ctx, run)
    session.commit()
    return public(run, settings)


@router.get("/runs/{run_id}/hits", response_model=Paged[HitPublic])
def list_hits(run: RunDep, session: SessionDep, page: PageDep, source: str | None = None) -> Paged[HitPublic]:
    query = select(TriageHit).where(TriageHit.run_id == run.id).order_by(col(TriageHit.id))
    if source:
        query = query.where(TriageHit.source == source)
    rows, total = paginate(session, query, page)
    return Paged(
        items=[HitPublic.model_validate(h) for h in rows], total=total, offset=page.offset, limit=page.limit
    )


def _artifact(settings: Settings, name: str | None, what: str) -> Path:
    if not name or not settings.artifact(name).is_file():
        raise NotFoundError(f"this run has no {what}")
    return settings.artifact(name)


@router.get("/runs/{run_id}/dfxml", response_class=FileResponse)
def download_dfxml(run: RunDep, settings: SettingsDep) -> FileResponse:
    """The run's DFXML: file metadata and hashes only."""
    return FileResponse(
        _artifact(settings, run.dfxml_path, "DFXML"),
        media_type="application/xml",
        filename=f"run-{run.id}.dfxml.xml",
    )


@router.get("/runs/{run_id}/files", response_class=FileResponse)
def download_listing(run: RunDep, settings: SettingsDep) -> FileResponse:
    """The per-file listing (gzip-compressed JSON Lines): metadata and hashes, never content."""
    return FileResponse(
        _artifact(settings, run.listing_path, "file listing"),
        media_type="application/gzip",
        filename=f"run-{run.id}.files.jsonl.gz",
    )
