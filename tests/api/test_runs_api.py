"""The runs and reference-set endpoints: bad input answers and changes nothing."""

from __future__ import annotations

import io
import os
import re
import shutil
import threading
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.main import create_app
from api.routes import reference as reference_routes
from tests.api.helpers import create_case, create_exhibit, no_transaction_held, probing, registered_exhibit
from tests.conftest import TESTDATA, Users
from tests.factories import case_with_exhibit, exhibit_with_task, row_id
from triage import intake, jobs, leftovers, registry, runs
from triage.models.exhibits import ExhibitState
from triage.models.queue import TaskState
from triage.models.runs import HashSetRecord, RunState, TriageHit, TriageRun
from triage.models.types import utcnow
from triage.scan import ScanOptions, scan_image
from triage.scan.outputs import read_jsonl
from triage.settings import Settings


def test_starting_a_run_without_an_image_or_twice_is_409(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    h = headers["manager"]
    exhibit = registered_exhibit(client, h, users.investigator.id)  # type: ignore[arg-type]
    r = client.post(f"/api/v1/exhibits/{exhibit['id']}/runs", json={}, headers=h)
    assert r.status_code == 409 and "no evidence image" in r.json()["detail"]
    client.post(
        f"/api/v1/exhibits/{exhibit['id']}/images", json={"path": str(TESTDATA / "ext2.E01")}, headers=h
    )
    runs = client.get(f"/api/v1/exhibits/{exhibit['id']}/runs", headers=h).json()
    assert len(runs) == 1 and runs[0]["state"] == "queued"
    r = client.post(f"/api/v1/exhibits/{exhibit['id']}/runs", json={}, headers=h)
    assert r.status_code == 409 and "already" in r.json()["detail"]
    assert len(client.get(f"/api/v1/exhibits/{exhibit['id']}/runs", headers=h).json()) == 1


def test_cancelling_a_queued_run_returns_the_exhibit(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    h = headers["examiner"]
    case = create_case(client, headers["manager"], users.investigator.id)  # type: ignore[arg-type]
    exhibit = create_exhibit(client, h, case["id"])
    client.post(
        f"/api/v1/exhibits/{exhibit['id']}/images", json={"path": str(TESTDATA / "ext2.E01")}, headers=h
    )
    run = client.get(f"/api/v1/exhibits/{exhibit['id']}/runs", headers=h).json()[0]
    r = client.post(f"/api/v1/runs/{run['id']}/cancel", headers=h)
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert client.get(f"/api/v1/exhibits/{exhibit['id']}", headers=h).json()["state"] == "imaged"
    assert client.post(f"/api/v1/runs/{run['id']}/cancel", headers=h).status_code == 409
    assert client.get(f"/api/v1/runs/{run['id']}/dfxml", headers=h).status_code == 404


def test_rule_sets_that_do_not_compile_are_refused_at_upload(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]]
) -> None:
    h = headers["admin"]
    bad = ("files", ("broken.yar", io.BytesIO(b"rule broken { condition: no_such_thing }"), "text/plain"))
    r = client.post("/api/v1/rulesets/upload", files=[bad], headers=h)
    assert r.status_code == 400 and "compile" in r.json()["detail"]
    assert client.get("/api/v1/rulesets", headers=h).json() == []
    good = ("files", ("ok.yar", io.BytesIO(b'rule ok { strings: $a = "x" condition: $a }'), "text/plain"))
    r = client.post("/api/v1/rulesets/upload", files=[good], data={"name": "mine"}, headers=h)
    assert r.status_code == 201 and r.json()["rule_count"] == 1 and len(r.json()["sha256"]) == 64
    good = ("files", ("ok.yar", io.BytesIO(b'rule ok { strings: $a = "x" condition: $a }'), "text/plain"))
    assert client.post("/api/v1/rulesets/upload", files=[good], headers=h).status_code == 409  # same content


def test_rule_files_of_one_upload_with_the_same_name_are_refused_not_merged(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]], settings: Settings
) -> None:
    # Two vendors' sets each with an index.yar: saved under one name, the second silently
    # replaced the first and the set registered without its rules.
    h = headers["admin"]
    first = ("files", ("index.yar", io.BytesIO(b'rule a { strings: $a = "a" condition: $a }'), "text/plain"))
    second = ("files", ("index.yar", io.BytesIO(b'rule b { strings: $b = "b" condition: $b }'), "text/plain"))
    r = client.post("/api/v1/rulesets/upload", files=[first, second], headers=h)
    assert r.status_code == 422 and "two files are named index.yar" in r.text
    assert client.get("/api/v1/rulesets", headers=h).json() == []
    assert not list((Path(settings.artifact_dir) / "uploads").glob("upload-*"))


