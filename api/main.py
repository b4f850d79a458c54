"""The FastAPI application factory."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from api import errors, uploads
from api.middleware import (
    BodySizeLimitMiddleware,
    NulInUrlMiddleware,
    RequestIdMiddleware,
    SecurityHeadersMiddleware,
)
from api.routes import accounts, audit, auth, backlog, cases, exhibits, health, metrics, reference, runs
from api.routes import queue as queue_routes
from api.web import pages
from triage import __version__, queue, registry
from triage.db import make_engine
from triage.settings import Settings, get_settings

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for ``settings``; the engine is created here but connects lazily."""
    settings = settings or get_settings()
    # Refuse a bad scoring policy now, naming its line, rather than at the first rescore.
    queue.policy(settings.policy_path)
    app = FastAPI(
        title="HTCU Triage Queue",
        version=__version__,
        description="Intake, triage and prioritisation of seized devices for a Hi-Tech Crime Unit. "
        "Authenticate with POST /api/v1/auth/token, then send `Authorization: Bearer <token>`.",
    )
    app.state.settings = settings
    app.state.engine = make_engine(settings.database_url, pool_size=settings.database_pool_size)
    uploads.remove_stale_staging(settings)
    registry.remove_leftovers(settings)

    api = APIRouter(prefix=API_PREFIX)
    for module in (auth, accounts, cases, exhibits, runs, queue_routes, backlog, reference, audit):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(health.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=str(Path(pages.__file__).with_name("static"))), name="static")

    async def login_required(request: Request, exc: Exception) -> RedirectResponse:
        return RedirectResponse("/login", status_code=303)

    app.add_exception_handler(pages.LoginRequired, login_required)
    app.include_router(metrics.router)
    errors.install(app, SecurityHeadersMiddleware.headers_for)
    # Hash sets are gigabytes (NSRL, VICS): their uploads, from the API and the admin page, may
    # be as large as TRIAGE_MAX_UPLOAD_BYTES; every other body is held to TRIAGE_MAX_BODY_BYTES.
    upload_paths = [f"{API_PREFIX}/hashsets/upload", f"{API_PREFIX}/rulesets/upload", pages.REFERENCE_UPLOADS]
    caps = [(path, settings.max_upload_bytes) for path in upload_paths]
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes, overrides=caps)
    app.add_middleware(NulInUrlMiddleware)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    return app
