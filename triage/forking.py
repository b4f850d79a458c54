"""How the scan's child processes are made, in a module that imports nothing heavy, so that
the `triage` command can start the fork server before it imports anything else
(``triage.launch``).

Children are forked from a fork server: safe in threaded parents (the API server, the local
worker) like spawning, but a child starts without importing the program again (spawning
re-imported the whole CLI in every child, about 0.8 s of CPU each). The server loads the
evidence and analysis modules once.
"""

from __future__ import annotations

import multiprocessing as mp
from multiprocessing import forkserver

CTX = mp.get_context("forkserver")
CTX.set_forkserver_preload(["triage.scan.analyse", "triage.scan.phases"])


def start_fork_server() -> None:
    """Start the fork server now, so that it loads the analysis modules while the caller still
    prepares (imports, hash sets, rules, the image's probe) rather than when the first child is
    asked for."""
    forkserver.ensure_running()
