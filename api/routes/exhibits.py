"""Exhibits: read, update, state transitions, movements, custody trail, evidence images."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CtxDep, ExhibitDep, ImageDep, PageDep, RowIdFilter, SessionDep, SettingsDep
from api.schemas import Paged
from triage import custody, dispatch, intake, lifecycle, runs
from triage.models.exhibits import (
    CustodyEventPublic,
    DeviceType,
    ExhibitPublic,
    ExhibitState,
    ExhibitUpdate,
    MovementRequest,
    TransitionRequest,
)
from triage.models.images import ImagePublic, ImageRegister
from triage.models.runs import RunStart

router = APIRouter(tags=["exhibits"])


@router.get("/exhibits", response_model=Paged[ExhibitPublic])
def list_exhibits(
    session: SessionDep,
    ctx: CtxDep,
    page: PageDep,
    case_id: RowIdFilter = None,
    state: ExhibitState | None = None,
    device_type: DeviceType | None = None,
) -> Paged[ExhibitPublic]:
    rows, total = intake.list_exhibits(session, ctx, page, case_id, state, device_type)
    return Paged(
        items=[ExhibitPublic.model_validate(e) for e in rows],
        total=total,
        offset=page.offset,
        limit=page.limit,
    )


@router.get("/exhibits/{exhibit_id}", response_model=ExhibitPublic)
def get_exhibit(exhibit: ExhibitDep) -> ExhibitPublic:
    return ExhibitPublic.model_validate(exhibit)


@router.patch("/exhibits/{exhibit_id}", response_model=ExhibitPublic)
def update_exhibit(
    exhibit: ExhibitDep, data: ExhibitUpdate, session: SessionDep, ctx: CtxDep
) -> ExhibitPublic:
    exhibit = intake.update_exhibit(session, ctx, exhibit, data)
    session.commit()
    return ExhibitPublic.model_validate(exhibit)


@router.get("/exhibits/{exhibit_id}/transitions", response_model=list[ExhibitState])
def allowed_transitions(exhibit: ExhibitDep) -> list[ExhibitState]:
    """The states this exhibit may move to next."""
    return sorted(lifecycle.allowed_next(ExhibitState(exhibit.state)))


@router.post("/exhibits/{exhibit_id}/transitions", response_model=ExhibitPublic, responses={409: {}})
def transition(
    exhibit: ExhibitDep, data: TransitionRequest, session: SessionDep, ctx: CtxDep
) -> ExhibitPublic:
    """Move the exhibit to another lifecycle state; an illegal move answers 409."""
    exhibit = custody.transition(session, ctx, exhibit, data.to_state, data.reason)
    session.commit()
    return ExhibitPublic.model_validate(exhibit)


@router.post("/exhibits/{exhibit_id}/movements", response_model=ExhibitPublic)
def move(exhibit: ExhibitDep, data: MovementRequest, session: SessionDep, ctx: CtxDep) -> ExhibitPublic:
    """Record a physical movement of the device (custody event)."""
    exhibit = custody.move(session, ctx, exhibit, data.to_location, data.reason)
    session.commit()
    return ExhibitPublic.model_validate(exhibit)


@router.get("/exhibits/{exhibit_id}/custody", response_model=list[CustodyEventPublic])
def custody_trail(exhibit: ExhibitDep, session: SessionDep) -> list[CustodyEventPublic]:
    return [CustodyEventPublic.model_validate(e) for e in custody.trail(session, exhibit)]


@router.get("/exhibits/{exhibit_id}/images", response_model=list[ImagePublic])
def list_images(exhibit: ExhibitDep, session: SessionDep) -> list[ImagePublic]:
    return [ImagePublic.model_validate(i) for i in intake.list_images(session, exhibit)]


@router.post(
    "/exhibits/{exhibit_id}/images",
    response_model=ImagePublic,
    status_code=201,
    responses={400: {}, 409: {}},
)
def register_image(
    exhibit: ExhibitDep,
    data: ImageRegister,
    session: SessionDep,
    ctx: CtxDep,
    settings: SettingsDep,
) -> ImagePublic:
    """Register an evidence image found under an evidence root (never uploaded); unless
    ``start_triage`` is false, a triage run is queued for it at once."""
    image = intake.register_image(session, ctx, exhibit, data, settings.resolved_evidence_roots())
    run = None
    if data.start_triage and runs.active_run(session, exhibit.id or 0) is None:
        run = runs.start_run(session, ctx, exhibit, RunStart(image_id=image.id), settings.run_max_attempts)
    session.commit()
    if run is not None:
        dispatch.dispatch(session, settings, run.id or 0)
        session.commit()
    return ImagePublic.model_validate(image)


@router.get("/images/{image_id}", response_model=ImagePublic)
def get_image(image: ImageDep) -> ImagePublic:
    return ImagePublic.model_validate(image)
