"""A local worker asked to stop with a run under way (`triage serve` or `triage worker` ending
on SIGTERM or Ctrl-C) gives the run back to the queue at once, leaving no process behind; the
next worker triages it from the start."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tests.images import build
from tests.images.planted import SLOW_RULE, Planted, random_bytes
from tests.processes import group_ends, kill_tree
from tests.workers.conftest import TRIAGE, run_row, wait_for
from tests.workers.test_backends import _exhibit_with_image
from triage.models.audit import AuditEvent
from triage.models.runs import RunState

FILES = 6  # of 64 KiB, each about a second under SLOW_RULE


@pytest.fixture
def backend() -> str:
    return "local"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _command(how: str) -> list[str]:
    if how == "serve":
        return [TRIAGE, "serve", "--host", "127.0.0.1", "--port", str(_free_port())]
    return [TRIAGE, "worker", "--backend", "local", *(["--once"] if how == "once" else [])]


@pytest.mark.parametrize("how", ["serve", "worker", "once"])
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_stopped_local_worker_gives_its_run_back_at_once(
    how: str,
    stop: signal.Signals,
    api: TestClient,
    staff: dict[str, Any],
    worker_env: dict[str, str],
    engine_w: Engine,
    tmp_path: Path,
) -> None:
    # Before: `triage serve` ended where it stood, its run left "running" until its lease
    # lapsed (60 s by default) and another worker swept it; `triage worker` on SIGTERM finished
    # the run first, however long it took (hours, on a large disk).
    evidence = Path(worker_env["TRIAGE_EVIDENCE_ROOTS"].split(":")[0])
    image = build.ext4(
        evidence / "slow.img", [Planted(f"f{n}.bin", random_bytes(n, 64 * 1024)) for n in range(FILES)]
    )
    rules = Path(worker_env["TRIAGE_REFERENCE_ROOTS"]) / "slow"
    rules.mkdir()
    (rules / "slow.yar").write_text(SLOW_RULE)
    r = api.post("/api/v1/rulesets", json={"path": str(rules), "name": "slow"}, headers=staff["admin"])
    assert r.status_code == 201, r.text
    _, run_id = _exhibit_with_image(api, staff, "S/1", image)
    env = {**os.environ, **worker_env, "TRIAGE_RUN_LEASE_SECONDS": "600"}  # no lapse in this test
    log = tmp_path / "stopped.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            _command(how), env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for(
            lambda: (
                run_row(engine_w, run_id).state == RunState.running
                and run_row(engine_w, run_id).files_total > 0
            ),
            60,
            "the run to be analysing its files",
            log.read_text,
        )
        started = time.monotonic()
        proc.send_signal(stop)  # to the command alone, as a service manager or Ctrl-C does
        proc.wait(30)
        took = time.monotonic() - started
    finally:
        kill_tree(proc)
    logs = log.read_text(errors="replace")
    # `triage serve` ends by the signal a service manager sent, as before (uvicorn ends quietly
    # on Ctrl-C); `triage worker` ends as it did when idle.
    assert proc.returncode == (-stop if how == "serve" and stop != signal.SIGINT else 0), logs
    run = run_row(engine_w, run_id)
    assert run.state == RunState.queued, logs
    assert run.worker_id is None and run.lease_expires_at is None
    assert run.phase == "" and run.bytes_done == run.files_done == 0  # waiting, no attempt's progress
    assert f"stopped during attempt {run.attempts}" in run.error
    # Stopped promptly: inside the grace a service manager gives (Docker 10 s, plus slack).
    assert took < 15, f"the worker took {took:.1f} s to stop\n{logs}"
    with Session(engine_w) as s:
        released = s.exec(select(AuditEvent).where(AuditEvent.action == "run.release.queued")).all()
    assert [e.object_id for e in released] == [str(run_id)]
    assert not list((Path(worker_env["TRIAGE_ARTIFACT_DIR"]) / "runs" / str(run_id)).glob("attempt-*"))
    group_ends(proc.pid, "the stopped worker")  # its scan's fork server and analysis processes end with it
    # Nothing lost: the next worker triages the image from the start.
    done = subprocess.run(
        [TRIAGE, "worker", "--backend", "local", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    run = run_row(engine_w, run_id)
    assert run.state == RunState.succeeded, run.error
    assert run.attempts == 2 and run.summary is not None and run.summary["files"] == FILES
