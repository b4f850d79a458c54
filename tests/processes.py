"""Process trees from /proc, for the worker tests (to kill a worker with its children) and the
scan bench (to sum the memory of a scan and its children)."""

from __future__ import annotations

import os
import signal
import subprocess
import time


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, ...), as /proc shows them now."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, stack = [], list(children.get(pid, []))
    while stack:
        child = stack.pop()
        found.append(child)
        stack.extend(children.get(child, []))
    return found


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``proc`` and every process below it (RQ's work horse starts its own session, so
    killing the process group alone would leave it running), then reap ``proc``."""
    for pid in [proc.pid, *descendants(proc.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(10)


def group_ends(leader: int, what: str, timeout: float = 10.0) -> None:
    """Wait for every process of the group that ``leader`` started (``start_new_session``) to
    end; fail naming ``what`` if any is still running after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(leader, 0)
        except ProcessLookupError:
            return
        assert time.monotonic() < deadline, f"{what} left processes running"
        time.sleep(0.05)
