"""The `triage` command's entry point, which imports nothing before it knows the command.

`triage scan` starts its fork server first (``triage.forking``), so that the server loads the
analysis modules on the other core while this process imports the command line (Typer, Rich
and the scan's modules: 0.3-0.5 s). And every child the fork server makes runs the command's
script again as its main module (multiprocessing's rule for a main script): from here that
costs nothing, where the script that imported the command line made each child import Typer
and Rich too.

When a scan has finished, the process leaves without the interpreter's teardown of every
module and object it loaded (``leave``): that took 50 ms after each scan, 1.4% of the bench
image's scan, for nothing.
"""

from __future__ import annotations

import sys
from typing import NoReturn

HELP_FLAGS = {"--help", "-h"}


def main() -> None:
    args = sys.argv[1:]
    scan = args[:1] == ["scan"] and not HELP_FLAGS & set(args)
    if scan:
        from triage.forking import start_fork_server

        start_fork_server()
    from triage.cli import app

    if not scan:
        app()
        return
    try:
        app()
    except SystemExit as done:
        leave(done.code)
    leave(0)


def leave(code: object) -> NoReturn:
    """Exit with ``code`` (as ``SystemExit`` takes it) once what the interpreter would do on the
    way out that anyone can see is done: other threads finished, the ``atexit`` handlers run
    (logging's flush, multiprocessing's clean-up of its children and semaphores), the standard
    streams flushed. Only the freeing of memory the system takes back anyway is skipped."""
    import atexit
    import os
    import threading

    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # a message: written to stderr, status 1, as the interpreter does
        print(code, file=sys.stderr)
        status = 1
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()  # what the interpreter calls on its way out (CPython's own hook)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader gone (a closed pipe), or a stream closed
            status = status or 120  # the interpreter's status when it cannot flush at exit
    os._exit(status)