def test_a_rule_file_registered_by_path_needs_a_rule_file_name(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]], settings: Settings
) -> None:
    # Kept in its folder, a rules.txt would be passed over by every run, which then failed.
    reference = Path(settings.reference_roots[0])
    reference.mkdir(parents=True, exist_ok=True)
    (reference / "rules.txt").write_text('rule a { strings: $a = "a" condition: $a }')
    r = client.post("/api/v1/rulesets", json={"path": "rules.txt"}, headers=headers["admin"])
    assert r.status_code == 400 and "must end in .rule, .rules, .yar or .yara" in r.text
    assert client.get("/api/v1/rulesets", headers=headers["admin"]).json() == []


def test_a_rule_folder_linking_to_a_file_outside_the_reference_roots_is_refused(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]], settings: Settings, tmp_path: Path
) -> None:
    # The folder lies inside the roots; a link in it must not bring in a file from elsewhere.
    folder = Path(settings.reference_roots[0]) / "vendor"
    folder.mkdir(parents=True)
    (folder / "own.yar").write_text('rule own { strings: $a = "own" condition: $a }')
    secret = tmp_path / "elsewhere.yar"
    secret.write_text('rule elsewhere { strings: $a = "private" condition: $a }')
    (folder / "linked.yar").symlink_to(secret)
    r = client.post("/api/v1/rulesets", json={"path": "vendor"}, headers=headers["admin"])
    assert r.status_code == 400 and "linked.yar: a link to a file outside" in r.text
    assert client.get("/api/v1/rulesets", headers=headers["admin"]).json() == []
    assert not (Path(settings.artifact_dir) / "rules").exists() or not any(
        (Path(settings.artifact_dir) / "rules").iterdir()
    )


def test_hash_sets_upload_and_register_are_admin_only_and_validated(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]], tmp_path: Path, settings: Settings
) -> None:
    body = b"d41d8cd98f00b204e9800998ecf8427e  empty\n"
    for role in ("manager", "examiner", "investigator"):
        r = client.post("/api/v1/hashsets/upload", files={"file": ("set.md5", body)}, headers=headers[role])
        assert r.status_code == 403
    r = client.post("/api/v1/hashsets/upload", files={"file": ("set.md5", body)}, headers=headers["admin"])
    assert r.status_code == 201 and r.json()["entries"] == 1 and r.json()["kind"] == "known_bad"
    bad = client.post(
        "/api/v1/hashsets/upload", files={"file": ("bad.txt", b"not a hash\n")}, headers=headers["admin"]
    )
    # The complaint names the file sent, and nothing of it is kept.
    assert bad.status_code == 400 and bad.json()["detail"].startswith("bad.txt:"), bad.text
    assert [p.name for p in (settings.artifact_dir / "hashsets" / "sources").glob("*/*")] == ["set.md5"]
    long_name = "é🔒" * 60 + ".md5"  # 364 bytes: more than a file name may have
    r = client.post("/api/v1/hashsets/upload", files={"file": (long_name, b"")}, headers=headers["admin"])
    assert r.status_code == 422 and "file name" in r.text, r.text
    missing = client.post(
        "/api/v1/hashsets", json={"path": str(tmp_path / "nope.txt")}, headers=headers["admin"]
    )
    assert missing.status_code == 400
    assert len(client.get("/api/v1/hashsets", headers=headers["examiner"]).json()) == 1
    assert client.get("/api/v1/hashsets", headers=headers["investigator"]).status_code == 403


