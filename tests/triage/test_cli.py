"""The ``triage`` command as a user meets it: every command listed, a scan starting light."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from tests.conftest import TESTDATA, invoke_cli
from tests.factories import queued_cases, row_id
from triage import queue
from triage.cli import COMMANDS
from triage.cli import app as cli
from triage.context import Context
from triage.models.accounts import Account, Role
from triage.models.queue import ExaminationTask, TaskState
from triage.models.types import utcnow


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    rows = [line.split() for line in result.output.splitlines() if line.startswith("│ ")]
    listed = {row[1] for row in rows if len(row) > 2}
    assert set(COMMANDS) <= listed, set(COMMANDS) - listed


def test_scan_loads_no_database_or_web_code() -> None:
    """`triage scan` needs no database: its start-up must not import the database, web or
    queue layers (they cost most of the CLI's start-up), nor may its worker processes."""
    probe = (
        "import sys\n"
        "from triage.cli import app\n"
        "sys.argv = ['triage', 'scan', '--help']\n"
        "try:\n"
        "    app()\n"
        "except SystemExit:\n"
        "    pass\n"
        "import triage.scan.analyse, triage.scan.phases\n"  # what the scan's fork server preloads
        "heavy = sorted(m for m in ('sqlalchemy', 'sqlmodel', 'fastapi', 'alembic', 'celery', 'rq')"
        " if m in sys.modules)\n"
        "print('HEAVY:' + ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "HEAVY:\n" in out.stdout, out.stdout[-300:]


def _launch(*args: str) -> str:
    """Run the `triage` entry point with ``args``, recording whether Typer was imported yet at
    each start of the fork server (the server itself is not started)."""
    probe = (
        "import sys\n"
        "import triage.forking\n"
        "calls = []\n"
        "triage.forking.start_fork_server = lambda: calls.append('typer' in sys.modules)\n"
        f"sys.argv = ['triage', *{list(args)!r}]\n"
        "import triage.launch\n"
        "triage.launch.leave = sys.exit\n"  # a scan's end leaves the process at once
        "try:\n"
        "    triage.launch.main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('CALLS:', calls)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.rsplit("CALLS:", 1)[1].strip()


def test_scan_starts_its_fork_server_before_the_command_line_is_imported(tmp_path: Path) -> None:
    # The server then loads the analysis modules while this process imports Typer and Rich,
    # and its children, which run the entry point again as their main module, import neither.
    calls = _launch("scan", str(tmp_path / "missing.img"))
    assert calls.startswith("[False"), calls
    assert _launch("scan", "--help") == "[]"
    assert _launch("queue", "--help") == "[]"
    light = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, triage.launch\n"
            "print(sorted(m for m in sys.modules if m.startswith(('typer', 'rich', 'click', 'triage.'))))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert light.stdout.strip() == "['triage.launch']", light.stdout


@pytest.mark.parametrize(
    ("code", "status", "stderr"), [(None, 0, ""), (3, 3, ""), ("no such image", 1, "no such image\n")]
)
def test_a_finished_scan_leaves_as_the_interpreter_would(
    tmp_path: Path, code: object, status: int, stderr: str
) -> None:
    # Without the interpreter's teardown (triage.launch.leave), but with what anyone can see
    # of it: other threads finished, atexit handlers run, what was printed flushed to a pipe.
    probe = (
        "import atexit, sys, threading, time\n"
        "from pathlib import Path\n"
        "from triage.launch import leave\n"
        f"folder = Path({str(tmp_path)!r})\n"
        "atexit.register(lambda: (folder / 'atexit').write_text('ran'))\n"
        "def late():\n"
        "    time.sleep(0.3)\n"
        "    (folder / 'thread').write_text('finished')\n"
        "threading.Thread(target=late).start()\n"
        "print('printed, no newline', end='')\n"
        f"leave({code!r})\n"
        "print('never')\n"
    )
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # as for a user
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=buffered)
    assert (done.returncode, done.stdout, done.stderr) == (status, "printed, no newline", stderr)
    assert (tmp_path / "atexit").read_text() == "ran" and (tmp_path / "thread").read_text() == "finished"


@pytest.mark.parametrize("closed", [(2,), (1,), (0, 1, 2)])
def test_a_scan_started_with_standard_descriptors_closed_runs_and_writes_whole_results(
    closed: tuple[int, ...], tmp_path: Path
) -> None:
    # With standard error closed (`2>&-`) the scan ended at once with status 1 and no word of
    # why (Python's sys.stderr is None), and the first file it opened took descriptor 2, where
    # a library's warning would have been written into it; with standard output closed it
    # wrote its results, then failed on Python's None sys.stdout.
    document = tmp_path / "d.xml"
    triage = str(Path(sys.executable).with_name("triage"))
    image = str(TESTDATA / "iso9660.raw")
    done = subprocess.run(
        [triage, "scan", image, "--dfxml", str(document)],
        capture_output=True,
        text=True,
        preexec_fn=lambda: os.closerange(min(closed), max(closed) + 1),  # in the child alone
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    assert document.read_text().startswith("<?xml") and document.read_text().endswith("</dfxml>\n")


def test_unknown_command_is_refused() -> None:
    result = CliRunner().invoke(cli, ["explode"])
    assert result.exit_code == 2
    assert "No such command" in result.output


@pytest.mark.parametrize("command", ["hashsets add", "rules add", "worker --once", "serve"])
def test_an_artifact_folder_that_cannot_be_written_is_refused_at_the_start(
    command: str, database_url: str, engine: Engine, tmp_path: Path
) -> None:
    # Registering a hash set or rules ended in a FileNotFoundError traceback; a worker or the
    # server started, and each run then failed when it came to write its listing.
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    inputs = {"hashsets add": "set.md5", "rules add": "set.yar"}
    (tmp_path / "set.md5").write_text("d41d8cd98f00b204e9800998ecf8427e\n")
    (tmp_path / "set.yar").write_text("rule a { condition: true }\n")
    args = command.split() + ([str(tmp_path / inputs[command])] if command in inputs else [])
    with socket.socket() as taken:  # should `serve` get past the check, it stops at the port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {
            "TRIAGE_DATABASE_URL": database_url,
            "TRIAGE_ARTIFACT_DIR": str(blocked / "artifacts"),
            "TRIAGE_API_PORT": str(taken.getsockname()[1]),
        }
        result = invoke_cli(args, env)
    assert result.exit_code == 1, result.output
    assert (
        result.stderr
        == f"triage: TRIAGE_ARTIFACT_DIR {blocked / 'artifacts'}: cannot keep files there: Not a directory\n"
    )


@pytest.mark.parametrize("inside", [True, False])
@pytest.mark.parametrize("command", ["hashsets add", "worker --once", "serve"])
def test_an_artifact_folder_overlapping_an_evidence_root_is_refused_at_the_start(
    command: str, inside: bool, database_url: str, engine: Engine, tmp_path: Path
) -> None:
    # Runs' results and uploads were written among the evidence (and old attempts removed
    # there), or the evidence root lay inside the folder they are written to.
    evidence = tmp_path / "evidence"
    artifacts = evidence / "artifacts" if inside else tmp_path
    evidence.mkdir()
    (tmp_path / "set.md5").write_text("d41d8cd98f00b204e9800998ecf8427e\n")
    args = command.split() + ([str(tmp_path / "set.md5")] if command == "hashsets add" else [])
    with socket.socket() as taken:  # should `serve` get past the check, it stops at the port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {
            "TRIAGE_DATABASE_URL": database_url,
            "TRIAGE_ARTIFACT_DIR": str(artifacts),
            "TRIAGE_EVIDENCE_ROOTS": str(evidence),
            "TRIAGE_API_PORT": str(taken.getsockname()[1]),
        }
        result = invoke_cli(args, env)
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        f"triage: TRIAGE_ARTIFACT_DIR {artifacts}: overlaps the evidence root {evidence.resolve()}; "
        "evidence is never written to: keep the artifact folder apart from every evidence root\n"
    )
    assert sorted(p.name for p in evidence.iterdir()) == []  # nothing made among the evidence


