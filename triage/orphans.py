"""Helper processes must not outlive the process they serve: a parent killed outright
(SIGKILL) has no chance to tell them, so they watch for it."""

from __future__ import annotations

import os
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
