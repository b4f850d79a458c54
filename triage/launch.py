"""The `triage` command's entry point, which imports nothing before it knows the command.

`triage scan` starts its fork server first (``triage.forking``), so that the server loads the
analysis modules on the other core while this process imports the command line (Typer, Rich
and the scan's modules: 0.3-0.5 s). And every child the fork server makes runs the command's
script again as its main module (multiprocessing's rule for a main script): from here that
costs nothing, where the script that imported the command line made each child import Typer
and Rich too.
"""

from __future__ import annotations

import sys

HELP_FLAGS = {"--help", "-h"}


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["scan"] and not HELP_FLAGS & set(args):
        from triage.forking import start_fork_server

        start_fork_server()
    from triage.cli import app

    app()