@pytest.mark.parametrize("command", ["worker", "scheduler"])
def test_rq_chosen_on_the_command_line_is_refused_a_broker_url_that_is_not_redis(
    command: str, tmp_path: Path
) -> None:
    # The settings were checked with the environment's backend (local), then copied with RQ
    # unchecked: Redis's ValueError traceback as the worker started.
    env = {"TRIAGE_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "TRIAGE_BROKER_URL": "amqp://rabbit//"}
    result = invoke_cli([command, "--backend", "rq"], env)
    assert result.exit_code == 1
    assert result.stderr.startswith("triage: invalid settings: TRIAGE_BROKER_URL: RQ needs a Redis URL")


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("var/triage.db", "is not a database URL"),  # a path where a URL goes
        ("postgres+nodriver://officer:s3cret@db/triage", "names 'postgres+nodriver', a database"),
    ],
)
@pytest.mark.parametrize("command", ["queue", "serve"])
def test_a_database_url_that_cannot_be_used_is_refused_in_one_line(command: str, url: str, said: str) -> None:
    # SQLAlchemy's traceback ended every command, and the server, at start-up.
    result = invoke_cli([command], {"TRIAGE_DATABASE_URL": url})
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"triage: TRIAGE_DATABASE_URL {said}") and result.stderr.count("\n") == 1
    assert "s3cret" not in result.stderr and "local worker started" not in result.stdout


