"""Accounts: argon2 password hashes, bearer tokens, creation and disabling (never deletion)."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import Field as PField
from sqlmodel import Session, col, delete, select

from triage import audit
from triage.context import Context
from triage.db import dialect_insert
from triage.errors import (
    AuthenticationError,
    ConflictError,
    FieldValidationError,
    NotFoundError,
)
from triage.models.accounts import Account, Role, WithdrawnToken
from triage.models.audit import AuditEvent
from triage.models.exhibits import DeviceType
from triage.models.requests import RequestModel
from triage.models.types import utcnow
from triage.settings import Settings

_hasher = PasswordHasher()
TOKEN_ALGORITHM = "HS256"  # noqa: S105 - an algorithm name
MIN_PASSWORD_LENGTH = 12


@cache
def _dummy_hash() -> str:
    """Verified against when the username is unknown, so both paths cost the same time. Made
    on first use: an Argon2 hash at import cost every process that imports this module."""
    return _hasher.hash(secrets.token_urlsafe(16))


class AccountCreate(RequestModel):
    username: str = PField(min_length=2, max_length=64, pattern=r"^[a-z0-9._\-]+$")
    password: str = PField(min_length=MIN_PASSWORD_LENGTH, max_length=200)
    role: Role
    full_name: str = PField(default="", max_length=200)
    team: str = PField(default="", max_length=100)
    device_types: list[DeviceType] = PField(default_factory=list)
    iioc_cleared: bool = False


class AccountUpdate(RequestModel):
    full_name: str | None = PField(default=None, max_length=200)
    team: str | None = PField(default=None, max_length=100)
    role: Role | None = None
    device_types: list[DeviceType] | None = None
    iioc_cleared: bool | None = None
    password: str | None = PField(default=None, min_length=MIN_PASSWORD_LENGTH, max_length=200)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _public(account: Account) -> dict[str, object]:
    return audit.snapshot(account, exclude={"password_hash"})


def create_account(session: Session, ctx: Context, data: AccountCreate) -> Account:
    if ctx.actor is not None:
        ctx.require(Role.admin)
    if session.exec(select(Account).where(Account.username == data.username)).first():
        raise ConflictError(f"username {data.username!r} is taken")
    account = Account(
        username=data.username,
        full_name=data.full_name,
        role=data.role,
        team=data.team,
        password_hash=hash_password(data.password),
        device_types=[d.value for d in data.device_types],
        iioc_cleared=data.iioc_cleared,
    )
    session.add(account)
    session.flush()
    audit.record(session, ctx, "account.create", "account", account.id, None, _public(account))
    return account


def get_account(session: Session, account_id: int) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFoundError(f"account {account_id} not found")
    return account


def find_account(session: Session, username: str) -> Account:
    account = session.exec(select(Account).where(Account.username == username)).first()
    if account is None:
        raise NotFoundError(f"account {username!r} not found")
    return account


def update_account(session: Session, ctx: Context, account: Account, data: AccountUpdate) -> Account:
    if ctx.actor is not None:
        ctx.require(Role.admin)
    before = _public(account)
    changes = data.model_dump(exclude_unset=True)
    password = changes.pop("password", None)
    for key, value in changes.items():
        if value is None and key != "full_name":
            raise FieldValidationError(key, "cannot be null")
        setattr(account, key, [d.value for d in value] if key == "device_types" else value)
    if password:
        account.password_hash = hash_password(password)
        account.token_version += 1  # whoever had the old password keeps no way in
    session.add(account)
    session.flush()
    after = _public(account)
    if password:
        after["password"] = "changed"  # noqa: S105 - a marker, never the password
    audit.record(session, ctx, "account.update", "account", account.id, before, after)
    return account


def set_active(session: Session, ctx: Context, account: Account, active: bool) -> Account:
    """Disable or re-enable; accounts are never deleted because audit events refer to them."""
    if ctx.actor is not None:
        ctx.require(Role.admin)
        if not active and ctx.actor.id == account.id:
            raise ConflictError("an admin cannot disable their own account")
    before = _public(account)
    account.is_active = active
    account.disabled_at = None if active else utcnow()
    if not active:  # its tokens do not come back to life when it is enabled again
        account.token_version += 1
    session.add(account)
    session.flush()
    audit.record(
        session,
        ctx,
        "account.enable" if active else "account.disable",
        "account",
        account.id,
        before,
        _public(account),
    )
    return account


def list_accounts(session: Session, offset: int, limit: int) -> tuple[list[Account], int]:
    from sqlalchemy import func

    total = session.exec(select(func.count()).select_from(Account)).one()
    rows = session.exec(select(Account).order_by(col(Account.id)).offset(offset).limit(limit)).all()
    return list(rows), int(total)


def authenticate(session: Session, username: str, password: str) -> Account:
    """The active account with this password, or ``AuthenticationError`` (one message for all)."""
    account = session.exec(select(Account).where(Account.username == username)).first()
    try:
        _hasher.verify(account.password_hash if account else _dummy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        raise AuthenticationError("wrong username or password") from None
    if account is None or not account.is_active:
        raise AuthenticationError("wrong username or password")
    if _hasher.check_needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
        session.add(account)
    return account


# Sign-ins: at most MAX_FAILURES failed ones for a username from one client in the window,
# counted since that client's last successful sign-in as that user.
MAX_FAILURES = 10
FAILURE_WINDOW = timedelta(minutes=15)
SIGN_IN_FAILED, SIGNED_IN, SIGNED_OUT = "auth.login_failed", "auth.login", "auth.logout"


def sign_ins_refused(session: Session, username: str, client: str) -> bool:
    """Whether sign-ins as ``username`` from ``client`` are refused for now. Counted from
    the audit log, which records every attempt (``record_sign_in``): the count is the same
    in every API worker process and survives a restart, and nothing grows in memory with
    the usernames an attacker tries."""
    since = utcnow() - FAILURE_WINDOW
    events = session.exec(
        select(AuditEvent.action, AuditEvent.after)
        .where(
            col(AuditEvent.at) >= since,
            ((col(AuditEvent.action) == SIGN_IN_FAILED) & (col(AuditEvent.object_id) == username[:64]))
            | ((col(AuditEvent.action) == SIGNED_IN) & (col(AuditEvent.actor_name) == username)),
        )
        .order_by(col(AuditEvent.id))
    )
    failures = 0
    for action, after in events:
        if (after or {}).get("client") == client:
            failures = failures + 1 if action == SIGN_IN_FAILED else 0
    return failures >= MAX_FAILURES


def record_sign_in(
    session: Session, ctx: Context, username: str, client: str, via: str, account: Account | None
) -> None:
    """Audit a sign-in (``account``) or a failed one (None: by the username tried, which may
    name no account), naming the client it came from."""
    if account is None:
        after = {"username": username, "via": via, "client": client}
        audit.record(session, ctx, SIGN_IN_FAILED, "username", username[:64], None, after)
    else:
        audit.record(session, ctx, SIGNED_IN, "account", account.id, None, {"via": via, "client": client})


def sign_out(session: Session, settings: Settings, ctx: Context, token: str, client: str, via: str) -> None:
    """Withdraw ``token`` (the signed-in account's, ``ctx``'s actor) for the rest of its
    lifetime and audit the sign-out from ``client``. Rows of tokens past their expiry go."""
    claims = _claims(settings, token)
    now = utcnow()
    session.exec(delete(WithdrawnToken).where(col(WithdrawnToken.expires_at) < now))
    # A double click on "Sign out" sends two at once: on PostgreSQL both get past the check of
    # the token, and the second insert of its id would fail. It is signed out either way.
    withdrawn = dialect_insert(session.get_bind().dialect.name)(WithdrawnToken).values(
        jti=claims["jti"],
        account_id=claims["sub"],
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        withdrawn_at=now,
    )
    session.exec(withdrawn.on_conflict_do_nothing(index_elements=["jti"]))
    audit.record(session, ctx, SIGNED_OUT, "account", ctx.actor_id, None, {"via": via, "client": client})


def issue_token(settings: Settings, account: Account) -> tuple[str, int]:
    """A signed bearer token and its lifetime in seconds."""
    lifetime = timedelta(minutes=settings.token_lifetime_minutes)
    now = utcnow()
    claims = {
        "sub": str(account.id),
        "role": account.role.value if isinstance(account.role, Role) else account.role,
        "iat": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
        "ver": account.token_version,
    }
    token = jwt.encode(claims, settings.signing_key(), algorithm=TOKEN_ALGORITHM)
    return token, int(lifetime.total_seconds())


def _claims(settings: Settings, token: str) -> dict[str, Any]:
    """The claims of a well-signed, unexpired token; anything else is 401."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.signing_key(),
            algorithms=[TOKEN_ALGORITHM],
            options={"require": ["exp", "sub", "iat"]},
        )
        claims["sub"] = int(claims["sub"])
    except jwt.ExpiredSignatureError:
        raise AuthenticationError("token expired") from None
    except (jwt.InvalidTokenError, ValueError):
        raise AuthenticationError("invalid token") from None
    if not isinstance(claims.get("jti"), str):  # checked after expiry, which is the news
        raise AuthenticationError("invalid token")
    return claims


def account_from_token(session: Session, settings: Settings, token: str) -> Account:
    """The active account a valid, unexpired, not withdrawn token names; anything else is 401.
    One query: the account, and whether the token was signed out."""
    claims = _claims(settings, token)
    signed_out = select(WithdrawnToken.jti).where(WithdrawnToken.jti == claims["jti"]).exists()
    found = session.exec(select(Account, signed_out).where(Account.id == claims["sub"])).first()
    if found is None or not found[0].is_active:
        raise AuthenticationError("account disabled or unknown")
    account, withdrawn = found
    if withdrawn:
        raise AuthenticationError("token withdrawn (signed out)")
    if claims.get("ver", 0) != account.token_version:  # tokens from before the upgrade: 0
        raise AuthenticationError("token withdrawn (the password changed, or the account was disabled)")
    return account


def generate_password() -> str:
    return secrets.token_urlsafe(18)
