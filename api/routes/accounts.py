"""Accounts and roles: admins only. Accounts are disabled, never deleted."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CtxDep, PageDep, RowId, SessionDep
from api.schemas import Paged
from triage import accounts
from triage.models.accounts import AccountPublic, Role

router = APIRouter(prefix="/accounts", tags=["accounts"])


@router.get("", response_model=Paged[AccountPublic])
def list_accounts(session: SessionDep, ctx: CtxDep, page: PageDep) -> Paged[AccountPublic]:
    ctx.require(Role.admin)
    rows, total = accounts.list_accounts(session, page.offset, page.limit)
    return Paged(
        items=[AccountPublic.model_validate(a) for a in rows],
        total=total,
        offset=page.offset,
        limit=page.limit,
    )


@router.post("", response_model=AccountPublic, status_code=201)
def create_account(data: accounts.AccountCreate, session: SessionDep, ctx: CtxDep) -> AccountPublic:
    ctx.require(Role.admin)
    account = accounts.create_account(session, ctx, data)
    session.commit()
    return AccountPublic.model_validate(account)


@router.get("/{account_id}", response_model=AccountPublic)
def get_account(account_id: RowId, session: SessionDep, ctx: CtxDep) -> AccountPublic:
    ctx.require(Role.admin)
    return AccountPublic.model_validate(accounts.get_account(session, account_id))


@router.patch("/{account_id}", response_model=AccountPublic)
def update_account(
    account_id: RowId, data: accounts.AccountUpdate, session: SessionDep, ctx: CtxDep
) -> AccountPublic:
    ctx.require(Role.admin)
    account = accounts.update_account(session, ctx, accounts.get_account(session, account_id), data)
    session.commit()
    return AccountPublic.model_validate(account)


@router.post("/{account_id}/disable", response_model=AccountPublic)
def disable_account(account_id: RowId, session: SessionDep, ctx: CtxDep) -> AccountPublic:
    ctx.require(Role.admin)
    account = accounts.set_active(session, ctx, accounts.get_account(session, account_id), False)
    session.commit()
    return AccountPublic.model_validate(account)


@router.post("/{account_id}/enable", response_model=AccountPublic)
def enable_account(account_id: RowId, session: SessionDep, ctx: CtxDep) -> AccountPublic:
    ctx.require(Role.admin)
    account = accounts.set_active(session, ctx, accounts.get_account(session, account_id), True)
    session.commit()
    return AccountPublic.model_validate(account)