@pytest.mark.parametrize("command", ["rescore", "serve"])
def test_a_bad_scoring_policy_is_refused_with_its_line_not_a_traceback(
    command: str, database_url: str, engine: Engine, tmp_path: Path
) -> None:
    bad = tmp_path / "policy.toml"
    bad.write_text('version = "local-1"\n[factors.horoscope]\npoints = 1\n')
    result = invoke_cli([command], {"TRIAGE_DATABASE_URL": database_url, "TRIAGE_SCORING_POLICY": str(bad)})
    assert result.exit_code == 1
    assert result.stderr.strip() == f"triage: {bad}:2: unknown policy factor 'horoscope'", result.exception
    assert "local worker started" not in result.stdout  # refused before anything started


def test_rescore_with_a_bad_policy_changes_nothing(database_url: str, engine: Engine, tmp_path: Path) -> None:
    """Refused before its first write: a task whose lease lapsed stays as it was (the sweep
    that rescore starts with would return it to the queue)."""
    with Session(engine, expire_on_commit=False) as s:
        officer = Account(username="officer", role=Role.investigator, password_hash="x")
        examiner = Account(username="examiner", role=Role.examiner, password_hash="x")
        s.add_all([officer, examiner])
        s.commit()
    queued_cases(engine, 1, row_id(officer), seed=1, today=date.today())
    with Session(engine, expire_on_commit=False) as s:
        lapsed = queue.claim_next(s, Context(actor=examiner), 60, now=utcnow() - timedelta(hours=1))
        s.commit()
    assert lapsed is not None
    bad = tmp_path / "policy.toml"
    bad.write_text('version = "local-1"\n[factors.horoscope]\npoints = 1\n')
    result = invoke_cli(["rescore"], {"TRIAGE_DATABASE_URL": database_url, "TRIAGE_SCORING_POLICY": str(bad)})
    assert result.exit_code == 1 and "unknown policy factor" in result.stderr
    with Session(engine) as s:
        task = s.get(ExaminationTask, lapsed.id)
        assert task is not None and task.state == TaskState.claimed


def test_settings_that_do_not_validate_are_refused_in_one_line(tmp_path: Path) -> None:
    result = invoke_cli(
        ["queue"],
        {
            "TRIAGE_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
            "TRIAGE_ENVIRONMENT": "production",
            "TRIAGE_SECRET_KEY": "",
        },
    )
    assert result.exit_code == 1
    assert result.stderr == (
        "triage: invalid settings: TRIAGE_SECRET_KEY is left at its default; "
        "set a long random value outside development\n"
    )  # not "settings: Value error, TRIAGE_SECRET_KEY ...", pydantic's words around ours


@pytest.mark.parametrize(
    ("url", "said"),
    [
        (
            "postgresql+psycopg://someone:hunter2@127.0.0.1:9/triage",
            "database postgresql+psycopg://someone:***@127.0.0.1:9/triage cannot be used: connection failed",
        ),
        ("sqlite:///{tmp}/never-upgraded.db", "has no tables yet, or older ones (no such table: "),
    ],
)
def test_a_database_that_cannot_be_used_is_one_line_not_a_traceback(
    url: str, said: str, tmp_path: Path
) -> None:
    # Every command that reads the database printed some 500 lines of traceback when it was
    # not running, refused the account, or had no tables yet.
    result = invoke_cli(["queue"], {"TRIAGE_DATABASE_URL": url.format(tmp=tmp_path)})
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert said in result.output and result.output.count("\n") == 1, result.output
    assert "hunter2" not in result.output
    if "sqlite" in url:
        assert "run `triage db upgrade`" in result.output


def test_an_rq_worker_whose_broker_does_not_answer_is_one_line(tmp_path: Path) -> None:
    # It printed some 190 lines of traceback.
    env = {
        "TRIAGE_DATABASE_URL": f"sqlite:///{tmp_path}/triage.db",
        "TRIAGE_BROKER_URL": "redis://:hunter2@127.0.0.1:9/0",
    }
    result = invoke_cli(["worker", "--backend", "rq"], env)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert result.output.startswith("triage: the broker redis://:***@127.0.0.1:9/0 cannot be reached: ")
    assert result.output.count("\n") == 1 and "hunter2" not in result.output
