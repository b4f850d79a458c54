"""The three journeys of the issue, in a real browser, plus the error messages of the forms."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tests.conftest import PASSWORD, Users
from tests.factories import exhibit_with_task, row_id
from tests.web.conftest import ROOT
from triage import queue
from triage.models.accounts import Account
from triage.models.cases import Case, OffenceCategory, RestrictionKind
from triage.models.exhibits import DeviceType, Exhibit, ExhibitState
from triage.models.images import EvidenceImage
from triage.models.queue import ExaminationTask, TaskState
from triage.models.runs import HashSetRecord, RuleSetRecord, RunState, TriageHit, TriageRun


def _wait_for(browser: Any, path: str, exact: bool = True) -> None:
    """A click on a submit button can return before the browser has navigated: wait until the
    page at ``path`` (exactly, or any path starting with it) has loaded."""
    from urllib.parse import urlparse

    def arrived(b: Any) -> bool:
        url = urlparse(b.current_url)
        here = url.path + (f"?{url.query}" if url.query else "")
        matched = url.path == path if exact else here.startswith(path)
        return matched and b.execute_script("return document.readyState") == "complete"

    WebDriverWait(browser, 20).until(arrived)


def _sign_in(browser: Any, server: str, username: str, home: str) -> None:
    browser.get(f"{server}/login")
    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    _wait_for(browser, home)


def _case(engine: Engine, ref: str, officer: int, restricted_days: int | None, device: str = "laptop") -> int:
    """A case with one exhibit waiting for examination (through the real lifecycle)."""
    from triage import custody
    from triage.context import system_context

    with Session(engine) as s:
        start = date.today() - timedelta(days=restricted_days) if restricted_days is not None else None
        case = Case(
            crime_reference=ref,
            offence_category=OffenceCategory.iioc,
            officer_id=officer,
            received_date=date.today(),
            children_in_household=2 if restricted_days is not None else 0,
            restriction_kind=RestrictionKind.no_contact_own_children if start else None,
            restriction_start=start,
        )
        s.add(case)
        s.flush()
        exhibit = Exhibit(case_id=row_id(case), reference=f"{ref}-1", device_type=DeviceType(device))
        s.add(exhibit)
        s.flush()
        custody.transition(
            s, system_context(), exhibit, ExhibitState.awaiting_examination, "cannot be imaged"
        )
        s.commit()
        return int(case.id or 0)


def _pace(engine: Engine, officer: int) -> None:
    """Two examinations finished last week, so the queue has a pace and expected dates."""
    with Session(engine) as s:
        case = Case(
            crime_reference="CR/DONE",
            offence_category=OffenceCategory.fraud,
            officer_id=officer,
            received_date=date.today(),
        )
        s.add(case)
        s.flush()
        for n in range(2):
            exhibit_with_task(
                s,
                row_id(case),
                f"D{n}",
                DeviceType.phone,
                ExhibitState.examined,
                state=TaskState.completed,
                completed_at=datetime.now(UTC) - timedelta(days=3),
            )
        s.commit()


def test_manager_signs_in_and_pins_a_case_which_then_shows_first(
    server: str, browser: Any, users: Users, engine: Engine
) -> None:
    _case(engine, "CR/URGENT", users.investigator.id or 0, 213)
    _case(engine, "CR/ROUTINE", users.investigator.id or 0, None)
    _sign_in(browser, server, "manager", "/queue")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.queue tbody tr")
    assert [r.get_attribute("data-case") for r in rows] == ["CR/URGENT", "CR/ROUTINE"]
    routine = rows[1]
    routine.find_element(By.TAG_NAME, "summary").click()
    assert "family restriction" not in routine.text.lower()
    routine.find_element(By.CSS_SELECTOR, "input[name=reason]").send_keys("Court hearing brought forward")
    routine.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait_for(browser, "/queue/", exact=False)
    preview = browser.find_element(By.ID, "preview").text
    assert "would be at position 1" in preview
    browser.find_element(By.XPATH, "//button[starts-with(., 'Confirm')]").click()
    _wait_for(browser, "/queue")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.queue tbody tr")
    assert rows[0].get_attribute("data-case") == "CR/ROUTINE" and "pinned" in rows[0].text
    (ROOT / "var" / "screenshots").mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ROOT / "var" / "screenshots" / "queue.png"))


def test_examiner_takes_the_next_job_and_completes_it(
    server: str, browser: Any, users: Users, engine: Engine
) -> None:
    case_id = _case(engine, "CR/JOB", users.investigator.id or 0, 100)
    _sign_in(browser, server, "examiner", "/work")
    browser.find_element(By.ID, "take-next").click()
    _wait_for(browser, "/work/tasks/", exact=False)
    assert "CR/JOB" in browser.find_element(By.TAG_NAME, "h1").text
    browser.find_element(By.XPATH, "//button[.='Complete']").click()  # empty outcome: refused
    assert browser.find_elements(By.ID, "outcome")  # still on the task (the browser asks first)
    browser.find_element(By.ID, "outcome").send_keys("Examined; no indecent images found.")
    browser.find_element(By.XPATH, "//button[.='Complete']").click()
    _wait_for(browser, "/work?message=", exact=False)
    assert "Job completed" in browser.find_element(By.CSS_SELECTOR, "[role=status]").text
    with Session(engine) as s:
        exhibit = s.exec(select(Exhibit).where(Exhibit.case_id == case_id)).one()
        assert exhibit.state == "examined"


def test_investigator_sees_the_expected_date_and_not_found_for_another_case(
    server: str, browser: Any, users: Users, engine: Engine
) -> None:
    _pace(engine, users.other_investigator.id or 0)
    mine = _case(engine, "CR/MINE", users.investigator.id or 0, 45)
    theirs = _case(engine, "CR/THEIRS", users.other_investigator.id or 0, None)
    _sign_in(browser, server, "ioc", "/my")
    page = browser.find_element(By.TAG_NAME, "main").text
    assert "CR/MINE" in page and "CR/THEIRS" not in page and "45 days" in page
    assert "Family restriction (no contact with own children) in force for 45 days" in page
    assert "awaiting examination" in page  # the device's state, in words
    expected = browser.find_element(By.CSS_SELECTOR, "td.expected").text
    assert expected != "-" and date.fromisoformat(expected) >= date.today()
    browser.get(f"{server}/my/cases/{theirs}")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Not found"
    browser.get(f"{server}/my/cases/{mine}")
    assert "CR/MINE" in browser.find_element(By.TAG_NAME, "h1").text


def test_an_investigator_is_told_why_a_queued_device_has_no_expected_date(
    client: TestClient, users: Users, engine: Engine
) -> None:
    # With no examinations finished lately the queue has no pace to give a date from: the
    # date read "-", as for a device that is not waiting at all.
    case_id = _case(engine, "CR/NOPACE", users.investigator.id or 0, 10)
    client.post("/login", data={"username": "ioc", "password": PASSWORD})
    page = client.get(f"/my/cases/{case_id}").text
    assert '<td class="expected">not known: none examined in the last 4 weeks</td>' in page


def test_signing_out_withdraws_the_token_and_is_audited_as_signing_in_is(
    client: TestClient, users: Users, engine: Engine
) -> None:
    # Sign-ins were in the audit log and sign-outs not, so no one could tell from it how long a
    # session on a shared station lasted.
    from triage.models.audit import AuditEvent

    def sign_outs() -> list[tuple[str, Any]]:
        with Session(engine) as s:
            rows = s.exec(select(AuditEvent).where(AuditEvent.action == "auth.logout")).all()
            return [(e.actor_name, e.after) for e in rows]

    assert client.post("/login", data={"username": "ioc", "password": PASSWORD}).status_code == 200
    copied = client.cookies["triage_session"]
    assert client.post("/logout", follow_redirects=False).headers["location"] == "/login"
    assert sign_outs() == [("ioc", {"via": "pages", "client": "testclient"})]
    # The cookie went from the browser but its token stayed good for its lifetime: a copy of it
    # (a shared station's browser profile, a proxy's log) still opened the pages and the API.
    client.cookies.set("triage_session", copied)
    assert client.get("/my", follow_redirects=False).headers["location"] == "/login"
    r = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {copied}"})
    assert r.status_code == 401 and r.json()["detail"] == "token withdrawn (signed out)"
    assert client.post("/logout", follow_redirects=False).status_code == 303  # signed out already
    client.cookies.set("triage_session", "not a token")
    assert client.post("/logout", follow_redirects=False).status_code == 303
    assert len(sign_outs()) == 1


def test_forms_answer_bad_input_with_a_clear_message(
    client: TestClient, users: Users, engine: Engine
) -> None:
    r = client.post("/login", data={"username": "manager", "password": "wrong-password"})
    assert r.status_code == 401 and "Wrong username or password" in r.text
    for _ in range(12):  # the pages share the API's login throttle
        r = client.post("/login", data={"username": "examiner", "password": "wrong-password"})
    assert r.status_code == 429 and "Too many failed sign-ins" in r.text
    assert client.get("/queue", follow_redirects=False).headers["location"] == "/login"
    client.post("/login", data={"username": "manager", "password": PASSWORD})
    case_id = _case(engine, "CR/X", users.investigator.id or 0, None)
    r = client.post(
        f"/queue/{case_id}/override", data={"kind": "pin", "reason": "", "expires_at": "2099-01-01T00:00"}
    )
    assert r.status_code == 422 and "reason" in r.text
    r = client.post(
        f"/queue/{case_id}/override",
        data={"kind": "pin", "reason": "a reason", "expires_at": "2001-01-01T00:00"},
    )
    assert r.status_code == 422 and "in the past" in r.text
    assert client.get("/admin").status_code == 403
    client.post("/logout")
    client.post("/login", data={"username": "admin", "password": PASSWORD})
    r = client.post("/admin/accounts", data={"username": "x", "role": "examiner", "password": "short"})
    assert r.status_code == 422 and "password" in r.text
    # No role is chosen for the admin: the form asks for one (it used to start at "admin",
    # so an account made in haste got every power), and the server refuses none.
    page = client.get("/admin").text
    assert (
        '<select id="new-role" name="role" required><option value="" selected>Choose a role</option>' in page
    )
    r = client.post("/admin/accounts", data={"username": "hasty", "password": "a-long-enough-password"})
    assert (
        r.status_code == 422
        and "role" in r.text
        and "hasty" not in r.text.split("<tbody>")[1].split("</tbody>")[0]
    )
    assert client.get("/backlog").status_code == 200 and client.get("/vendors").status_code == 200
    with Session(engine) as s:
        assert queue.positions(s)  # nothing above changed the queue by mistake


def _claimed_by_examiner(client: TestClient, users: Users, engine: Engine, ref: str) -> str:
    """Signed in as the examiner, who has claimed the only job (of a new case ``ref``): its page."""
    _case(engine, ref, users.investigator.id or 0, None)
    client.post("/login", data={"username": "examiner", "password": PASSWORD})
    return client.post("/work/claim").url.path


def test_an_outcome_the_api_would_refuse_is_refused_on_the_page_too(
    client: TestClient, users: Users, engine: Engine
) -> None:
    task_page = _claimed_by_examiner(client, users, engine, "CR/LONG")
    for outcome, says in [("x" * 4001, "at most 4000 characters"), ("nul\x00byte", "NUL character")]:
        r = client.post(f"{task_page}/complete", data={"outcome": outcome})
        assert r.status_code == 422 and says in r.text, r.text[-500:]
    with Session(engine) as s:
        task = s.exec(select(ExaminationTask)).one()
        assert task.state == TaskState.claimed and task.outcome == ""


def test_a_job_one_no_longer_holds_answers_409_on_the_page_as_in_the_api(
    client: TestClient, users: Users, engine: Engine
) -> None:
    task_page = _claimed_by_examiner(client, users, engine, "CR/GONE")
    assert client.post(f"{task_page}/release").status_code == 200
    r = client.post(f"{task_page}/complete", data={"outcome": "done"})
    assert r.status_code == 409 and "not held by you" in r.text and "<html" in r.text
    with Session(engine) as s:
        assert s.exec(select(ExaminationTask)).one().state == TaskState.queued


def test_pages_fit_a_tablet_and_are_reachable_by_keyboard(
    server: str, browser: Any, users: Users, engine: Engine
) -> None:
    _case(engine, "CR/TAB", users.investigator.id or 0, 30)
    browser.set_window_size(820, 1180)
    _sign_in(browser, server, "manager", "/queue")
    for path in ("/queue", "/backlog", "/vendors"):
        browser.get(f"{server}{path}")
        assert browser.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1"
        ), path
    # Every form control has a label.
    browser.get(f"{server}/queue")
    unlabelled = browser.execute_script(
        "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]"
        ".filter(e => !e.labels || e.labels.length === 0).map(e => e.name)"
    )
    assert unlabelled == []
    # The skip link is the first thing the keyboard reaches.
    from selenium.webdriver.common.keys import Keys

    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("class") == "skip"


def test_admin_manages_accounts_and_reference_sets_with_clear_errors(
    client: TestClient, users: Users, engine: Engine
) -> None:
    client.post("/login", data={"username": "admin", "password": PASSWORD})
    r = client.post(
        "/admin/reference/rulesets", files={"file": ("bad.yar", b"rule broken { condition: nope }")}
    )
    assert r.status_code == 422 and "bad.yar" in r.text and "compile" in r.text
    r = client.post(
        "/admin/reference/rulesets",
        files={"file": ("ok.yar", b'rule ok { strings: $a = "x" condition: $a }')},
    )
    assert r.status_code == 200 and "ok.yar registered" in r.text  # followed the redirect
    r = client.post("/admin/reference/hashsets", files={"file": ("set.txt", b"not a hash\n")})
    assert r.status_code == 422 and "set.txt" in r.text
    r = client.post(
        "/admin/reference/hashsets",
        files={"file": ("set.md5", b"d41d8cd98f00b204e9800998ecf8427e  x\n")},
        data={"hashset_kind": "known_good"},
    )
    assert "set.md5 registered" in r.text and "known_good" in r.text
    r = client.post(f"/admin/accounts/{users.examiner.id}/disable")
    assert "Account examiner disabled" in r.text
    r = client.post(f"/admin/accounts/{users.admin.id}/disable")
    assert r.status_code == 409 and "own account" in r.text


def test_admin_page_takes_a_hash_set_larger_than_an_ordinary_request(
    client: TestClient, users: Users
) -> None:
    # Ordinary bodies are held to 1 MiB; the page offered hash-set upload and then refused
    # every set over that (413), which is nearly every real one.
    client.post("/login", data={"username": "admin", "password": PASSWORD})
    body = "".join(f"{n:032x}  file{n}\n" for n in range(40_000)).encode()
    assert len(body) > 1024 * 1024
    page = client.get("/admin").text
    assert "Up to 4.0 GiB" in page and "TRIAGE_MAX_UPLOAD_BYTES" in page
    r = client.post("/admin/reference/hashsets", files={"file": ("big.md5", body)})
    assert r.status_code == 200 and "big.md5 registered" in r.text and "40000 hashes" in r.text, r.text[-500:]
    # Anything else on the page keeps the ordinary cap.
    r = client.post("/admin/accounts", data={"username": "x" * (2 * 1024 * 1024)})
    assert r.status_code == 413


def test_admin_page_takes_sets_out_of_use_and_back(client: TestClient, users: Users, engine: Engine) -> None:
    client.post("/login", data={"username": "admin", "password": PASSWORD})
    odd = ("a&b #1.md5", b"0cc175b9c0f1b6a831c399e269772661\n")
    assert "a&amp;b #1.md5 registered." in client.post("/admin/reference/hashsets", files={"file": odd}).text
    client.post(
        "/admin/reference/hashsets", files={"file": ("set.md5", b"d41d8cd98f00b204e9800998ecf8427e  x\n")}
    )
    for name in ("old", "new"):
        rule = f'rule {name} {{ strings: $a = "{name}" condition: $a }}'.encode()
        client.post("/admin/reference/rulesets", files={"file": (f"{name}.yar", rule)})
    with Session(engine) as session:
        hashset = session.exec(select(HashSetRecord).where(HashSetRecord.name == "set.md5")).one()
        new = session.exec(select(RuleSetRecord).where(RuleSetRecord.name == "new.yar")).one()
    page = client.get("/admin").text
    assert "new.yar: 1 rules (new runs use it)" in page and 'aria-label="Deactivate set.md5"' in page

    r = client.post(f"/admin/sets/hashsets/{hashset.id}/deactivate")
    assert (
        r.status_code == 200 and "set.md5 deactivated" in r.text and 'aria-label="Activate set.md5"' in r.text
    )
    r = client.post(f"/admin/sets/rulesets/{new.id}/deactivate")
    assert "new.yar: 1 rules (inactive)" in r.text and "old.yar: 1 rules (new runs use it)" in r.text
    r = client.post(f"/admin/sets/hashsets/{hashset.id}/activate")
    assert "set.md5 activated" in r.text and 'aria-label="Deactivate set.md5"' in r.text
    assert client.post("/admin/sets/hashsets/999999/activate").status_code == 404
    assert client.post(f"/admin/sets/hashsets/{hashset.id}/delete").status_code == 404
    assert client.post(f"/admin/sets/accounts/{hashset.id}/activate").status_code == 404

    client.post("/logout")
    client.post("/login", data={"username": "manager", "password": PASSWORD})
    r = client.post(f"/admin/sets/hashsets/{hashset.id}/deactivate")
    assert r.status_code == 403 and "<h1>" in r.text
    with Session(engine) as session:
        assert session.get(HashSetRecord, hashset.id).active  # type: ignore[union-attr]


def test_my_work_names_jobs_and_runs_by_their_references(
    client: TestClient, users: Users, engine: Engine
) -> None:
    # They read "exhibit 7": a row id examiners never see anywhere else.
    task_page = _claimed_by_examiner(client, users, engine, "CR/HELD")
    with Session(engine) as s:
        run_id, _ = _runs(s, users, "CR/HELD-1", RunState.running)
        s.commit()
    page = client.get("/work").text
    assert (
        f'<a href="{task_page}">Task {task_page.rsplit("/", 1)[1]}: CR/HELD / CR/HELD-1 (laptop)</a>' in page
    )
    assert f"Run {run_id} (CR/HELD / CR/HELD-1):" in page
    # No make or model: no gap before the ";"; codes read as words.
    assert "<p>laptop; state <b>in examination</b>; task claimed.</p>" in client.get(task_page).text


def test_the_task_page_pages_through_every_hit_of_the_latest_finished_run(
    client: TestClient, users: Users, engine: Engine
) -> None:
    # It showed the first 200 hits and said nothing of the rest (a seized collection can have
    # tens of thousands), and took the latest run even when that one had failed.
    task_page = _claimed_by_examiner(client, users, engine, "CR/HITS")
    with Session(engine) as s:
        finished, case_id = _runs(s, users, "CR/HITS-1", RunState.succeeded, RunState.failed)
        for n in range(230):
            source = "yara" if n % 2 else "hashset"
            s.add(TriageHit(run_id=finished, case_id=case_id, source=source, name="x", path=f"/f{n:03}"))
        s.commit()
    first = client.get(task_page).text
    assert "1-100 of 230" in first and first.count("<td>hashset</td>") == 100  # known-bad hash hits first
    last = client.get(task_page, params={"offset": 200}).text
    assert "201-230 of 230" in last and last.count("<td>yara</td>") == 30 and "/f229" in last
    refused = client.post(f"{task_page}/complete", data={"outcome": " "})  # the findings stay in view
    assert (
        refused.status_code == 422 and "Write the outcome" in refused.text and "1-100 of 230" in refused.text
    )


def test_the_task_page_says_what_triage_could_not_read(
    client: TestClient, users: Users, engine: Engine
) -> None:
    # An encrypted partition or a truncated image was only in the run's summary JSON: the
    # examiner's page said "0 errors".
    task_page = _claimed_by_examiner(client, users, engine, "CR/PARTS")
    with Session(engine) as s:
        run_id, _ = _runs(s, users, "CR/PARTS-1", RunState.succeeded)
        run = s.get_one(TriageRun, run_id)
        part = {"index": 1, "offset": 1048576, "length": 2**30, "kind": "data", "filesystem": "ntfs"}
        run.summary = {
            "files": 3,
            "errors": 0,
            "partitions": [
                {**part, "status": "ok", "reason": ""},
                {**part, "index": 2, "filesystem": None, "status": "unreadable", "reason": "BitLocker"},
                {**part, "index": 0, "kind": "meta", "status": "not-examined", "reason": ""},
            ],
            "walk_problems": [{"partition": 1, "path": "/", "reason": "runs past the end of the image"}],
        }
        s.add(run)
        s.commit()
    page = client.get(task_page).text
    assert "<td>ntfs</td><td>yes</td>" in page and "<b>no</b>: BitLocker" in page
    assert page.count("<td>1.0 GiB</td>") == 2  # the volume system's own entries are not partitions
    assert (
        "Damaged, or not read in full (1)" in page and "partition 1 /: runs past the end of the image" in page
    )


def _runs(s: Session, users: Users, exhibit_ref: str, *states: RunState) -> tuple[int, int]:
    """Runs in these ``states``, oldest first, of an image of the exhibit ``exhibit_ref``: the
    first run's id and the exhibit's case id."""
    exhibit = s.exec(select(Exhibit).where(Exhibit.reference == exhibit_ref)).one()
    image = EvidenceImage(
        exhibit_id=row_id(exhibit),
        path="/e/x.E01",
        format="ewf",
        size_bytes=1,
        registered_by=row_id(users.examiner),
    )
    s.add(image)
    s.flush()
    runs = [TriageRun(exhibit_id=row_id(exhibit), image_id=row_id(image), state=state) for state in states]
    for run in runs:
        s.add(run)
        s.flush()
    return row_id(runs[0]), exhibit.case_id


def test_admin_page_sets_an_examiner_s_devices_and_clearance(
    client: TestClient, users: Users, engine: Engine
) -> None:
    # Which tasks an examiner gets depends on both; the page could set neither.
    client.post("/login", data={"username": "admin", "password": PASSWORD})
    form = {
        "username": "e.page",
        "role": "examiner",
        "password": "a-long-enough-password",
        "device_types": ["phone", "tablet"],
        "iioc_cleared": "yes",
    }
    r = client.post("/admin/accounts", data=form)
    assert r.status_code == 200 and "Account e.page created." in r.text
    with Session(engine) as s:
        made = s.exec(select(Account).where(Account.username == "e.page")).one()
        assert made.device_types == ["phone", "tablet"] and made.iioc_cleared
    assert "<td>phone, tablet</td>" in r.text
    r = client.post(f"/admin/accounts/{made.id}/withdraw-clearance")
    assert "Account e.page no longer cleared for indecent imagery." in r.text
    assert 'aria-label="Clear e.page"' in r.text
    with Session(engine) as s:
        assert not s.get_one(Account, made.id).iioc_cleared
    r = client.post(f"/admin/accounts/{made.id}/clear")
    assert "Account e.page cleared for indecent imagery." in r.text
    r = client.post("/admin/accounts", data={**form, "username": "e.bad", "device_types": ["toaster"]})
    assert r.status_code == 422 and "device_types" in r.text
    assert client.post(f"/admin/accounts/{made.id}/promote").status_code == 404
    client.post("/logout")
    client.post("/login", data={"username": "manager", "password": PASSWORD})
    assert client.post(f"/admin/accounts/{made.id}/withdraw-clearance").status_code == 403
