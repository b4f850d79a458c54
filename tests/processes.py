"""Process trees from /proc, for the worker tests (to kill a worker with its children) and the
scan bench (to sum the memory of a scan and its children)."""

from __future__ import annotations

import os


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
