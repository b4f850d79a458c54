"""The ``triage`` command as a user meets it: every command listed, a scan starting light."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from triage.cli import COMMANDS
from triage.cli import app as cli


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


def test_unknown_command_is_refused() -> None:
    result = CliRunner().invoke(cli, ["explode"])
    assert result.exit_code == 2
    assert "No such command" in result.output
