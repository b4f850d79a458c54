"""The `triage` command's entry point, which imports nothing before it knows the command.

`triage scan` starts its fork server first (``triage.forking``), so that the server loads the
analysis modules on the other core while this process imports the command line (Typer, Rich
and the scan's modules: 0.3-0.5 s). And every child the fork server makes runs the command's
script again as its main module (multiprocessing's rule for a main script): from here that
costs nothing, where the script that imported the command line made each child import Typer
and Rich too.

SIGTERM and SIGHUP end a scan as Ctrl-C does (``stop_as_ctrl_c_does``), its partial results
removed.

When a scan has finished, the process leaves without the interpreter's teardown of every
module and object it loaded (``leave``): that took 50 ms after each scan, 1.4% of the bench
image's scan, for nothing.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

HELP_FLAGS = {"--help", "-h"}


def main() -> None:
    standard_streams_open()
    args = sys.argv[1:]
    scan = args[:1] == ["scan"] and not HELP_FLAGS & set(args)
    if scan:
        from triage.forking import start_fork_server

        stop_as_ctrl_c_does()
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


def standard_streams_open() -> None:
    """Give a standard descriptor the command was started without (``2>&-``, some service
    managers) the null device, as daemons do. Otherwise the first file opened took its number:
    with standard error closed, the scan's check of the terminal failed on Python's None
    ``sys.stderr`` (exit 1, and no word of why), and anything written to descriptor 2 (a
    library's warning) would have gone into that file, a result perhaps."""
    import os

    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        try:
            os.fstat(fd)
        except OSError:  # the lowest free number is this one: those below it are open by now
            os.open(os.devnull, os.O_RDWR)
        if getattr(sys, name) is None:
            setattr(sys, name, open(fd, mode, closefd=False))  # noqa: SIM115 - for the process's life


STOPPING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Stopped(SystemExit):
    """A stopping signal, raised where the main thread was (``stop_as_ctrl_c_does``,
    ``ended_by_signal``), with the status a signal's end gives (128 plus its number). A kind of
    ``SystemExit``, which asyncio lets out of its event loop (another exception raised in a
    task's step is kept in the task: uvicorn then served on)."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


def stop_as_ctrl_c_does() -> None:
    """End the process on SIGTERM (``timeout``, a service manager, ``kill``) or SIGHUP (its
    terminal closed) as Ctrl-C ends it, by an exception, so that what it has under way is
    undone on the way out: a scan stops its analysis processes and removes its partial results
    and temporary files, leaving an earlier scan's results as they were. Exit status 128 plus
    the signal's number. By default either signal ended a scan where it stood, leaving its
    staged results, the walk's spool and the DFXML's fragments in the results' folder."""

    def stop(signum: int, _frame: Any) -> None:
        for other in STOPPING_SIGNALS:  # a second signal must not cut the clean-up short
            signal.signal(other, signal.SIG_IGN)
        raise Stopped(signum)

    for signum in STOPPING_SIGNALS:
        signal.signal(signum, stop)


@contextmanager
def ended_by_signal(signums: tuple[int, ...] = STOPPING_SIGNALS) -> Iterator[None]:
    """Within the block, ``signums`` raise ``Stopped``, so the ``finally`` clauses inside it
    run (a server stopping its local worker); then the process ends by that signal, as it
    would have at once, so a service manager sees the stop it asked for."""

    def stop(signum: int, _frame: Any) -> None:
        raise Stopped(signum)

    before = {signum: signal.signal(signum, stop) for signum in signums}
    try:
        yield
    except Stopped as stopped:
        signal.signal(stopped.signum, signal.SIG_DFL)
        signal.raise_signal(stopped.signum)
        raise  # not reached: the default action of a stopping signal ends the process
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


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
