"""Real worker processes against a real database (and real Redis for Celery and RQ)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.main import create_app
from tests.conftest import TESTDATA, login, make_account
from tests.images import build
from tests.images.planted import KNOWN_BAD, YARA_MARKER, Planted
from tests.processes import kill_tree
from tests.services import IN_CI, REDIS_URL, create_pg_database, drop_pg_database, need
from triage import migrate
from triage.db import make_engine
from triage.models.accounts import Role
from triage.models.runs import TriageRun
from triage.settings import Settings

TRIAGE = str(Path(sys.executable).with_name("triage"))
BACKEND_DB = {"local": "sqlite", "celery": "postgresql", "rq": "postgresql"}
BROKER_DB = {"celery": 14, "rq": 13}


@pytest.fixture(params=["local", "celery", "rq"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def worker_env(backend: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for the API and its workers: a fresh database and broker per test."""
    if BACKEND_DB[backend] == "postgresql":
        need("PostgreSQL", "127.0.0.1", 5432)
        url = create_pg_database()
    else:
        url = f"sqlite:///{tmp_path / 'triage.db'}"
    broker = "redis://127.0.0.1:6379/0"
    if backend != "local":
        need("Redis", "127.0.0.1", 6379)
        broker = REDIS_URL.rsplit("/", 1)[0] + f"/{BROKER_DB[backend]}"
        from redis import Redis

        Redis.from_url(broker).flushdb()
    migrate.upgrade(url)
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    # Workers are killed outright here; what they leave in their temporary folder (a fork
    # server's socket folder, say) stays in the test's own folder, not in /tmp.
    (tmp_path / "tmp").mkdir()
    (tmp_path / "reference").mkdir()
    env = {
        "TRIAGE_ENVIRONMENT": "test",
        "TRIAGE_DATABASE_URL": url,
        "TRIAGE_QUEUE_BACKEND": backend,
        "TRIAGE_BROKER_URL": broker,
        "TRIAGE_EVIDENCE_ROOTS": f"{evidence}:{TESTDATA}",
        "TRIAGE_REFERENCE_ROOTS": str(tmp_path / "reference"),
        "TRIAGE_ARTIFACT_DIR": str(tmp_path / "artifacts"),
        "TRIAGE_SECRET_KEY": "worker-test-secret-key-0123456789abcdef",
        "TRIAGE_RUN_LEASE_SECONDS": "3",
        "TRIAGE_SWEEP_INTERVAL_SECONDS": "0.5",
        "TRIAGE_POLL_INTERVAL_SECONDS": "0.2",
        "TRIAGE_RUN_MAX_ATTEMPTS": "3",
        "TRIAGE_SCAN_PROCESSES": "2",
        "TMPDIR": str(tmp_path / "tmp"),
    }
    yield env
    if BACKEND_DB[backend] == "postgresql":
        drop_pg_database(url)


@pytest.fixture
def settings_w(worker_env: dict[str, str]) -> Settings:
    own = {k.removeprefix("TRIAGE_").lower(): v for k, v in worker_env.items() if k.startswith("TRIAGE_")}
    return Settings(**own)  # type: ignore[arg-type]


@pytest.fixture
def engine_w(settings_w: Settings) -> Iterator[Engine]:
    engine = make_engine(settings_w.database_url)
    yield engine
    engine.dispose()


class Workers:
    """Start and SIGKILL real `triage worker` processes (each in its own process group)."""

    def __init__(self, env: dict[str, str], backend: str, logdir: Path) -> None:
        self.env, self.backend, self.logdir = {**os.environ, **env}, backend, logdir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = (self.logdir / f"worker-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            [TRIAGE, "worker", "--backend", self.backend],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker and every process below it."""
        kill_tree(proc)

    def alive(self, proc: subprocess.Popen[bytes]) -> bool:
        return proc.poll() is None

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-3000:] for p in sorted(self.logdir.glob("worker-*.log"))
        )

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                self.kill(proc)


@pytest.fixture
def workers(worker_env: dict[str, str], backend: str, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(worker_env, backend, tmp_path)
    yield pool
    pool.stop_all()


@pytest.fixture
def api(settings_w: Settings, engine_w: Engine) -> Iterator[TestClient]:
    app = create_app(settings_w)
    with TestClient(app) as client:
        yield client
    app.state.engine.dispose()


@pytest.fixture
def staff(api: TestClient, engine_w: Engine) -> dict[str, Any]:
    admin = make_account(engine_w, "admin", Role.admin)
    manager = make_account(engine_w, "manager", Role.manager)
    ioc = make_account(engine_w, "ioc", Role.investigator)
    return {
        "admin": login(api, "admin"),
        "manager": login(api, "manager"),
        "ioc_id": ioc.id,
        "ids": (admin.id, manager.id),
    }


@pytest.fixture
def ntfs_image(worker_env: dict[str, str]) -> Path:
    missing = build.missing_tools()
    if missing:
        if IN_CI:
            pytest.fail(f"image tools missing under CI: {missing}")
        pytest.skip(f"image tools missing: {missing}")
    root = Path(worker_env["TRIAGE_EVIDENCE_ROOTS"].split(":")[0])
    return build.ntfs(root / "ntfs.img")


@pytest.fixture
def reference_sets(api: TestClient, staff: dict[str, Any], worker_env: dict[str, str]) -> None:
    """A VICS set that lists the planted picture and a rule that finds the planted marker,
    registered by path from the reference root."""
    import json

    reference = Path(worker_env["TRIAGE_REFERENCE_ROOTS"])
    bad = Planted("", KNOWN_BAD)
    vics = reference / "vics.json"
    vics.write_text(
        json.dumps({"value": [{"Category": 1, "MD5": bad.md5.upper(), "SHA1": bad.sha1.upper()}]})
    )
    r = api.post("/api/v1/hashsets", json={"path": str(vics), "name": "vics"}, headers=staff["admin"])
    assert r.status_code == 201, r.text
    rules = reference / "rules"
    rules.mkdir()
    (rules / "marker.yar").write_text(
        f'rule planted_marker {{ strings: $m = "{YARA_MARKER.decode()}" condition: $m }}'
    )
    r = api.post("/api/v1/rulesets", json={"path": str(rules), "name": "test rules"}, headers=staff["admin"])
    assert r.status_code == 201, r.text


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, logs: Callable[[], str]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n--- worker logs ---\n{logs()}")


def run_row(engine: Engine, run_id: int) -> TriageRun:
    with Session(engine, expire_on_commit=False) as session:
        run = session.get(TriageRun, run_id)
        assert run is not None
        return run
