"""Hash sets and YARA rule sets: admins register (by server path or upload); staff read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from api.deps import CtxDep, RowId, SessionDep, SettingsDep
from api.uploads import save_upload, staging
from triage import registry
from triage.evidence.paths import confine
from triage.models.accounts import STAFF_ROLES, Role
from triage.models.runs import HashSetPublic, HashSetRegister, RuleSetPublic, RuleSetRecord, RuleSetRegister

router = APIRouter(tags=["reference sets"])


@router.get("/hashsets", response_model=list[HashSetPublic])
def list_hashsets(session: SessionDep, ctx: CtxDep) -> list[HashSetPublic]:
    ctx.require(*STAFF_ROLES)
    return [HashSetPublic.model_validate(h) for h in registry.list_hashsets(session)]


@router.post("/hashsets", response_model=HashSetPublic, status_code=201, responses={400: {}, 409: {}})
def register_hashset(
    data: HashSetRegister, session: SessionDep, ctx: CtxDep, settings: SettingsDep
) -> HashSetPublic:
    """Register a hash set file already on the server, inside the reference roots
    (TRIAGE_REFERENCE_ROOTS); validated and indexed now."""
    ctx.require(Role.admin)
    path = confine(data.path, settings.reference_roots, what="reference roots")
    record = registry.register_hashset(session, ctx, settings, path, data.name, data.kind)
    session.commit()
    return HashSetPublic.model_validate(record)


@router.post("/hashsets/upload", response_model=HashSetPublic, status_code=201, responses={400: {}, 409: {}})
def upload_hashset(
    file: Annotated[UploadFile, File()],
    session: SessionDep,
    ctx: CtxDep,
    settings: SettingsDep,
    name: Annotated[str | None, Form()] = None,
    kind: Annotated[str | None, Form(pattern="^(known_bad|known_good)$")] = None,
) -> HashSetPublic:
    ctx.require(Role.admin)
    with staging(settings) as folder:
        saved = save_upload(file, folder)
        record = registry.register_hashset(
            session, ctx, settings, saved, name or saved.name, kind, disposable=True
        )
    session.commit()
    return HashSetPublic.model_validate(record)


@router.post("/hashsets/{hashset_id}/deactivate", response_model=HashSetPublic)
def deactivate_hashset(hashset_id: RowId, session: SessionDep, ctx: CtxDep) -> HashSetPublic:
    """New runs stop using the set (runs already queued keep it); admins only, audited."""
    return _set_hashset_active(session, ctx, hashset_id, False)


@router.post("/hashsets/{hashset_id}/activate", response_model=HashSetPublic)
def activate_hashset(hashset_id: RowId, session: SessionDep, ctx: CtxDep) -> HashSetPublic:
    """New runs use the set again; admins only, audited."""
    return _set_hashset_active(session, ctx, hashset_id, True)


def _set_hashset_active(session: SessionDep, ctx: CtxDep, hashset_id: int, active: bool) -> HashSetPublic:
    ctx.require(Role.admin)
    record = registry.get_hashset(session, hashset_id)
    registry.set_active(session, ctx, record, active)
    session.commit()
    return HashSetPublic.model_validate(record)


@router.get("/rulesets", response_model=list[RuleSetPublic])
def list_rulesets(session: SessionDep, ctx: CtxDep) -> list[RuleSetPublic]:
    ctx.require(*STAFF_ROLES)
    in_use = registry.ruleset_in_use(session)
    return [_public(r, in_use) for r in registry.list_rulesets(session)]


@router.post("/rulesets", response_model=RuleSetPublic, status_code=201, responses={400: {}, 409: {}})
def register_ruleset(
    data: RuleSetRegister, session: SessionDep, ctx: CtxDep, settings: SettingsDep
) -> RuleSetPublic:
    """Register a rule file or folder on the server, inside the reference roots
    (TRIAGE_REFERENCE_ROOTS); refused if it does not compile."""
    ctx.require(Role.admin)
    path = confine(data.path, settings.reference_roots, allow_dir=True, what="reference roots")
    record = registry.register_ruleset(session, ctx, settings, path, data.name)
    session.commit()
    return _public(record, registry.ruleset_in_use(session))


@router.post("/rulesets/upload", response_model=RuleSetPublic, status_code=201, responses={400: {}, 409: {}})
def upload_ruleset(
    files: Annotated[list[UploadFile], File()],
    session: SessionDep,
    ctx: CtxDep,
    settings: SettingsDep,
    name: Annotated[str | None, Form()] = None,
) -> RuleSetPublic:
    ctx.require(Role.admin)
    with staging(settings) as folder:
        for upload in files:
            save_upload(upload, folder, "files")
        record = registry.register_ruleset(session, ctx, settings, folder, name or "uploaded rules")
    session.commit()
    return _public(record, registry.ruleset_in_use(session))


@router.post("/rulesets/{ruleset_id}/deactivate", response_model=RuleSetPublic)
def deactivate_ruleset(ruleset_id: RowId, session: SessionDep, ctx: CtxDep) -> RuleSetPublic:
    """New runs stop using the rule set; they use the newest active one. Admins only, audited."""
    return _set_ruleset_active(session, ctx, ruleset_id, False)


@router.post("/rulesets/{ruleset_id}/activate", response_model=RuleSetPublic)
def activate_ruleset(ruleset_id: RowId, session: SessionDep, ctx: CtxDep) -> RuleSetPublic:
    """Make the rule set eligible again (new runs use the newest active one); admins only,
    audited."""
    return _set_ruleset_active(session, ctx, ruleset_id, True)


def _set_ruleset_active(session: SessionDep, ctx: CtxDep, ruleset_id: int, active: bool) -> RuleSetPublic:
    ctx.require(Role.admin)
    record = registry.get_ruleset(session, ruleset_id)
    registry.set_active(session, ctx, record, active)
    session.commit()
    return _public(record, registry.ruleset_in_use(session))


def _public(record: RuleSetRecord, in_use: int | None) -> RuleSetPublic:
    """The rule set as the API shows it, saying whether new runs use it (``in_use``: the id
    of the one they do)."""
    public = RuleSetPublic.model_validate(record)
    public.in_use = record.id == in_use
    return public
