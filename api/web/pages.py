"""The pages. Every form answers bad input with a clear message on the page it came from."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlmodel import Session, col, select

from api.deps import Offset, RowId, SessionDep, SettingsDep
from api.routes.auth import TooManyLogins, client_of, sign_in
from api.uploads import save_upload, staging
from scoring.score import restriction_words
from triage import access, accounts, backlog, queue, registry, runs, vendors
from triage.context import Context
from triage.errors import AuthenticationError, NotFoundError, PermissionDeniedError, TriageError, in_words
from triage.models.accounts import Account, Role
from triage.models.cases import Case
from triage.models.exhibits import DeviceType, Exhibit
from triage.models.queue import CompleteRequest, ExaminationTask, OverrideCreate, TaskState
from triage.models.runs import ACTIVE_RUN_STATES, HashSetRecord, RuleSetRecord, RunState, TriageHit, TriageRun
from triage.models.types import INT32_MAX
from triage.models.vendors import DispatchRequest, Outsourcing, OutsourcingState, ReturnRequest, Vendor
from triage.pagination import Page, paginate

COOKIE = "triage_session"
HOME = {Role.manager: "/queue", Role.admin: "/admin", Role.examiner: "/work", Role.investigator: "/my"}
PAGE_SIZE = 25
HITS_PAGE = 100
templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))


def _code(value: object) -> str:
    """A stored code, given as an enum member or as its text."""
    return str(getattr(value, "value", value))


# Stored codes as people read them: ``in_examination`` -> "in examination"; a family
# restriction's kind as the score's reasons name it.
templates.env.filters["words"] = lambda value: _code(value).replace("_", " ")
templates.env.filters["restriction"] = lambda value: restriction_words(_code(value))
templates.env.globals["no_pace"] = queue.NO_PACE
router = APIRouter(include_in_schema=False)


class LoginRequired(Exception):
    """Raised by page dependencies; answered with a redirect to the sign-in page."""


def page_account(request: Request, session: SessionDep, settings: SettingsDep) -> Account:
    token = request.cookies.get(COOKIE)
    if not token:
        raise LoginRequired
    try:
        return accounts.account_from_token(session, settings, token)
    except AuthenticationError:
        raise LoginRequired from None


PageAccount = Annotated[Account, Depends(page_account)]


def signed_in_account(request: Request) -> Account | None:
    """The account signed in on this browser, for an error page no route served (so no
    dependency loaded it); None when nobody is, or when it cannot be told (the page is then
    shown as to anyone signed out)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        with Session(request.app.state.engine) as session:
            return accounts.account_from_token(session, request.app.state.settings, token)
    except Exception:  # noqa: BLE001 - a way around on an error page, never a second error
        return None


def _ctx(request: Request, account: Account) -> Context:
    return Context(actor=account, request_id=request.state.request_id)


def _told(page: str, message: str, **params: str) -> RedirectResponse:
    """Back to ``page`` after a form, with a message for it to show (any characters: names
    of uploaded files may hold '&' or '#') and any other query ``params`` it takes."""
    return RedirectResponse(f"{page}?{urlencode({**params, 'message': message})}", status_code=303)


def render(
    request: Request, template: str, account: Account | None, status: int = 200, **data: Any
) -> HTMLResponse:
    return templates.TemplateResponse(
        request, template, {"account": account, "home": HOME, **data}, status_code=status
    )


TITLES = {404: "Not found", 403: "Not allowed", 500: "Something went wrong", 503: "Not available just now"}


