"""Dependency aliases used by every route: settings, session, current account, context, page,
and the case-scoped objects (resolved before the body, so an unseen id answers 404 first)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from triage import access, accounts
from triage.context import Context
from triage.errors import AuthenticationError
from triage.models.accounts import Account
from triage.models.cases import Case
from triage.models.exhibits import Exhibit
from triage.models.images import EvidenceImage
from triage.models.runs import TriageRun
from triage.models.types import INT32_MAX
from triage.pagination import Page
from triage.settings import Settings

# Ids and offsets in URLs: a number no row can have, or no page can start at, is refused with
# 422 before any query (the database drivers cannot even bind one beyond 64 bits).
RowId = Annotated[int, Path(ge=1, le=INT32_MAX)]
RowIdFilter = Annotated[int | None, Query(ge=1, le=INT32_MAX)]
Offset = Annotated[int, Query(ge=0, le=INT32_MAX)]

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> AsyncIterator[Session]:
    """A session per request; routes commit what they change (the caller owns the transaction).

    Opening a session does no I/O (it connects when first used), and nor does closing one that
    holds no transaction, as after a route commits: both run here on the event loop, saving
    the two thread-pool hops of a sync dependency on every request. A session still in a
    transaction (a read, or an error before the commit) is rolled back and closed in the
    thread pool, so the event loop never waits on the database."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()


SettingsDep = Annotated[Settings, Depends(get_settings)]
# Closed when the route returns (its answer built), not after the answer has been sent: a
# listing download can take a slow client minutes, and on SQLite the request's transaction
# holds every writer off (on PostgreSQL it would keep a pooled connection idle in it).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_current_account(
    session: SessionDep, settings: SettingsDep, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Account:
    if not token:
        raise AuthenticationError("not authenticated")
    return accounts.account_from_token(session, settings, token)


CurrentAccount = Annotated[Account, Depends(get_current_account)]


async def get_context(request: Request, account: CurrentAccount) -> Context:
    return Context(actor=account, request_id=request.state.request_id)


CtxDep = Annotated[Context, Depends(get_context)]


def get_page(
    settings: SettingsDep,
    offset: Offset = 0,
    limit: Annotated[int | None, Query(ge=1, description="clamped to the server's page cap")] = None,
) -> Page:
    return Page.clamp(offset, limit, settings.page_size_default, settings.page_size_max)


PageDep = Annotated[Page, Depends(get_page)]


def visible_case(case_id: RowId, session: SessionDep, ctx: CtxDep) -> Case:
    return access.get_case(session, ctx, case_id)


def visible_exhibit(exhibit_id: RowId, session: SessionDep, ctx: CtxDep) -> Exhibit:
    return access.get_exhibit(session, ctx, exhibit_id)


def visible_image(image_id: RowId, session: SessionDep, ctx: CtxDep) -> EvidenceImage:
    return access.get_image(session, ctx, image_id)


def visible_run(run_id: RowId, session: SessionDep, ctx: CtxDep) -> TriageRun:
    return access.get_scoped(session, ctx, TriageRun, run_id, "run")


CaseDep = Annotated[Case, Depends(visible_case)]
RunDep = Annotated[TriageRun, Depends(visible_run)]
ExhibitDep = Annotated[Exhibit, Depends(visible_exhibit)]
ImageDep = Annotated[EvidenceImage, Depends(visible_image)]
