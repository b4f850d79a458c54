"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import SessionDep
from triage import migrate

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(session: SessionDep) -> JSONResponse:
    """The database answers and its schema is at the newest migration."""
    try:
        session.execute(text("SELECT 1"))
        revision = migrate.current_on(session.connection())
    except SQLAlchemyError as exc:
        return JSONResponse({"status": "unavailable", "reason": type(exc).__name__}, status_code=503)
    head = migrate.head()
    if revision != head:
        return JSONResponse(
            {"status": "unavailable", "reason": f"schema at {revision}, expected {head}"},
            status_code=503,
        )
    return JSONResponse({"status": "ready", "schema": revision})
