"""The benches' own measuring: what they print must be what they say they measure."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

# Run in a process of its own: ``timed`` makes the process that calls it the reaper of its
# descendants' orphans, which pytest must not become.
PROBE = """
import sys
import bench.scan_vs_fiwalk as bench
bench.ORPHANS_GRACE = float(sys.argv[2])
busy = "import time\\nt = time.process_time()\\nwhile time.process_time() - t < float(%s): pass" % sys.argv[1]
# The command starts a busy process and ends at once, as `triage scan` leaves its fork server
# (which has reaped the scan's workers) to end after it; the busy process holds none of the
# command's output, so that nothing but the reaping waits for it.
launcher = (
    "import subprocess, sys; "
    f"subprocess.Popen([sys.executable, '-c', {busy!r}], stderr=subprocess.DEVNULL)"
)
print(bench.timed([sys.executable, "-c", launcher]).cpu)
"""


def _probe(busy_seconds: float, grace: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROBE, str(busy_seconds), str(grace)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_timed_counts_the_cpu_of_processes_that_end_after_the_command() -> None:
    done = _probe(0.4, 30)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) >= 0.4


def test_timed_fails_when_the_command_leaves_a_process_running() -> None:
    done = _probe(1.0, 0.1)
    assert done.returncode != 0
    assert "left processes running" in done.stderr
