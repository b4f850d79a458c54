"""The one place where domain errors become HTTP answers."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError as DBDataError
from sqlalchemy.exc import IntegrityError as DBIntegrityError

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


def status_for(exc: Exception) -> int:
    for kind, status in STATUS:
        if isinstance(exc, kind):
            return status
    return 500


def install(app: FastAPI) -> None:
    async def triage_error(request: Request, exc: Exception) -> JSONResponse:
        status = status_for(exc)
        if isinstance(exc, errors.FieldValidationError):
            content: dict[str, object] = {
                "detail": [{"loc": ["body", exc.field], "msg": exc.message, "type": "value_error"}]
            }
        else:
            content = {"detail": str(exc)}
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(content, status_code=status, headers=headers)

    async def db_conflict(request: Request, exc: Exception) -> JSONResponse:
        # A unique constraint lost a race with a concurrent request: nothing was written.
        return JSONResponse({"detail": "conflicts with an existing record"}, status_code=409)

    async def db_data_error(request: Request, exc: Exception) -> JSONResponse:
        # A value the validation let through but the database cannot hold (a NUL in a query
        # filter, say): the transaction is rolled back, so nothing was written. Logged, as it
        # means a check is missing at the edge.
        reason = str(getattr(exc, "orig", exc)).splitlines()[0]
        log.warning("database refused a value (%s %s): %s", request.method, request.url.path, reason)
        return JSONResponse({"detail": f"a value was refused by the database: {reason}"}, status_code=422)

    app.add_exception_handler(errors.TriageError, triage_error)
    app.add_exception_handler(DBDataError, db_data_error)
    app.add_exception_handler(DBIntegrityError, db_conflict)