def problem_page(
    request: Request,
    account: Account | None,
    status: int,
    problem: str,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """An error as a page: what is wrong, and the way home (the start page if the account is
    not known, which leads a signed-in person home and anyone else to sign in)."""
    response = render(
        request, "error.html", account, status, title=TITLES.get(status, "Cannot do that"), problem=problem
    )
    response.headers.update(headers or {})
    return response


def error_page(request: Request, account: Account | None, exc: Exception) -> HTMLResponse:
    """The page for an error a page's handler caught, with the status the API gives it."""
    from api.errors import status_for  # api.errors answers with these pages: imported late

    return problem_page(request, account, status_for(exc), str(exc))


def _errors(exc: ValidationError) -> str:
    return in_words(exc.errors(), "form")


# --- sign in and out -----------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return render(request, "login.html", None)


@router.post("/login", response_model=None)
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    if not username or not password:
        return render(
            request, "login.html", None, 400, error="Enter your username and password.", username=username
        )
    try:
        account, token, lifetime = sign_in(request, session, settings, username, password, "pages")
    except AuthenticationError:
        return render(
            request, "login.html", None, 401, error="Wrong username or password.", username=username
        )
    except TooManyLogins:
        return render(
            request,
            "login.html",
            None,
            429,
            error="Too many failed sign-ins; try again later.",
            username=username,
        )
    response = RedirectResponse(HOME[Role(account.role)], status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=lifetime,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep, settings: SettingsDep) -> RedirectResponse:
    """Sign out: the cookie goes, the token it held is withdrawn (a copy of it no longer
    works), and the audit log records who signed out, as it records who signed in (nobody, if
    the cookie's token had already expired or been withdrawn)."""
    token = request.cookies.get(COOKIE)
    if token:
        try:
            account = accounts.account_from_token(session, settings, token)
        except AuthenticationError:
            pass
        else:
            accounts.sign_out(session, settings, _ctx(request, account), token, client_of(request), "pages")
            session.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.get("/")
def home(account: PageAccount) -> RedirectResponse:
    """Each role lands on its own home page (no session: the sign-in page)."""
    return RedirectResponse(HOME[Role(account.role)], status_code=303)


# --- manager: the queue, overrides with preview ----------------------------------------------


@router.get("/queue", response_class=HTMLResponse)
def queue_page(
    request: Request, account: PageAccount, session: SessionDep, offset: Offset = 0
) -> HTMLResponse:
    if account.role not in (Role.manager, Role.admin, Role.examiner):
        return error_page(request, account, PermissionDeniedError("the queue is for HTCU staff"))
    return _queue_page(request, account, session, offset)


def _queue_page(
    request: Request, account: Account, session: Session, offset: int, status: int = 200, **extra: Any
) -> HTMLResponse:
    """The queue from ``offset``; an override form's error comes back on it (``extra``)."""
    rows, total = queue.queue_entries(session, offset, PAGE_SIZE)
    return render(
        request,
        "queue.html",
        account,
        status,
        rows=rows,
        total=total,
        offset=offset,
        page=PAGE_SIZE,
        default_expiry=(datetime.now(UTC) + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M"),
        **extra,
    )


@router.post("/queue/{case_id}/override", response_class=HTMLResponse)
def override(
    request: Request,
    case_id: RowId,
    account: PageAccount,
    session: SessionDep,
    kind: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    points: Annotated[str, Form()] = "0",
    expires_at: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    ctx = _ctx(request, account)
    try:
        case = access.get_case(session, ctx, case_id)
        when = datetime.fromisoformat(expires_at) if expires_at else None
        if when is not None and when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        data = OverrideCreate(kind=kind, reason=reason, points=float(points or 0), expires_at=when)  # type: ignore[arg-type]
        if confirm:
            queue.add_override(session, ctx, case, data)
            session.commit()
            return RedirectResponse("/queue", status_code=303)
        preview = queue.preview_override(session, ctx, case, data)
    except ValidationError as exc:
        return _queue_with_error(request, account, session, case_id, _errors(exc))
    except ValueError as exc:
        return _queue_with_error(request, account, session, case_id, f"expiry: {exc}")
    except TriageError as exc:
        if isinstance(exc, NotFoundError | PermissionDeniedError):
            return error_page(request, account, exc)
        return _queue_with_error(request, account, session, case_id, str(exc))
    return render(
        request,
        "preview.html",
        account,
        case=case,
        data=data,
        preview=preview,
        expires_at=expires_at,
        points=points,
    )


def _queue_with_error(
    request: Request, account: Account, session: Session, case_id: int, message: str
) -> HTMLResponse:
    return _queue_page(request, account, session, 0, 422, error=message, error_case=case_id)


# --- manager: backlog and vendors ------------------------------------------------------------


@router.get("/backlog", response_class=HTMLResponse)
def backlog_page(
    request: Request,
    account: PageAccount,
    session: SessionDep,
    extra: Annotated[int, Query(ge=0, le=100_000)] = 10,  # as the API's forecast allows
    target: Annotated[date | None, Query()] = None,
    message: str = "",
) -> HTMLResponse:
    if account.role not in (Role.manager, Role.admin):
        return error_page(request, account, PermissionDeniedError("the backlog is for managers"))
    return _backlog(request, account, session, extra, target, message=message)


def _backlog(
    request: Request,
    account: Account,
    session: Session,
    extra: int = 10,
    target: date | None = None,
    status: int = 200,
    **shown: Any,
) -> HTMLResponse:
    """The backlog page; with a ``target`` date, which exhibits to send to which vendor to
    meet it (each with a button that sends it)."""
    now = datetime.now(UTC)
    figures = backlog.figures(session, now)
    forecast = backlog.forecast(session, now, 0, extra)
    plan = None
    if target is not None:
        if target > now.date():
            plan = backlog.recommend(session, now, target)
        else:
            status, shown["error"] = 422, f"The target date {target} must be in the future."
    return render(
        request,
        "backlog.html",
        account,
        status,
        figures=figures,
        forecast=forecast,
        extra=extra,
        target=target,
        plan=plan,
        tomorrow=now.date() + timedelta(days=1),
        **shown,
    )


@router.post("/backlog/outsource", response_model=None)
def backlog_outsource(
    request: Request,
    account: PageAccount,
    session: SessionDep,
    exhibit_id: Annotated[str, Form()] = "",
    vendor_id: Annotated[str, Form()] = "",
    target: Annotated[date | None, Form()] = None,
) -> Response:
    """Send one exhibit of the recommendation to its vendor (refused with the reason, as in
    the API)."""
    if account.role not in (Role.manager, Role.admin):
        return error_page(request, account, PermissionDeniedError("outsourcing is for managers"))
    reason = f"to meet the backlog target of {target}" if target else "outsourced to meet the backlog"
    try:
        data = DispatchRequest(vendor_id=vendor_id, reason=reason)  # type: ignore[arg-type]
        known = exhibit_id.isascii() and exhibit_id.isdigit() and 1 <= int(exhibit_id) <= INT32_MAX
        exhibit = session.get(Exhibit, int(exhibit_id)) if known else None
        if exhibit is None:
            raise NotFoundError(f"exhibit {exhibit_id[:20]!r} not found")
        record = vendors.dispatch(
            session, _ctx(request, account), exhibit, vendors.get_vendor(session, data.vendor_id), reason
        )
    except ValidationError as exc:
        session.rollback()
        return _backlog(request, account, session, target=target, status=422, error=_errors(exc))
    except TriageError as exc:
        session.rollback()
        if isinstance(exc, NotFoundError | PermissionDeniedError):
            return error_page(request, account, exc)
        return _backlog(request, account, session, target=target, status=409, error=str(exc))
    session.commit()
    sent = f"{exhibit.reference} sent to the vendor, due back {record.due_date}."
    return _told("/backlog", sent, **({"target": target.isoformat()} if target else {}))


@router.get("/vendors", response_class=HTMLResponse)
def vendors_page(
    request: Request, account: PageAccount, session: SessionDep, message: str = ""
) -> HTMLResponse:
    if account.role not in (Role.manager, Role.admin):
        return error_page(request, account, PermissionDeniedError("vendors are for managers"))
    return _vendors(request, account, session, message=message)


def _vendors(
    request: Request, account: Account, session: Session, status: int = 200, **shown: Any
) -> HTMLResponse:
    today = datetime.now(UTC).date()  # as the API judges overdue
    out = session.exec(
        select(Outsourcing, Vendor.name, Case.crime_reference, Exhibit.reference)
        .join(Vendor, col(Vendor.id) == Outsourcing.vendor_id)
        .join(Exhibit, col(Exhibit.id) == Outsourcing.exhibit_id)
        .join(Case, col(Case.id) == Exhibit.case_id)
        .where(Outsourcing.state == OutsourcingState.with_vendor)
        .order_by(col(Outsourcing.due_date))
    ).all()
    rows = [
        {
            "record": o,
            "vendor": vendor,
            "exhibit": f"{crime} / {ref}",
            "overdue": vendors.is_overdue(o, today),
        }
        for o, vendor, crime, ref in out
    ]
    return render(
        request,
        "vendors.html",
        account,
        status,
        vendors=session.exec(select(Vendor).order_by(col(Vendor.name))).all(),
        rows=rows,
        **shown,
    )


@router.post("/vendors/outsourcings/{outsourcing_id}/return", response_model=None)
def vendors_return(
    request: Request,
    outsourcing_id: RowId,
    account: PageAccount,
    session: SessionDep,
    report_reference: Annotated[str, Form()] = "",
    examined: Annotated[str, Form()] = "",
) -> Response:
    """Record an exhibit's return: the vendor's report, and the image hashed again (a
    changed hash is flagged and the exhibit goes back to the in-house queue)."""
    if account.role not in (Role.manager, Role.admin):
        return error_page(request, account, PermissionDeniedError("outsourcing is for managers"))
    try:
        data = ReturnRequest(report_reference=report_reference.strip(), examined=examined == "yes")
        ctx = _ctx(request, account)
        record = access.get_scoped(session, ctx, Outsourcing, outsourcing_id, "outsourcing")
        record = vendors.receive(session, ctx, record, data.report_reference, data.examined)
    except ValidationError as exc:
        session.rollback()
        return _vendors(request, account, session, status=422, error=_errors(exc))
    except TriageError as exc:
        session.rollback()
        if isinstance(exc, NotFoundError | PermissionDeniedError):
            return error_page(request, account, exc)
        return _vendors(request, account, session, status=409, error=str(exc))
    session.commit()
    if record.state is OutsourcingState.returned_flagged:
        return _told(
            "/vendors", "Returned, but the image hash changed while away: flagged, and back in the queue."
        )
    outcome = "examined" if data.examined else "back in the in-house queue"
    return _told("/vendors", f"Returned with report {data.report_reference}: {outcome}.")


# --- examiner: take next job, the task, live triage progress ---------------------------------


@router.get("/work", response_class=HTMLResponse)
def work(request: Request, account: PageAccount, session: SessionDep, message: str = "") -> HTMLResponse:
    if account.role not in (Role.examiner, Role.admin):
        return error_page(request, account, PermissionDeniedError("taking jobs is for examiners"))
    # Named as examiners know them: the crime reference and the exhibit's own reference.
    mine = session.exec(
        select(ExaminationTask, Case.crime_reference, Exhibit.reference)
        .join(Case, col(Case.id) == ExaminationTask.case_id)
        .join(Exhibit, col(Exhibit.id) == ExaminationTask.exhibit_id)
        .where(ExaminationTask.claimed_by == account.id, ExaminationTask.state == TaskState.claimed)
        .order_by(col(ExaminationTask.id))
    ).all()
    active = session.exec(
        select(TriageRun, Case.crime_reference, Exhibit.reference)
        .join(Exhibit, col(Exhibit.id) == TriageRun.exhibit_id)
        .join(Case, col(Case.id) == Exhibit.case_id)
        .where(col(TriageRun.state).in_(ACTIVE_RUN_STATES))
        .order_by(col(TriageRun.id))
    ).all()
    return render(request, "work.html", account, mine=mine, active=active, message=message)


@router.post("/work/claim", response_model=None)
def claim(request: Request, account: PageAccount, session: SessionDep, settings: SettingsDep) -> Response:
    try:
        task = queue.claim_next(session, _ctx(request, account), settings.task_lease_seconds)
    except TriageError as exc:
        return error_page(request, account, exc)
    session.commit()
    if task is None:
        return _told("/work", "No job you are qualified for is waiting.")
    return RedirectResponse(f"/work/tasks/{task.id}", status_code=303)


@router.get("/work/tasks/{task_id}", response_class=HTMLResponse)
def task_page(
    request: Request, task_id: RowId, account: PageAccount, session: SessionDep, offset: Offset = 0
) -> HTMLResponse:
    try:
        task = access.get_scoped(session, _ctx(request, account), ExaminationTask, task_id, "task")
    except NotFoundError as exc:
        return error_page(request, account, exc)
    return _task(request, account, session, task, offset)


def _task(
    request: Request,
    account: Account,
    session: Session,
    task: ExaminationTask,
    offset: int = 0,
    status: int = 200,
    **shown: Any,
) -> HTMLResponse:
    """The task with what triage found: the latest run that finished (a newer one may be
    queued or have failed) and every hit, a page at a time, known-bad hash hits first."""
    run = session.exec(
        select(TriageRun)
        .where(TriageRun.exhibit_id == task.exhibit_id, TriageRun.state == RunState.succeeded)
        .order_by(col(TriageRun.id).desc())
    ).first()
    hits: list[Any] = []
    total = 0
    if run is not None:
        query = (
            select(TriageHit)
            .where(TriageHit.run_id == run.id)
            .order_by(col(TriageHit.source), col(TriageHit.path), col(TriageHit.id))
        )
        hits, total = paginate(session, query, Page(offset, HITS_PAGE))
    return render(
        request,
        "task.html",
        account,
        status,
        task=task,
        exhibit=session.get(Exhibit, task.exhibit_id),
        case=session.get(Case, task.case_id),
        run=run,
        hits=hits,
        total=total,
        offset=offset,
        page=HITS_PAGE,
        **shown,
    )


@router.post("/work/tasks/{task_id}/{action}", response_model=None)
def task_action(
    request: Request,
    task_id: RowId,
    action: str,
    account: PageAccount,
    session: SessionDep,
    outcome: Annotated[str, Form()] = "",
) -> Response:
    ctx = _ctx(request, account)
    try:
        task = access.get_scoped(session, ctx, ExaminationTask, task_id, "task")
        if action == "complete":
            try:
                done = CompleteRequest(attempt=task.attempt, outcome=outcome.strip())  # as the API checks it
            except ValidationError as exc:
                problem = (
                    _errors(exc)
                    if outcome.strip()
                    else "Write the outcome of the examination before completing."
                )
                return _task(request, account, session, task, status=422, error=problem)
            queue.complete(session, ctx, task, done.attempt, done.outcome)
            message = "Job completed."
        elif action == "release":
            queue.release(session, ctx, task, task.attempt)
            message = "Job handed back to the queue."
        else:
            raise NotFoundError(f"no action {action!r}")
    except TriageError as exc:
        return error_page(request, account, exc)
    session.commit()
    return _told("/work", message)


@router.get("/runs/{run_id}/progress.json")
def run_progress(request: Request, run_id: RowId, account: PageAccount, session: SessionDep) -> JSONResponse:
    try:
        run = access.get_scoped(session, _ctx(request, account), TriageRun, run_id, "run")
    except NotFoundError:
        return JSONResponse({"detail": "not found"}, status_code=404)
    return JSONResponse(
        {
            "state": run.state.value,
            "phase": run.phase,
            "bytes_done": run.bytes_done,
            "bytes_total": run.bytes_total,
            "seconds_left": runs.seconds_left(run),
        }
    )


# --- investigator: my cases ---------------------------------------------------------------------


@router.get("/my", response_class=HTMLResponse)
def my_cases(request: Request, account: PageAccount, session: SessionDep) -> HTMLResponse:
    snapshot = queue.queue_snapshot(session)
    cases = [
        {
            "case": c,
            "devices": queue.device_statuses(session, c, snapshot),
            "days": queue.restriction_days_today(c),
        }
        for c in session.exec(access.own_cases(_ctx(request, account))).all()
    ]
    return render(request, "my.html", account, cases=cases)


@router.get("/my/cases/{case_id}", response_class=HTMLResponse)
def my_case(request: Request, case_id: RowId, account: PageAccount, session: SessionDep) -> HTMLResponse:
    try:
        case = access.get_case(session, _ctx(request, account), case_id)
    except NotFoundError as exc:
        return error_page(request, account, exc)
    snapshot = queue.queue_snapshot(session)
    return render(
        request,
        "case.html",
        account,
        case=case,
        devices=queue.device_statuses(session, case, snapshot),
        days=queue.restriction_days_today(case),
    )


# --- admin ---------------------------------------------------------------------------------------


def _admin(
    request: Request,
    account: Account,
    session: Session,
    settings: Any,
    offset: int = 0,
    status: int = 200,
    **extra: Any,
) -> HTMLResponse:
    rows, total = accounts.list_accounts(session, offset, PAGE_SIZE)
    return render(
        request,
        "admin.html",
        account,
        status,
        accounts=rows,
        total=total,
        offset=offset,
        page=PAGE_SIZE,
        hashsets=registry.list_hashsets(session),
        rulesets=registry.list_rulesets(session),
        ruleset_in_use=registry.ruleset_in_use(session),
        roots=settings.resolved_evidence_roots(),
        roles=[r.value for r in Role],
        device_kinds=[d.value for d in DeviceType],
        max_upload=settings.max_upload_bytes,
        **extra,
    )


@router.get("/admin", response_class=HTMLResponse)
def admin_page(
    request: Request,
    account: PageAccount,
    session: SessionDep,
    settings: SettingsDep,
    offset: Offset = 0,
    message: str = "",
) -> HTMLResponse:
    if account.role is not Role.admin:
        return error_page(request, account, PermissionDeniedError("administration is for admins"))
    return _admin(request, account, session, settings, offset, message=message)


@router.post("/admin/accounts", response_model=None)
def admin_create_account(
    request: Request,
    account: PageAccount,
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form()] = "",
    full_name: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    device_types: Annotated[list[str] | None, Form()] = None,
    iioc_cleared: Annotated[str, Form()] = "",
) -> Response:
    try:
        data = accounts.AccountCreate(
            username=username,
            full_name=full_name,
            role=role,  # type: ignore[arg-type]
            password=password,
            device_types=device_types or [],  # type: ignore[arg-type]
            iioc_cleared=iioc_cleared == "yes",
        )
        accounts.create_account(session, _ctx(request, account), data)
    except ValidationError as exc:
        session.rollback()
        return _admin(request, account, session, settings, status=422, error=_errors(exc))
    except TriageError as exc:
        session.rollback()
        if isinstance(exc, PermissionDeniedError):
            return error_page(request, account, exc)
        return _admin(request, account, session, settings, status=422, error=str(exc))
    session.commit()
    return _told("/admin", f"Account {username} created.")


@router.post("/admin/accounts/{account_id}/{action}", response_model=None)
def admin_account_action(
    request: Request,
    account_id: RowId,
    action: str,
    account: PageAccount,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    done = {
        "disable": "disabled",
        "enable": "enabled",
        "clear": "cleared for indecent imagery",
        "withdraw-clearance": "no longer cleared for indecent imagery",
    }
    if action not in done:
        return error_page(request, account, NotFoundError(f"no action {action!r}"))
    try:
        target = accounts.get_account(session, account_id)
        if action in ("disable", "enable"):
            accounts.set_active(session, _ctx(request, account), target, action == "enable")
        else:
            change = accounts.AccountUpdate(iioc_cleared=action == "clear")
            accounts.update_account(session, _ctx(request, account), target, change)
    except TriageError as exc:
        session.rollback()
        if isinstance(exc, NotFoundError | PermissionDeniedError):
            return error_page(request, account, exc)
        return _admin(request, account, session, settings, status=409, error=str(exc))
    session.commit()
    return _told("/admin", f"Account {target.username} {done[action]}.")


@router.post("/admin/sets/{kind}/{set_id}/{action}", response_model=None)
def admin_set_action(
    request: Request,
    kind: str,
    set_id: RowId,
    action: str,
    account: PageAccount,
    session: SessionDep,
) -> Response:
    """Take a hash set or rule set out of use for new runs, or back into it."""
    if kind not in ("hashsets", "rulesets") or action not in ("activate", "deactivate"):
        return error_page(request, account, NotFoundError(f"no {kind!r} action {action!r}"))
    try:
        record: HashSetRecord | RuleSetRecord = (
            registry.get_hashset(session, set_id)
            if kind == "hashsets"
            else registry.get_ruleset(session, set_id)
        )
        registry.set_active(session, _ctx(request, account), record, action == "activate")
    except TriageError as exc:
        session.rollback()
        return error_page(request, account, exc)
    session.commit()
    return _told("/admin", f"{record.name} {action}d.")


REFERENCE_UPLOADS = "/admin/reference/"
"""Where the admin page uploads hash sets and rule files (the prefix of the address)."""


@router.post(REFERENCE_UPLOADS + "{kind}", response_model=None)
def admin_upload(
    request: Request,
    kind: str,
    account: PageAccount,
    session: SessionDep,
    settings: SettingsDep,
    file: Annotated[UploadFile | None, File()] = None,
    hashset_kind: Annotated[str, Form()] = "",
) -> Response:
    """Upload a hash set or a YARA rule file: validated (indexed or compiled) before it is kept."""
    if account.role is not Role.admin:
        return error_page(request, account, PermissionDeniedError("administration is for admins"))
    if file is None or not file.filename:
        return _admin(request, account, session, settings, status=422, error="Choose a file to upload.")
    with staging(settings) as folder:
        try:
            target = save_upload(file, folder)
            if kind == "hashsets":
                record: Any = registry.register_hashset(
                    session,
                    _ctx(request, account),
                    settings,
                    target,
                    target.name,
                    hashset_kind or None,
                    disposable=True,
                )
            elif kind == "rulesets":
                record = registry.register_ruleset(
                    session, _ctx(request, account), settings, target, target.name
                )
            else:
                return error_page(request, account, NotFoundError(f"no reference kind {kind!r}"))
        except (TriageError, ValueError) as exc:
            session.rollback()
            name = Path(file.filename).name
            return _admin(request, account, session, settings, status=422, error=f"{name}: {exc}")
    session.commit()
    return _told("/admin", f"{record.name} registered.")
