"""Log in (bearer token), log out (the token withdrawn) and who-am-I."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordRequestForm
from sqlmodel import Session

from api.deps import CurrentAccount, SessionDep, SettingsDep, oauth2_scheme
from api.schemas import Token
from triage import accounts
from triage.context import Context
from triage.errors import AuthenticationError
from triage.models.accounts import Account, AccountPublic
from triage.settings import Settings

router = APIRouter(prefix="/auth", tags=["auth"])


class TooManyLogins(Exception):
    """Too many failed sign-ins for this username from this client."""


def client_of(request: Request) -> str:
    """The address a request came from, as the audit log records it."""
    return request.client.host if request.client else ""


def sign_in(
    request: Request, session: Session, settings: Settings, username: str, password: str, via: str
) -> tuple[Account, str, int]:
    """The one way in, for the API and the pages alike: throttled, every attempt audited.
    Returns the account, a bearer token and its lifetime in seconds."""
    client = client_of(request)
    if accounts.sign_ins_refused(session, username, client):
        raise TooManyLogins
    try:
        account = accounts.authenticate(session, username, password)
    except AuthenticationError:
        ctx = Context(actor=None, request_id=request.state.request_id)
        accounts.record_sign_in(session, ctx, username, client, via, None)
        session.commit()
        raise
    ctx = Context(actor=account, request_id=request.state.request_id)
    accounts.record_sign_in(session, ctx, username, client, via, account)
    session.commit()
    token, lifetime = accounts.issue_token(settings, account)
    return account, token, lifetime


@router.post("/token", response_model=Token, responses={401: {}, 429: {}})
def login(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
) -> Token | JSONResponse:
    """Exchange username and password for a bearer token with an expiry."""
    try:
        _, token, expires_in = sign_in(request, session, settings, form.username, form.password, "api")
    except TooManyLogins:
        return JSONResponse({"detail": "too many failed logins; try again later"}, status_code=429)
    return Token(access_token=token, expires_in=expires_in)


@router.post("/logout", status_code=204, responses={401: {}})
def logout(
    request: Request,
    account: CurrentAccount,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    session: SessionDep,
    settings: SettingsDep,
) -> None:
    """Sign out: the token presented is refused from now on (other tokens of the account are
    not), and the audit log records it."""
    ctx = Context(actor=account, request_id=request.state.request_id)
    accounts.sign_out(session, settings, ctx, token or "", client_of(request), "api")
    session.commit()


@router.get("/me", response_model=AccountPublic)
def me(account: CurrentAccount) -> AccountPublic:
    return AccountPublic.model_validate(account)
