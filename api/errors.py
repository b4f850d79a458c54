"""The one place where domain errors become HTTP answers."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from triage import errors

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

    app.add_exception_handler(errors.TriageError, triage_error)
    app.add_exception_handler(DBIntegrityError, db_conflict)
