"""The one place where errors become HTTP answers: JSON for the API and the machine endpoints,
a page for everything else (a person who mistypes a page's address gets a page saying what is
wrong, with the way home)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError as DBDataError
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.exc import OperationalError as DBOperationalError
from sqlalchemy.exc import TimeoutError as DBPoolTimeout
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.web import pages
from triage import errors

log = logging.getLogger(__name__)

STATUS: list[tuple[type[Exception], int]] = [
    (errors.AuthenticationError, 401),
    (errors.PermissionDeniedError, 403),
    (errors.NotFoundError, 404),
    (errors.ConflictError, 409),
    (errors.FieldValidationError, 422),
    (errors.InvalidInputError, 400),
    (errors.HashSetError, 400),
    (errors.RulesError, 400),
    (errors.EvidenceError, 400),
    (errors.TriageError, 400),
]

RETRY_AFTER_SECONDS = 5  # what a 503 asks a client to wait before trying again

# Addresses answered in JSON whatever goes wrong: the API and what machines read.
MACHINE_PATHS = ("/api/", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/redoc")


def status_for(exc: Exception) -> int:
    for kind, status in STATUS:
        if isinstance(exc, kind):
            return status
    return 500


def page_address(path: str) -> bool:
    """True for the pages' addresses: everything but the API, the machine endpoints and what a
    page's script reads (``.json``, such as a run's progress)."""
    return not (path.startswith(MACHINE_PATHS) or path.endswith(".json"))


def for_a_person(request: Request) -> bool:
    """True when the request is for a page (:func:`page_address`)."""
    return page_address(request.url.path)


def answer(request: Request, status: int, detail: Any, headers: dict[str, str] | None = None) -> Response:
    """The error response: a page for a person (:func:`for_a_person`), else ``{"detail": ...}``."""
    if for_a_person(request):
        text = errors.in_words(detail, whole="request") if isinstance(detail, list) else str(detail)
        return pages.problem_page(request, None, status, text, headers)
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _database_reason(exc: Exception) -> str:
    """The first line of what the database (its driver's error) or the pool said."""
    return str(getattr(exc, "orig", None) or exc).splitlines()[0]


def install(app: FastAPI, headers_for: Callable[[str], list[tuple[bytes, bytes]]] | None = None) -> None:
    """Answer every error as :func:`answer` does. ``headers_for(path)`` gives the headers the
    middleware adds to other responses (the security headers): Starlette sends a 500 from
    outside the app's middleware, so they are added to it here."""

    async def triage_error(request: Request, exc: Exception) -> Response:
        status = status_for(exc)
        detail: Any = str(exc)
        if isinstance(exc, errors.FieldValidationError):
            detail = [{"loc": ["body", exc.field], "msg": exc.message, "type": "value_error"}]
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return answer(request, status, detail, headers)

    async def db_conflict(request: Request, exc: Exception) -> Response:
        # A unique constraint lost a race with a concurrent request: nothing was written.
        return answer(request, 409, "conflicts with an existing record")

    async def db_data_error(request: Request, exc: Exception) -> Response:
        # A value the validation let through but the database cannot hold (a NUL in a query
        # filter, say): the transaction is rolled back, so nothing was written. Logged, as it
        # means a check is missing at the edge.
        reason = _database_reason(exc)
        log.warning("database refused a value (%s %s): %s", request.method, request.url.path, reason)
        return answer(request, 422, f"a value was refused by the database: {reason}")

    async def db_unavailable(request: Request, exc: Exception) -> Response:
        # The database did not answer (down, restarting, unreachable), every pooled connection
        # stayed busy past the pool's timeout, or it gave up on the transaction (a deadlock, a
        # lock or statement timeout). The request's transaction is rolled back; asking again
        # shortly is the remedy, so 503 with Retry-After rather than a bare 500.
        reason = _database_reason(exc)
        log.error("database unavailable (%s %s): %s", request.method, request.url.path, reason)
        detail = "the database could not be reached or could not complete the request; try again shortly"
        return answer(request, 503, detail, {"Retry-After": str(RETRY_AFTER_SECONDS)})

    async def unexpected(request: Request, exc: Exception) -> Response:
        # A fault of ours. Starlette logs the traceback after this answer is sent; the answer
        # names the request id, which the log and the audit trail carry, and nothing more.
        # Starlette sends it from outside the app's middleware, so the id header goes here.
        request_id = request.scope.get("state", {}).get("request_id", "")
        detail = f"an internal error occurred (request id {request_id}); it has been logged"
        headers = {"X-Request-ID": request_id} if request_id else {}
        for name, value in headers_for(request.url.path) if headers_for else []:
            headers[name.decode("latin-1")] = value.decode("latin-1")
        return answer(request, 500, detail, headers)

    async def invalid_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)  # registered for that class alone
        if for_a_person(request):
            return answer(request, 422, list(exc.errors()))
        return await request_validation_exception_handler(request, exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)  # registered for that class alone
        if for_a_person(request):
            # An address no page has (or a method it does not take): no route ran, so no
            # account was loaded; a signed-in person still gets the page with their way around.
            account = await run_in_threadpool(pages.signed_in_account, request)
            return pages.problem_page(
                request, account, exc.status_code, str(exc.detail), dict(exc.headers or {})
            )
        return await http_exception_handler(request, exc)

    app.add_exception_handler(errors.TriageError, triage_error)
    app.add_exception_handler(DBDataError, db_data_error)
    app.add_exception_handler(DBIntegrityError, db_conflict)
    app.add_exception_handler(DBOperationalError, db_unavailable)
    app.add_exception_handler(DBPoolTimeout, db_unavailable)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