def test_an_uploaded_hash_set_is_moved_into_the_store_not_copied_through_tmp(
    client: TestClient,
    headers: dict[str, dict[str, str]],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A set of NSRL size is gigabytes: it was saved into /tmp (often memory) and then copied
    # again into the store. Now it is saved on the artifact disk and moved.
    copies: list[Path] = []
    monkeypatch.setattr(registry.shutil, "copyfile", lambda src, dst: copies.append(Path(src)))
    staged: list[Path] = []
    real_save = reference_routes.save_upload

    def saving(upload: Any, folder: Path) -> Path:
        staged.append(real_save(upload, folder))
        return staged[-1]

    monkeypatch.setattr(reference_routes, "save_upload", saving)
    body = b"d41d8cd98f00b204e9800998ecf8427e  empty\n"
    r = client.post("/api/v1/hashsets/upload", files={"file": ("set.md5", body)}, headers=headers["admin"])
    assert r.status_code == 201, r.text
    assert copies == []
    (saved,) = staged
    assert saved.parent.parent == settings.artifact_dir / "uploads"
    kept = settings.artifact_dir / "hashsets" / "sources"
    assert [p.read_bytes() for p in kept.glob("*/set.md5")] == [body]
    assert list((settings.artifact_dir / "uploads").iterdir()) == []  # the staging folder went


def test_staging_folders_a_killed_server_left_are_removed_at_start(settings: Settings) -> None:
    root = settings.artifact_dir / "uploads"
    old, fresh = root / "upload-old", root / "upload-fresh"
    for folder in (old, fresh):
        folder.mkdir(parents=True)
        (folder / "set.md5").write_bytes(b"partial")
    day_and_more = time.time() - leftovers.STALE_SECONDS - 60
    os.utime(old, (day_and_more, day_and_more))
    create_app(settings)
    assert sorted(p.name for p in root.iterdir()) == ["upload-fresh"]


def test_what_killed_registrations_left_is_removed_at_start(settings: Settings) -> None:
    # A registration killed half way left a staged rule folder, a partial copy of a hash set
    # (gigabytes at NSRL size) or an index being built; nothing removed them.
    base = settings.artifact_dir
    left = [
        base / "rules" / ".registering-x1" / "index.yar",
        base / "hashsets" / "sources" / "ab" / ".nsrl.txt.copying-1-2",
        base / "hashsets" / "index" / "tmp1.building",
    ]
    kept = [
        base / "rules" / ("a" * 64) / "index.yar",  # a registered set
        base / "hashsets" / "sources" / "ab" / "nsrl.txt",
        base / "hashsets" / "index" / "ab.v2.plain.sqlite",
        base / "hashsets" / "index" / "tmp2.building",  # under way: minutes old
    ]
    day_and_more = time.time() - leftovers.STALE_SECONDS - 60
    for path in left + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    for path in [*left, left[0].parent, *kept[:3]]:
        os.utime(path, (day_and_more, day_and_more))
    create_app(settings)
    assert [p for p in left + [left[0].parent] if p.exists()] == []
    assert all(p.exists() for p in kept)


def test_hash_sets_and_rules_register_by_path_only_from_the_reference_roots(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]], settings: Settings, tmp_path: Path
) -> None:
    """By path, an admin may name files in the reference roots only: elsewhere the parsers'
    messages, which quote the line they stumble on, would read out any file the service can."""
    h = headers["admin"]
    reference = settings.reference_roots[0]
    reference.mkdir(exist_ok=True)
    (reference / "set.md5").write_text("d41d8cd98f00b204e9800998ecf8427e  empty\n")
    (reference / "rules").mkdir()
    (reference / "rules" / "ok.yar").write_text('rule ok { strings: $a = "x" condition: $a }')
    secret = tmp_path / "secret.txt"
    secret.write_text("root:$6$top-secret-salt$hash:19000:0:99999:7:::\n")
    (reference / "escape.md5").symlink_to(secret)
    for path in [str(secret), "escape.md5", "../secret.txt", "/etc/passwd", str(tmp_path), "0" * 4000]:
        for kind in ("hashsets", "rulesets"):
            r = client.post(f"/api/v1/{kind}", json={"path": path}, headers=h)
            assert r.status_code == 400, (kind, path[:40], r.status_code, r.text[:200])
            assert "top-secret" not in r.text and len(r.text) < 500
    assert client.get("/api/v1/hashsets", headers=h).json() == []
    assert client.get("/api/v1/rulesets", headers=h).json() == []
    r = client.post("/api/v1/hashsets", json={"path": "set.md5"}, headers=headers["manager"])
    assert r.status_code == 403
    r = client.post("/api/v1/hashsets", json={"path": "set.md5"}, headers=h)
    assert r.status_code == 201 and r.json()["entries"] == 1, r.text
    r = client.post("/api/v1/rulesets", json={"path": str(reference / "rules")}, headers=h)
    assert r.status_code == 201, r.text


