"""Log in (bearer token) and who-am-I."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordRequestForm
from sqlmodel import Session

from api.deps import CurrentAccount, SessionDep, SettingsDep
from api.schemas import Token
from triage import accounts, audit
from triage.context import Context
from triage.errors import AuthenticationError
from triage.models.accounts import Account, AccountPublic
from triage.settings import Settings

router = APIRouter(prefix="/auth", tags=["auth"])

MAX_FAILURES = 10
WINDOW_SECONDS = 15 * 60


class LoginThrottle:
    """At most ``MAX_FAILURES`` failed logins per username and client in a sliding window."""

    def __init__(self) -> None:
        self._failures: dict[tuple[str, str], deque[float]] = defaultdict(deque)

    def blocked(self, key: tuple[str, str]) -> bool:
        window = self._failures[key]
        cutoff = time.monotonic() - WINDOW_SECONDS
        while window and window[0] < cutoff:
            window.popleft()
        return len(window) >= MAX_FAILURES

    def fail(self, key: tuple[str, str]) -> None:
        self._failures[key].append(time.monotonic())

    def clear(self, key: tuple[str, str]) -> None:
        self._failures.pop(key, None)


class TooManyLogins(Exception):
    """Too many failed sign-ins for this username from this client."""


def sign_in(
    request: Request, session: Session, settings: Settings, username: str, password: str, via: str
) -> tuple[Account, str, int]:
    """The one way in, for the API and the pages alike: throttled, every attempt audited.
    Returns the account, a bearer token and its lifetime in seconds."""
    throttle: LoginThrottle = request.app.state.login_throttle
    key = (username, request.client.host if request.client else "")
    if throttle.blocked(key):
        raise TooManyLogins
    try:
        account = accounts.authenticate(session, username, password)
    except AuthenticationError:
        throttle.fail(key)
        ctx = Context(actor=None, request_id=request.state.request_id)
        audit.record(
            session, ctx, "auth.login_failed", "account", "", None, {"username": username, "via": via}
        )
        session.commit()
        raise
    throttle.clear(key)
    audit.record(
        session,
        Context(actor=account, request_id=request.state.request_id),
        "auth.login",
        "account",
        account.id,
        None,
        {"via": via},
    )
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


@router.get("/me", response_model=AccountPublic)
def me(account: CurrentAccount) -> AccountPublic:
    return AccountPublic.model_validate(account)
