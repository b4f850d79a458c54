"""What the management commands print: tables on stdout, refusals on stderr.

(`triage scan` keeps its own plain one-line messages: its exit statuses are a contract with
scripts, see triage/cli/scan.py.)"""

from __future__ import annotations

import typer
from rich.console import Console

console = Console()
err = Console(stderr=True, soft_wrap=True)  # a refusal stays one line, however long


def fail(message: str, code: int = 1, label: str = "error") -> typer.Exit:
    """Print ``label: message`` on stderr and return the exit to raise (``raise fail(...)``)."""
    err.print(f"[red]{label}:[/red] {message}")
    return typer.Exit(code)
