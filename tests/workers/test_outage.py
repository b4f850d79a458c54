"""The loops that poll the database (the local worker, the sweeper) through an outage."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from pydantic import SecretStr

from triage.settings import Environment, Settings
from workers.local import LocalWorker
from workers.outage import OutageLog


def test_a_database_outage_is_told_once_not_with_a_traceback_every_poll(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # `triage serve` with its database down logged about 130 lines of traceback a second.
    settings = Settings(
        environment=Environment.test,
        database_url="postgresql+psycopg://triage:secret@127.0.0.1:9/triage",
        artifact_dir=tmp_path / "artifacts",
        secret_key=SecretStr("test-secret-key-which-is-long-enough-0123456789"),
        poll_interval_seconds=0.02,
    )
    stop = threading.Event()
    worker = threading.Thread(target=LocalWorker(settings).run_forever, args=(stop,))
    with caplog.at_level(logging.WARNING, logger="triage"):
        worker.start()
        stop.wait(1.0)  # some fifty polls
        stop.set()
        worker.join(10)
    told = [r for r in caplog.records if r.name.startswith("triage")]
    assert [r.levelname for r in told] == ["WARNING"], [r.getMessage()[:120] for r in told]
    assert "local worker waits for the database" in told[0].getMessage()
    assert "triage:***@127.0.0.1:9/triage cannot be used: connection failed" in told[0].getMessage()


def test_the_end_of_an_outage_is_told_and_other_failures_keep_their_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from sqlalchemy.exc import OperationalError

    outage = OutageLog(logging.getLogger("triage.test"), "sweeper", "sqlite:///x.db")
    down = OperationalError("SELECT 1", {}, Exception("database is locked"))
    with caplog.at_level(logging.INFO, logger="triage.test"):
        outage.failed(down)
        outage.failed(down)
        outage.succeeded()
        outage.succeeded()
        try:
            raise ValueError("a bug of ours")
        except ValueError as exc:
            outage.failed(exc)
    said = [(r.levelname, r.getMessage(), r.exc_info is not None) for r in caplog.records]
    assert said == [
        (
            "WARNING",
            "sweeper waits for the database: the database sqlite:///x.db cannot be used: database is locked",
            False,
        ),
        ("WARNING", "sweeper: the database answers again", False),
        ("ERROR", "sweeper failed; will try again", True),
    ]
