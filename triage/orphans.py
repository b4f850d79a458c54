"""Helper processes must not outlive the process they serve: a parent killed outright
(SIGKILL) has no chance to tell them, so they watch for it. A process started through a fork
server is the server's child, not the child of the process it serves, so it watches that
process by its id (``on_exit_of``): the server lives on as long as any process it started
does, and watching it was watching nothing."""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable


def on_parent_exit(action: Callable[[], object], parent: int | None = None) -> None:
    """Run ``action`` in a daemon thread once this process's parent (``parent``, by default the
    one it has now) is gone: checked every second."""
    watched = os.getppid() if parent is None else parent

    def watch() -> None:
        while os.getppid() == watched:
            time.sleep(1.0)
        action()

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def on_exit_of(pid: int, action: Callable[[], object]) -> None:
    """Run ``action`` in a daemon thread once process ``pid`` (not necessarily this one's
    parent) has ended: told by the kernel through a process file descriptor, or else checked
    every second."""

    def watch() -> None:
        try:
            handle = os.pidfd_open(pid)
        except OSError as exc:
            if isinstance(exc, ProcessLookupError):  # gone already
                action()
                return
            handle = None  # a kernel without process file descriptors
        if handle is not None:
            select.select([handle], [], [])  # readable once the process has ended
        else:
            while _running(pid):
                time.sleep(1.0)
        action()

    threading.Thread(target=watch, daemon=True, name="owner-watch").start()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True