def test_metrics_are_served_in_prometheus_format(client: TestClient, users: Users, engine: Engine) -> None:
    r = client.get("/metrics")
    assert r.status_code == 200 and 'triage_runs{state="queued"} 0.0' in r.text
    assert "triage_run_duration_seconds_bucket" in r.text
    assert "triage_oldest_queued_task_age_seconds 0.0" in r.text  # nothing waiting
    with Session(engine) as s:
        case, _ = case_with_exhibit(s, row_id(users.investigator), "CR/M", ExhibitState.examined)
        exhibit_with_task(s, row_id(case), "W/1", queued_at=utcnow() - timedelta(hours=2))
        exhibit_with_task(s, row_id(case), "W/2", held=True)
        examined = ExhibitState.examined
        exhibit_with_task(s, row_id(case), "D/1", exhibit_state=examined, state=TaskState.completed)
        s.commit()
    text = client.get("/metrics").text
    assert 'triage_examination_tasks{state="queued"} 1.0' in text
    assert 'triage_examination_tasks{state="held"} 1.0' in text
    assert 'triage_examination_tasks{state="claimed"} 0.0' in text
    assert "triage_examination_tasks_completed_total 1.0" in text
    age = float(re.search(r"^triage_oldest_queued_task_age_seconds (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]
    assert 2 * 3600 <= age < 2 * 3600 + 600


def _queued_run(
    client: TestClient,
    h: dict[str, str],
    users: Users,
    case: dict[str, Any] | None = None,
    ref: str = "JB/1",
    image: Path = TESTDATA / "ext2.E01",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new exhibit (``ref`` of ``case``, or of a new case) with ``image`` registered, and
    the run that registering it queued (no worker runs in these tests: the test runs it with
    ``jobs.execute_run``)."""
    if case is None:
        exhibit = registered_exhibit(client, h, users.investigator.id)  # type: ignore[arg-type]
    else:
        exhibit = create_exhibit(client, h, case["id"], ref=ref)
    r = client.post(f"/api/v1/exhibits/{exhibit['id']}/images", json={"path": str(image)}, headers=h)
    assert r.status_code == 201, r.text
    (run,) = client.get(f"/api/v1/exhibits/{exhibit['id']}/runs", headers=h).json()
    return exhibit, run


def test_a_running_scan_publishes_its_files_and_bytes_every_few_seconds() -> None:
    # files_done and files_total stayed 0 until a run had ended (the API and README promise
    # files done), and with the default 60 s lease the run's row was written every 20 s.
    assert jobs.progress_update("files", 3, 10) == {"files_done": 3, "files_total": 10}  # phase kept
    assert jobs.progress_update("analysing", 5, 9) == {
        "phase": "analysing",
        "bytes_done": 5,
        "bytes_total": 9,
        "state": RunState.running,
    }
    assert jobs.progress_update("verifying", 1, 2)["state"] == RunState.verifying
    assert jobs.progress_update("walking", 7, 0) == {"phase": "walking", "files_total": 7}
    assert jobs.beat_every(Settings().run_lease_seconds) <= 2.0
    assert jobs.beat_every(3.0) == 1.0  # a short lease is still renewed three times over


@pytest.mark.parametrize("declared", [{}, {"md5": "0" * 32}])
def test_a_run_with_no_hash_to_check_is_not_shown_verifying_while_it_prepares(
    declared: dict[str, str],
) -> None:
    # A claimed run is "verifying" (the claim cannot tell); one of an image with no acquisition
    # hash stayed so while its rules compiled and its hash sets' filters were built (a minute,
    # for a set of NSRL size), though nothing would be verified.
    heart = SimpleNamespace(progress={}, settings=Settings())
    jobs._prepare(ScanOptions(expect_hashes=dict(declared)), None, heart)  # type: ignore[arg-type]
    expected = {"phase": "preparing"} | ({} if declared else {"state": RunState.running})
    assert heart.progress == expected


def test_a_filter_built_before_the_scan_does_not_cost_the_run_its_lease(
    client: TestClient,
    users: Users,
    headers: dict[str, dict[str, str]],
    settings: Settings,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A hash set registered before stores had Bloom filters: the worker builds the filter
    # before it scans, which for an NSRL-size set outlasts a lease. The lease must be renewed
    # meanwhile, or the sweep hands the run to another worker (counting an attempt).
    body = b"d41d8cd98f00b204e9800998ecf8427e  empty\n"
    r = client.post("/api/v1/hashsets/upload", files={"file": ("set.md5", body)}, headers=headers["admin"])
    assert r.status_code == 201, r.text
    (prefilter,) = (settings.artifact_dir / "hashsets" / "index").glob("*.filter")
    prefilter.unlink()
    _, run = _queued_run(client, headers["manager"], users)
    lease = 0.6
    swept: list[object] = []
    real_ensure = jobs.ensure_filter

    def slow_ensure(store: Path | str, entries: int) -> bool:
        time.sleep(3 * lease)  # the build outlasts the lease
        with Session(engine) as s:
            swept.extend(runs.sweep(s))
            s.commit()
        return real_ensure(store, entries)

    monkeypatch.setattr(jobs, "ensure_filter", slow_ensure)
    quick = settings.model_copy(update={"run_lease_seconds": lease})
    assert jobs.execute_run(run["id"], "test-worker", quick, engine) == RunState.succeeded
    assert swept == [] and prefilter.exists()
    done = client.get(f"/api/v1/runs/{run['id']}", headers=headers["manager"]).json()
    assert done["state"] == "succeeded" and done["attempts"] == 1


@pytest.mark.parametrize("where", ["scanning", "stored"])
def test_ctrl_c_in_a_worker_gives_its_run_back_but_never_what_it_stored(
    where: str,
    client: TestClient,
    users: Users,
    headers: dict[str, dict[str, str]],
    settings: Settings,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Ctrl-C in `triage worker --backend local` left its run "running" until the lease lapsed.
    # Now the run goes back to the queue, with what the attempt wrote, unless its results were
    # stored before the interrupt came: then the run and its files stay as they are.
    _, run = _queued_run(client, headers["manager"], users)
    # Ctrl-C while the image is scanned, or just after the run's results were stored.
    monkeypatch.setattr(jobs, "scan_image" if where == "scanning" else "_clean_old_attempts", _ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        jobs.execute_run(run["id"], "test-worker", settings, engine)
    after = client.get(f"/api/v1/runs/{run['id']}", headers=headers["manager"]).json()
    attempt = settings.artifact_dir / "runs" / str(run["id"]) / "attempt-1"
    if where == "scanning":
        assert after["state"] == "queued" and "stopped during attempt 1" in after["error"]
        assert not attempt.exists()
    else:
        assert after["state"] == "succeeded"
        listing = client.get(f"/api/v1/runs/{run['id']}/files", headers=headers["manager"])
        assert listing.status_code == 200 and (attempt / "dfxml.xml").is_file()


def test_a_local_worker_asked_to_stop_takes_no_new_run(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]], settings: Settings, engine: Engine
) -> None:
    # Asked to stop during its upkeep (a rescore of every case takes seconds), it claimed the
    # next run anyway, counting an attempt, only to give it back at its first progress.
    from workers.local import LocalWorker

    _, run = _queued_run(client, headers["manager"], users)
    stop = threading.Event()
    stop.set()
    assert LocalWorker(settings, engine).run_one(stop) is False
    after = client.get(f"/api/v1/runs/{run['id']}", headers=headers["manager"]).json()
    assert after["state"] == "queued" and after["attempts"] == 0


def _ctrl_c(*args: Any, **kwargs: Any) -> None:
    raise KeyboardInterrupt


def test_a_hash_set_whose_index_is_gone_fails_the_run_saying_how_to_mend_it(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]], settings: Settings, engine: Engine
) -> None:
    # After a restore without the indexes (or a disk fault) every run failed in its analysis
    # processes, with nothing saying which file was missing or what to do.
    body = ("file", ("gone.md5", io.BytesIO(b"0" * 32 + b"\n"), "text/plain"))
    r = client.post("/api/v1/hashsets/upload", files=[body], headers=headers["admin"])
    assert r.status_code == 201, r.text
    with Session(engine) as s:
        record = s.exec(select(HashSetRecord).where(HashSetRecord.name == "gone.md5")).one()
    store = settings.artifact(record.store_path)
    store.unlink()
    _, run = _queued_run(client, headers["manager"], users)
    assert jobs.execute_run(run["id"], "test-worker", settings, engine) == RunState.failed
    error = client.get(f"/api/v1/runs/{run['id']}", headers=headers["manager"]).json()["error"]
    assert "hash set gone.md5: its index is missing" in error and "triage db check --repair" in error


def test_the_artifact_folder_restored_to_another_place_is_found_there(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]], settings: Settings, engine: Engine
) -> None:
    # Kept hash sets, rules and runs' results were recorded by the whole paths they were
    # written to: restored on a new server under another folder (or mounted elsewhere by a
    # worker), no result could be downloaded and every run failed on its hash sets and rules.
    from triage import artifacts

    h = headers["admin"]
    hashes = ("file", ("bad.md5", io.BytesIO(b"0" * 32 + b"\n"), "text/plain"))
    assert client.post("/api/v1/hashsets/upload", files=[hashes], headers=h).status_code == 201
    rules = ("files", ("ok.yar", io.BytesIO(b'rule ok { strings: $a = "x" condition: $a }'), "text/plain"))
    assert client.post("/api/v1/rulesets/upload", files=[rules], headers=h).status_code == 201
    exhibit, run = _queued_run(client, headers["manager"], users)
    assert jobs.execute_run(run["id"], "test-worker", settings, engine) == RunState.succeeded

    restored = settings.model_copy(update={"artifact_dir": Path(settings.artifact_dir).parent / "restored"})
    Path(settings.artifact_dir).rename(restored.artifact_dir)
    registry._compiled.clear()  # a new server's worker compiles the rules from the kept copy
    with TestClient(create_app(restored)) as after:
        m = headers["manager"]
        done = after.get(f"/api/v1/runs/{run['id']}", headers=m).json()
        assert done["has_listing"] and done["has_dfxml"], done
        for artifact in ("files", "dfxml"):
            assert after.get(f"/api/v1/runs/{run['id']}/{artifact}", headers=m).status_code == 200
        again = after.post(f"/api/v1/exhibits/{exhibit['id']}/runs", json={}, headers=m)
        assert again.status_code == 201, again.text
        assert jobs.execute_run(again.json()["id"], "test-worker", restored, engine) == RunState.succeeded
    with Session(engine) as s:
        report = artifacts.check(s, restored, rehash=True)
    assert report.problems == [] and report.checked == 5  # a hash set, a rule set, two runs, the image


def test_a_run_whose_results_fill_the_disk_fails_saying_so(
    client: TestClient,
    users: Users,
    headers: dict[str, dict[str, str]],
    settings: Settings,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # It failed as an "internal error" with a traceback, as if the program were at fault.
    from tests.triage.test_scan import _walk_to_a_full_disk
    from triage.scan import engine as scan_engine

    monkeypatch.setattr(scan_engine.phases, "walk_to_spool", _walk_to_a_full_disk)
    _, run = _queued_run(client, headers["manager"], users)
    assert jobs.execute_run(run["id"], "test-worker", settings, engine) == RunState.failed
    error = client.get(f"/api/v1/runs/{run['id']}", headers=headers["manager"]).json()["error"]
    assert error == "the results could not be written (No space left on device): /dev/full"
    assert (
        list((settings.artifact_dir / "runs" / str(run["id"])).glob("attempt-*")) == []
    )  # nothing half-written


def test_a_run_s_lease_is_kept_by_the_database_s_clock_not_the_worker_s(
    client: TestClient,
    users: Users,
    headers: dict[str, dict[str, str]],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Workers on several machines of a laboratory network with no time server: a worker whose
    # clock ran five minutes slow set leases already past by the sweeper's clock, and every
    # run it took was taken back at once and given to another worker, again and again.
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite is one machine's database: its clock is the workers' own")
    _, run = _queued_run(client, headers["manager"], users)
    slow = utcnow() - timedelta(minutes=5)
    monkeypatch.setattr(runs, "utcnow", lambda: slow)  # the worker's machine
    with Session(engine) as session:
        claim = runs.claim(session, run["id"], "slow-worker", 60)
        assert claim is not None and runs.heartbeat(session, claim, 60, {})
        session.commit()
    monkeypatch.undo()  # the sweeper's machine keeps good time
    with Session(engine) as session:
        assert runs.sweep(session) == []
        session.commit()
        assert session.get_one(TriageRun, run["id"]).worker_id == "slow-worker"


def test_a_run_back_in_the_queue_shows_no_progress_of_its_lost_attempt(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]], engine: Engine
) -> None:
    # A run swept back to the queue (or given back by a stopping worker) kept its attempt's
    # phase and bytes: the pages showed "queued (analysing)" with a bar part full, and its next
    # attempt started with them, its time left reckoned from bytes it had not read.
    _, run = _queued_run(client, headers["manager"], users)
    progress = {"phase": "analysing", "bytes_done": 7, "bytes_total": 9, "files_done": 2, "files_total": 3}
    with Session(engine) as session:
        claim = runs.claim(session, run["id"], "lost-worker", -1)  # its lease lapsed at once
        assert claim is not None and runs.heartbeat(session, claim, -1, progress)
        assert runs.sweep(session) == [(run["id"], RunState.queued)]
        session.commit()
    swept = client.get(f"/api/v1/runs/{run['id']}", headers=headers["manager"]).json()
    assert swept["state"] == "queued" and swept["phase"] == ""
    assert [swept[k] for k in ("bytes_done", "bytes_total", "files_done", "files_total")] == [0, 0, 0, 0]
    with Session(engine) as session:  # an attempt swept before this change, as it was left
        row = session.get_one(TriageRun, run["id"])
        row.phase, row.bytes_done, row.files_done = "analysing", 7, 2
        session.add(row)
        session.commit()
        assert runs.claim(session, run["id"], "next-worker", 60) is not None
        session.commit()
    claimed = client.get(f"/api/v1/runs/{run['id']}", headers=headers["manager"]).json()
    assert claimed["phase"] == "starting" and claimed["bytes_done"] == claimed["files_done"] == 0


def test_a_rule_set_changed_on_disk_fails_the_run_and_returns_the_exhibit(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]], settings: Settings, engine: Engine
) -> None:
    # Rules of this test's own (a worker process caches what it compiled, by the rules' hash).
    text = b'rule changed_on_disk { strings: $a = "x" condition: $a }'
    rule = ("files", ("ok.yar", io.BytesIO(text), "text/plain"))
    r = client.post("/api/v1/rulesets/upload", files=[rule], headers=headers["admin"])
    assert r.status_code == 201, r.text
    (copy,) = (settings.artifact_dir / "rules" / r.json()["sha256"]).glob("*.yar")
    copy.write_bytes(text.replace(b'"x"', b'"y"'))  # changed after registration
    exhibit, run = _queued_run(client, headers["manager"], users)
    assert jobs.execute_run(run["id"], "test-worker", settings, engine) == RunState.failed
    done = client.get(f"/api/v1/runs/{run['id']}", headers=headers["manager"]).json()
    assert "no longer matches its registered hash" in done["error"] and done["attempts"] == 1
    assert (
        client.get(f"/api/v1/exhibits/{exhibit['id']}", headers=headers["manager"]).json()["state"]
        == "imaged"
    )


def test_registering_reference_sets_holds_no_transaction_while_indexing_or_compiling(
    client: TestClient,
    headers: dict[str, dict[str, str]],
    engine: Engine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Indexing a set of NSRL size takes minutes. Inside the request's transaction it held
    # SQLite's write lock all along (every other writer failed with "database is locked"), and
    # left a PostgreSQL session idle in a transaction.
    probes: list[bool] = []
    monkeypatch.setattr(registry, "load_hashset", probing(registry.load_hashset, engine, probes))
    monkeypatch.setattr(registry, "compile_rules", probing(registry.compile_rules, engine, probes))
    body = b"d41d8cd98f00b204e9800998ecf8427e  empty\n"
    r = client.post("/api/v1/hashsets/upload", files={"file": ("set.md5", body)}, headers=headers["admin"])
    assert r.status_code == 201, r.text
    rule = ("files", ("held.yar", io.BytesIO(b'rule held { strings: $a = "h" condition: $a }'), "text/plain"))
    r = client.post("/api/v1/rulesets/upload", files=[rule], headers=headers["admin"])
    assert r.status_code == 201, r.text
    again = client.post(
        "/api/v1/hashsets/upload", files={"file": ("copy.md5", body)}, headers=headers["admin"]
    )
    assert again.status_code == 409 and "registered already" in again.json()["detail"]
    # The set indexed; the rules compiled, then their kept copy; the duplicate refused before
    # it was indexed. No transaction held during any of them.
    assert probes == [True, True, True]
    kept = settings.artifact_dir / "hashsets" / "sources"
    assert [p.name for p in kept.glob("*/*")] == ["set.md5"]  # the refused copy is not kept


def test_opening_an_image_at_registration_holds_no_transaction(
    client: TestClient,
    users: Users,
    headers: dict[str, dict[str, str]],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An E01 is opened in a child process that a hostile container may keep busy until its
    # time limit (300 s): that must not hold SQLite's write lock, or a PostgreSQL transaction.
    probes: list[bool] = []
    monkeypatch.setattr(intake, "probe_image", probing(intake.probe_image, engine, probes))
    exhibit, run = _queued_run(client, headers["manager"], users)
    assert probes == [True] and run["state"] == "queued"
    assert client.get(f"/api/v1/exhibits/{exhibit['id']}", headers=headers["manager"]).json()["state"] == (
        "triage_queued"
    )


def test_downloading_a_run_s_results_holds_no_transaction(
    app: Any,
    client: TestClient,
    users: Users,
    headers: dict[str, dict[str, str]],
    settings: Settings,
    engine: Engine,
) -> None:
    # A listing of a large image is hundreds of megabytes and a slow client takes minutes to
    # read it: the request's session must be closed before the file is sent, not after.
    _, run = _queued_run(client, headers["manager"], users)
    assert jobs.execute_run(run["id"], "test-worker", settings, engine) == RunState.succeeded
    probes: list[bool] = []

    async def probing_app(scope: Any, receive: Any, send: Any) -> None:
        async def probing_send(message: Any) -> None:
            if message["type"] == "http.response.body":
                probes.append(no_transaction_held(engine))
            await send(message)

        await app(scope, receive, probing_send)

    with TestClient(probing_app) as downloader:
        for part in ("files", "dfxml"):
            r = downloader.get(f"/api/v1/runs/{run['id']}/{part}", headers=headers["manager"])
            assert r.status_code == 200 and r.content
    assert probes and all(probes), probes


def test_a_run_stores_its_hits_under_its_case(
    client: TestClient,
    users: Users,
    headers: dict[str, dict[str, str]],
    settings: Settings,
    engine: Engine,
    tmp_path: Path,
) -> None:
    # A hash set holding the digest of every file in ext2.E01 (taken from a scan of it).
    listing = tmp_path / "files.jsonl"
    scan_image(TESTDATA / "ext2.E01", ScanOptions(), listing)
    files = {(r["path"], r["md5"]) for r in read_jsonl(listing)}
    body = "".join(f"{md5}  {path}\n" for path, md5 in sorted(files)).encode()
    r = client.post("/api/v1/hashsets/upload", files={"file": ("e01.md5", body)}, headers=headers["admin"])
    assert r.status_code == 201, r.text
    exhibit, run = _queued_run(client, headers["manager"], users)
    assert jobs.execute_run(run["id"], "test-worker", settings, engine) == RunState.succeeded
    hits = client.get(f"/api/v1/runs/{run['id']}/hits", headers=headers["manager"]).json()["items"]
    assert {(h["path"], h["md5"]) for h in hits} == files and len(files) >= 3
    assert all(h["source"] == "hashset" and h["name"] == "e01.md5" and h["alert"] for h in hits)
    with Session(engine) as s:
        cases = s.exec(select(TriageHit.case_id).where(TriageHit.run_id == run["id"])).all()
    assert set(cases) == {exhibit["case_id"]}


def test_admins_take_reference_sets_out_of_use_and_back(
    client: TestClient, users: Users, headers: dict[str, dict[str, str]], evidence_root: Path
) -> None:
    # There was a way out (deactivate) and none back: a set deactivated by mistake could not
    # be used again, and registering it again was refused as a duplicate.
    admin = headers["admin"]

    def upload(kind: str, name: str, body: bytes) -> int:
        field = "file" if kind == "hashsets" else "files"
        r = client.post(f"/api/v1/{kind}/upload", files={field: (name, body)}, headers=admin)
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    def toggle(kind: str, set_id: int, action: str, who: str = "admin") -> Any:
        return client.post(f"/api/v1/{kind}/{set_id}/{action}", headers=headers[who])

    case = create_case(client, headers["manager"], users.investigator.id)  # type: ignore[arg-type]
    exhibits = iter(range(1, 10))

    def next_run() -> tuple[list[int], int | None]:
        ref = next(exhibits)
        image = evidence_root / f"jb{ref}.E01"  # an image of each exhibit's own
        shutil.copyfile(TESTDATA / "ext2.E01", image)
        _, run = _queued_run(client, headers["manager"], users, case, ref=f"JB/{ref}", image=image)
        return sorted(run["hashset_ids"]), run["ruleset_id"]

    first = upload("hashsets", "a.md5", b"d41d8cd98f00b204e9800998ecf8427e  empty\n")
    second = upload("hashsets", "b.md5", b"0cc175b9c0f1b6a831c399e269772661  a\n")
    older = upload("rulesets", "old.yar", b'rule old { strings: $a = "o" condition: $a }')
    newer = upload("rulesets", "new.yar", b'rule new { strings: $a = "n" condition: $a }')
    assert next_run() == ([first, second], newer)

    for who in ("manager", "examiner", "investigator"):
        assert toggle("hashsets", first, "deactivate", who).status_code == 403
        assert toggle("rulesets", newer, "deactivate", who).status_code == 403
    assert toggle("hashsets", 999999, "activate").status_code == 404
    assert toggle("rulesets", 999999, "activate").status_code == 404

    r = toggle("hashsets", first, "deactivate")
    assert r.status_code == 200 and r.json()["active"] is False
    assert toggle("rulesets", newer, "deactivate").json()["active"] is False
    assert next_run() == ([second], older)  # the newest active rule set
    in_use = {r["id"]: r["in_use"] for r in client.get("/api/v1/rulesets", headers=admin).json()}
    assert in_use == {older: True, newer: False}  # the API says which one new runs use
    again = client.post(
        "/api/v1/hashsets/upload",
        files={"file": ("a.md5", b"d41d8cd98f00b204e9800998ecf8427e  empty\n")},
        headers=admin,
    )
    assert again.status_code == 409 and "inactive: activate it instead" in again.json()["detail"]

    assert toggle("hashsets", first, "activate").json()["active"] is True
    activated = toggle("rulesets", newer, "activate").json()
    assert activated["active"] is True and activated["in_use"] is True
    assert next_run() == ([first, second], newer)

    events = client.get(
        "/api/v1/audit", params={"object_type": "hash_set"}, headers=headers["manager"]
    ).json()
    actions = [(e["action"], e["object_id"]) for e in events["items"]]
    assert actions[:2] == [("hash_set.activate", str(first)), ("hash_set.deactivate", str(first))]
