"""The isolation that keeps hostile evidence from taking down the caller."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from triage.errors import ResultsNotWritten
from triage.scan.pool import ChildFailed, IsolatedPool, run_child


def _init() -> None:
    return None


def _handler(payload: str) -> str:
    if payload == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    if payload == "hang":
        time.sleep(60)
    if payload == "raise":
        raise ValueError("broken input")
    if payload == "hog":
        _ = bytearray(3 * 1024 * 1024 * 1024)
    return payload.upper()


def _busy(marker: str) -> str:
    Path(marker).write_text("on it")
    time.sleep(1.5)  # within the 2 s an idle worker is given to end
    return "done"


class _GivenUp(Exception):
    pass


def test_closing_a_pool_given_up_on_kills_a_worker_still_on_its_task(tmp_path: Path) -> None:
    # A scan stopped (an error, Ctrl-C, SIGTERM) waited for each batch under way, up to 2 s a
    # worker, for answers nobody wanted.
    started = tmp_path / "started"

    def give_up(payload: str, value: str) -> None:
        while not started.exists():  # the other worker is on its task
            time.sleep(0.01)
        raise _GivenUp

    pool = IsolatedPool(2, _init, (), _busy_or_quick, memory_limit=1024 * 1024 * 1024)
    try:
        with pytest.raises(_GivenUp):
            pool.run(iter([("quick", 30.0), (str(started), 30.0)]), give_up, lambda p, why: None)
        processes = [(slot.process, slot.task is not None) for slot in pool._slots]
    finally:
        pool.close()
    assert sorted((busy, p.exitcode) for p, busy in processes) == [(False, 0), (True, -signal.SIGKILL)]


def _busy_or_quick(payload: str) -> str:
    return payload if payload == "quick" else _busy(payload)


def test_a_pool_waiting_on_a_long_task_asks_whether_to_go_on(tmp_path: Path) -> None:
    # A run cancelled, or its worker stopping, was seen only when a batch came back: minutes,
    # for a batch of slow files. The pool now asks between answers, and ends if told to.
    started = tmp_path / "started"
    asked = []

    def go_on() -> None:
        asked.append(started.exists())
        if started.exists():
            raise _GivenUp

    pool = IsolatedPool(1, _init, (), _busy_or_quick, memory_limit=1024 * 1024 * 1024)
    try:
        with pytest.raises(_GivenUp):
            pool.run(iter([(str(started), 30.0)]), lambda p, v: None, lambda p, why: None, go_on)
        busy = pool._slots[0].task is not None
    finally:
        pool.close()
    assert busy and asked[-1]  # asked, and ended, while the task was under way


def test_pool_survives_crashing_hanging_and_raising_tasks() -> None:
    done: dict[str, Any] = {}
    failed: dict[str, str] = {}
    pool = IsolatedPool(2, _init, (), _handler, memory_limit=1024 * 1024 * 1024)
    try:
        tasks = [
            ("a", 30.0),
            ("segfault", 30.0),
            ("b", 30.0),
            ("hang", 2.0),
            ("raise", 30.0),
            ("hog", 30.0),
            ("c", 30.0),
        ]
        pool.run(iter(tasks), lambda p, v: done.__setitem__(p, v), lambda p, why: failed.__setitem__(p, why))
        # And the pool still works afterwards.
        pool.run(
            iter([("d", 30.0)]),
            lambda p, v: done.__setitem__(p, v),
            lambda p, why: failed.__setitem__(p, why),
        )
    finally:
        pool.close()
    assert done == {"a": "A", "b": "B", "c": "C", "d": "D"}
    assert "died" in failed["segfault"]
    assert "timed out" in failed["hang"]
    assert "broken input" in failed["raise"]
    assert "memory" in failed["hog"].lower()


def _child_ok(x: int, counter: Any) -> int:
    counter.value = x
    return x * 2


def _child_crash(counter: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _child_hang(counter: Any) -> None:
    time.sleep(60)


def test_run_child_returns_and_reports_progress() -> None:
    seen: list[int] = []
    assert run_child(_child_ok, (21,), 30, 1 << 30, seen.append) == 42
    assert seen and seen[-1] == 21


@pytest.mark.parametrize("fn,match", [(_child_crash, "died"), (_child_hang, "timed out")])
def test_run_child_turns_crashes_and_hangs_into_errors(fn: Any, match: str) -> None:
    with pytest.raises(ChildFailed, match=match):
        run_child(fn, (), 2, 1 << 30)


def _child_disk_full(counter: Any) -> None:
    with open("/dev/full", "wb", buffering=0) as out:  # noqa: PTH123 - the device, not a path we own
        try:
            out.write(b"x")
        except OSError as exc:
            raise ResultsNotWritten(exc.errno, exc.strerror, "/dev/full") from exc


def test_a_child_that_cannot_write_its_results_says_so_not_that_it_failed_to_read() -> None:
    # A walk whose spool filled the disk was reported as an unreadable image (exit status 3).
    with pytest.raises(OSError, match="No space left on device") as raised:
        run_child(_child_disk_full, (), 30, 1 << 30)
    assert not isinstance(raised.value, ChildFailed) and raised.value.errno == errno.ENOSPC
    assert raised.value.filename == "/dev/full"


OWNER = """
import time
from tests.triage.test_pool import _child_hang, _handler, _init
from triage.scan.pool import Child, IsolatedPool
pool = IsolatedPool(2, _init, (), _handler, 1 << 30)
child = Child(_child_hang, (), 60, 1 << 30)
print("ready", flush=True)
time.sleep(60)
"""


def _in_session(session: int) -> list[int]:
    """The processes of a session that are still running (zombies are done)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[3]) == session and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def test_helpers_of_a_process_killed_outright_end_too() -> None:
    # A scan killed with SIGKILL (the OOM killer, a worker's hard time limit) left its analysis
    # processes, its walk and the fork server running for good, the image open: they watched
    # their parent, which is the fork server, and the fork server lives while they do.
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == b"ready"
        assert len(_in_session(owner.pid)) >= 4  # the owner, the fork server, two workers, a child
        owner.kill()
        owner.wait(10)
        deadline = time.monotonic() + 20
        while _in_session(owner.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _in_session(owner.pid) == []
    finally:
        for pid in _in_session(owner.pid):
            os.kill(pid, signal.SIGKILL)
