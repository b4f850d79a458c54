"""Each backend, with real worker processes: end to end, SIGKILL mid-run, integrity failure,
a malformed image, and a run that kills its worker every time."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from tests.conftest import TESTDATA
from tests.workers.conftest import Workers, run_row, wait_for
from triage.models.audit import AuditEvent
from triage.models.runs import RunState, TriageHit

FINAL = {"succeeded", "failed", "integrity_failed", "quarantined", "cancelled"}


def _exhibit_with_image(
    api: TestClient, staff: dict[str, Any], ref: str, image: Path, **declared: str
) -> tuple[int, int]:
    h = staff["manager"]
    cases = api.get("/api/v1/cases", headers=h).json()["items"]
    if cases:
        case_id = cases[0]["id"]
    else:
        case_id = api.post(
            "/api/v1/cases",
            headers=h,
            json={
                "crime_reference": "CR/W/1",
                "offence_category": "iioc",
                "officer_id": staff["ioc_id"],
                "received_date": "2026-10-01",
                "children_in_household": 1,
            },
        ).json()["id"]
    exhibit = api.post(
        f"/api/v1/cases/{case_id}/exhibits",
        headers=h,
        json={"reference": ref, "device_type": "external_disk"},
    ).json()
    r = api.post(f"/api/v1/exhibits/{exhibit['id']}/images", headers=h, json={"path": str(image), **declared})
    assert r.status_code == 201, r.text
    runs = api.get(f"/api/v1/exhibits/{exhibit['id']}/runs", headers=h).json()
    # Registering the image started triage by itself; a running worker may already have taken
    # the run (or even finished it) by the time we look.
    assert len(runs) == 1 and runs[0]["image_id"] == r.json()["id"], runs
    return exhibit["id"], runs[0]["id"]


def _final(
    api: TestClient, staff: dict[str, Any], run_id: int, workers: Workers, timeout: float = 120
) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        run = api.get(f"/api/v1/runs/{run_id}", headers=staff["manager"]).json()
        return run if run["state"] in FINAL else None

    result: dict[str, Any] = wait_for(done, timeout, f"run {run_id} to finish", workers.logs)
    return result


def _hit_count(engine: Engine, run_id: int) -> int:
    with Session(engine) as s:
        return int(
            s.exec(select(func.count()).select_from(TriageHit).where(TriageHit.run_id == run_id)).one()
        )


def test_e01_and_ntfs_triaged_end_to_end(
    api: TestClient,
    staff: dict[str, Any],
    workers: Workers,
    ntfs_image: Path,
    reference_sets: None,
    engine_w: Engine,
    worker_env: dict[str, str],
) -> None:
    e01_exhibit, e01_run = _exhibit_with_image(api, staff, "E/1", TESTDATA / "ext2.E01")
    ntfs_exhibit, ntfs_run = _exhibit_with_image(api, staff, "N/1", ntfs_image)
    # As a hash set registered before stores had Bloom filters: the worker builds the filter.
    (prefilter,) = (Path(worker_env["TRIAGE_ARTIFACT_DIR"]) / "hashsets" / "index").glob("*.filter")
    prefilter.unlink()
    workers.start()
    h = staff["manager"]
    e01 = _final(api, staff, e01_run, workers)
    ntfs = _final(api, staff, ntfs_run, workers)
    assert e01["state"] == "succeeded", e01["error"]
    assert ntfs["state"] == "succeeded", ntfs["error"]
    assert e01["summary"]["files"] == 3 and e01["summary"]["image"]["integrity"] == "verified"
    assert e01["provenance"]["versions"]["sleuthkit"] and e01["attempts"] == 1
    assert ntfs["bytes_done"] == ntfs["bytes_total"] > 0 and ntfs["files_done"] == ntfs["summary"]["files"]

    hits = api.get(f"/api/v1/runs/{ntfs_run}/hits", headers=h).json()["items"]
    assert {(x["source"], x["name"], x["path"]) for x in hits} == {
        ("hashset", "vics", "/IMG_0001.jpg"),
        ("yara", "planted_marker", "/notes.txt"),
    }
    assert next(x for x in hits if x["source"] == "hashset")["category"] == "VICS 1 child abuse material"
    assert prefilter.exists()
    for exhibit_id in (e01_exhibit, ntfs_exhibit):  # triaged, then queued for examination
        assert api.get(f"/api/v1/exhibits/{exhibit_id}", headers=h).json()["state"] == "awaiting_examination"
        trail = [e["to_state"] for e in api.get(f"/api/v1/exhibits/{exhibit_id}/custody", headers=h).json()]
        assert trail[-3:] == ["triaging", "triaged", "awaiting_examination"]
    # The hits raised the case's priority: its score names them.
    case_id = api.get(f"/api/v1/exhibits/{ntfs_exhibit}", headers=h).json()["case_id"]
    factors = {f["code"] for f in api.get(f"/api/v1/cases/{case_id}/score", headers=h).json()["factors"]}
    assert "known_bad_hits" in factors
    image = api.get(f"/api/v1/exhibits/{e01_exhibit}/images", headers=h).json()[0]
    assert image["verification_state"] == "verified"
    dfxml = api.get(f"/api/v1/runs/{ntfs_run}/dfxml", headers=h)
    assert dfxml.status_code == 200 and b"<fileobject>" in dfxml.content
    listing = api.get(f"/api/v1/runs/{ntfs_run}/files", headers=h)
    assert listing.status_code == 200 and listing.content[:2] == b"\x1f\x8b"
    metrics = api.get("/metrics").text
    assert 'triage_runs_finished_total{state="succeeded"} 2.0' in metrics


def _slow_to_verify(image: Path) -> tuple[Path, str]:
    """``image`` with 1 GiB of (sparse) zeros after its volume, and its MD5 to declare.

    Tests that kill a worker while a run is under way need the run to last longer than a poll:
    with the MD5 declared, each attempt first spends seconds verifying the whole image. (The
    bare NTFS image is triaged in a fraction of a second on a fast machine: an attempt could
    finish between two polls and never be seen running.)"""
    slow = image.with_name(f"{image.stem}-padded{image.suffix}")
    shutil.copyfile(image, slow)
    os.truncate(slow, image.stat().st_size + 2**30)
    with slow.open("rb") as reader:
        return slow, hashlib.file_digest(reader, "md5").hexdigest()


def test_sigkill_mid_run_completes_exactly_once(
    api: TestClient,
    staff: dict[str, Any],
    workers: Workers,
    ntfs_image: Path,
    reference_sets: None,
    engine_w: Engine,
) -> None:
    slow, md5 = _slow_to_verify(ntfs_image)
    _, run_id = _exhibit_with_image(api, staff, "N/1", slow, acquisition_md5=md5)
    first = workers.start()
    wait_for(
        lambda: run_row(engine_w, run_id).state in (RunState.verifying, RunState.running),
        60,
        "the run to be claimed",
        workers.logs,
    )
    workers.kill(first)
    assert run_row(engine_w, run_id).state in (RunState.verifying, RunState.running)
    workers.start()
    run = _final(api, staff, run_id, workers)
    assert run["state"] == "succeeded", run["error"]
    assert run["attempts"] == 2
    assert _hit_count(engine_w, run_id) == 2  # once each, never doubled
    with Session(engine_w) as s:
        sweeps = s.exec(select(AuditEvent).where(AuditEvent.action == "run.sweep.queued")).all()
    assert len(sweeps) == 1


def test_image_altered_after_acquisition_ends_integrity_failed_with_nothing_stored(
    api: TestClient,
    staff: dict[str, Any],
    workers: Workers,
    ntfs_image: Path,
    reference_sets: None,
    engine_w: Engine,
) -> None:
    declared = hashlib.md5(ntfs_image.read_bytes()).hexdigest()  # noqa: S324
    altered = ntfs_image.with_name("altered.img")
    data = bytearray(ntfs_image.read_bytes())
    data[-4096] ^= 0xFF
    altered.write_bytes(bytes(data))
    exhibit_id, run_id = _exhibit_with_image(api, staff, "A/1", altered, acquisition_md5=declared)
    workers.start()
    run = _final(api, staff, run_id, workers)
    assert run["state"] == "integrity_failed" and "integrity check failed" in run["error"]
    assert _hit_count(engine_w, run_id) == 0 and run["summary"] is None
    exhibit = api.get(f"/api/v1/exhibits/{exhibit_id}", headers=staff["manager"]).json()
    assert exhibit["integrity_flag"] is True and exhibit["state"] == "imaged"
    image = api.get(f"/api/v1/exhibits/{exhibit_id}/images", headers=staff["manager"]).json()[0]
    assert image["verification_state"] == "failed"
    events = api.get(
        f"/api/v1/audit?action=exhibit.integrity_flag&object_id={exhibit_id}", headers=staff["manager"]
    ).json()
    assert events["total"] == 1


def test_bogus_image_fails_cleanly_and_the_next_run_succeeds(
    api: TestClient, staff: dict[str, Any], workers: Workers, engine_w: Engine
) -> None:
    _, bogus_run = _exhibit_with_image(api, staff, "B/1", TESTDATA / "bogus.001")
    worker = workers.start()
    run = _final(api, staff, bogus_run, workers)
    assert run["state"] == "failed" and "no readable partition or file system" in run["error"]
    _, good_run = _exhibit_with_image(api, staff, "G/1", TESTDATA / "ext2.splitraw.000")
    assert _final(api, staff, good_run, workers)["state"] == "succeeded"
    assert workers.alive(worker)


def test_a_run_that_kills_its_worker_every_time_is_quarantined_and_work_goes_on(
    api: TestClient, staff: dict[str, Any], workers: Workers, ntfs_image: Path, engine_w: Engine
) -> None:
    slow, md5 = _slow_to_verify(ntfs_image)
    _, run_id = _exhibit_with_image(api, staff, "P/1", slow, acquisition_md5=md5)
    for attempt in (1, 2, 3):
        proc = workers.start()

        def started(a: int = attempt) -> bool:
            run = run_row(engine_w, run_id)
            return run.attempts == a and run.state in (RunState.verifying, RunState.running)

        wait_for(
            started,
            60,
            f"attempt {attempt} to start",
            workers.logs,
        )
        workers.kill(proc)
    workers.start()
    run = _final(api, staff, run_id, workers)
    assert run["state"] == "quarantined" and "quarantined after 3 attempts" in run["error"]
    assert _hit_count(engine_w, run_id) == 0
    _, next_run = _exhibit_with_image(api, staff, "Q/1", TESTDATA / "ext2.E01")
    assert _final(api, staff, next_run, workers)["state"] == "succeeded"
