"""The examination queue at scale, on PostgreSQL.

1. Rescore 100,000 cases (pure scoring alone, and the full database rescore). Target < 2 s.
2. claim-next with 100,000 queued tasks and 20 examiners claiming concurrently, back to back,
   from a pool of API worker processes (one per core plus one, as docker/compose.yaml runs
   `triage serve`):
   median and 95th percentile latency of each claim as the examiner sees it (waiting for a
   worker, loading the caller, claim, commit). Target p95 < 50 ms. Every claimed task must be
   distinct.
3. The same through HTTP, if `wrk` is installed (apt-get install wrk): `triage serve` with as
   many API workers on the same database, and `wrk` sending POST /api/v1/tasks/claim-next for
   each examiner on its own connection, back to back, for --http-seconds after 2 s untimed
   (the server's first claims open its connections and prepare its statements): what a claim
   costs with the token check, routing, serialisation and uvicorn included, and how evenly the
   examiners were served. (wrk, the server and PostgreSQL share the machine's cores.)

Usage: python -m bench.queue_bench [--cases N] [--examiners N] [--claims N] [--workers N]
       [--http-seconds S]
       (TRIAGE_BENCH_PG_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/test)
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import SecretStr
from sqlalchemy import func, text
from sqlmodel import Session, select

import scoring
from tests.factories import queued_cases
from tests.services import create_pg_database, drop_pg_database, free_port
from triage import accounts, migrate, queue
from triage.context import Context
from triage.db import make_engine
from triage.models.accounts import Account, Role
from triage.models.cases import Case
from triage.models.queue import ExaminationTask, TaskState
from triage.settings import Settings

ADMIN_URL = os.environ.get("TRIAGE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def populate(engine, n: int) -> None:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        officer = Account(username="officer", role=Role.investigator, password_hash="x")
        s.add(officer)
        s.commit()
        assert officer.id is not None
        queued_cases(engine, n, officer.id, seed=1, today=date(2026, 11, 21))
        s.execute(text("ANALYZE"))
        s.commit()


_ENGINE: Any = None


def _api_worker(url: str) -> None:
    """Start-up of one API worker process: its engine and a warm pooled connection."""
    global _ENGINE
    _ENGINE = make_engine(url, pool_size=2)
    with _ENGINE.connect():
        pass


def _api_worker_ready(_: int) -> bool:
    time.sleep(0.5)  # held long enough that every worker process is started and warm
    return _ENGINE is not None


def _claim_request(account_id: int) -> int:
    """What POST /tasks/claim-next does inside an API worker: load the caller, claim, commit."""
    with Session(_ENGINE, expire_on_commit=False) as s:
        account = s.get(Account, account_id)
        assert account is not None
        task = queue.claim_next(s, Context(actor=account), 3600)
        s.commit()
    assert task is not None and task.id is not None
    return task.id


def _vacuum(engine: Any) -> None:
    """What autovacuum and the checkpointer do after a table is rewritten, done now."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
        conn.execute(text("CHECKPOINT"))


_WRK_SCRIPT = """
tokens = {%(tokens)s}
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end
function init(args)
  wrk.method = "POST"
  wrk.path = "/api/v1/tasks/claim-next"
  wrk.headers["Authorization"] = "Bearer " .. tokens[id]
  answered = 0
end
function response(status, headers, body)
  answered = answered + 1
end
function done(summary, latency, requests)
  local fewest, most = math.huge, 0
  for _, thread in ipairs(threads) do
    local n = thread:get("answered")
    fewest, most = math.min(fewest, n), math.max(most, n)
  end
  io.write(string.format(
    "RESULT requests=%%d p50=%%.1f p95=%%.1f non2xx=%%d errors=%%d fewest=%%d most=%%d\\n",
    summary.requests, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout, fewest, most))
end
"""


WARM_UP_SECONDS = 2


class WrkResult(NamedTuple):
    """What the wrk script's ``done`` prints: requests sent, latency median and p95 (ms),
    non-2xx answers, socket errors, and the fewest and most answers on one connection."""

    requests: int
    p50: float
    p95: float
    non2xx: int
    errors: int
    fewest: int
    most: int

    @property
    def ok(self) -> int:
        """Requests answered with a claim."""
        return self.requests - self.non2xx - self.errors


def _wrk(wrk: str, script: str, port: int, connections: int, seconds: int) -> WrkResult:
    """One wrk run of ``script``, a thread and a connection per examiner."""
    n = str(connections)
    out = subprocess.run(
        [
            wrk,
            "-t",
            n,
            "-c",
            n,
            "-d",
            f"{seconds}s",
            "--timeout",
            "10s",
            "-s",
            script,
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.search(
        r"RESULT requests=(\d+) p50=([\d.]+) p95=([\d.]+) non2xx=(\d+) errors=(\d+) fewest=(\d+) most=(\d+)",
        out,
    )
    if found is None:
        raise SystemExit(f"wrk printed no result:\n{out}")
    requests, p50, p95, non2xx, errors, fewest, most = found.groups()
    return WrkResult(int(requests), float(p50), float(p95), int(non2xx), int(errors), int(fewest), int(most))


def _claims_over_http(url: str, engine: Any, examiners: list[Account], workers: int, seconds: int) -> None:
    """Claims through the real API: `triage serve` and `wrk`, one connection per examiner."""
    wrk = shutil.which("wrk")
    if wrk is None:
        print("claim-next through HTTP: skipped (wrk not installed: apt-get install wrk)")
        return
    with Session(engine) as s:
        before = s.exec(select(func.count()).where(ExaminationTask.state == TaskState.claimed)).one()
    secret = secrets.token_urlsafe(32)
    settings = Settings(database_url=url, secret_key=SecretStr(secret))
    tokens = [accounts.issue_token(settings, a)[0] for a in examiners]
    port = free_port()
    env = {
        **os.environ,
        "TRIAGE_DATABASE_URL": url,
        "TRIAGE_SECRET_KEY": secret,
        "TRIAGE_QUEUE_BACKEND": "rq",  # the production shape: no worker inside the API
    }
    triage = str(Path(sys.executable).with_name("triage"))
    server = subprocess.Popen(
        [triage, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("triage serve did not start") from None
                time.sleep(0.2)
        with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
            script.write(_WRK_SCRIPT % {"tokens": ", ".join(f'"{t}"' for t in tokens)})
            script.flush()
            # A server that has just started opens its connections and prepares its statements
            # on the first claims; one that has been serving has done so. Warm it up untimed.
            warm = _wrk(wrk, script.name, port, len(examiners), WARM_UP_SECONDS)
            timed = _wrk(wrk, script.name, port, len(examiners), seconds)
    finally:
        server.terminate()
        server.wait(30)
    with Session(engine) as s:
        after = s.exec(select(func.count()).where(ExaminationTask.state == TaskState.claimed)).one()
    answered = warm.ok + timed.ok
    claimed = after - before
    # Requests still in flight when wrk stops may have claimed without being counted.
    assert answered <= claimed <= answered + 2 * len(examiners), (
        f"{answered} claims answered but {claimed} tasks claimed"
    )
    print(
        f"claim-next through HTTP (triage serve, {workers} workers; wrk, {len(examiners)} examiners "
        f"back to back, {seconds} s): {timed.ok} claims, median {timed.p50} ms, p95 {timed.p95} ms; "
        f"{timed.non2xx} non-2xx answers, {timed.errors} socket errors; claims per examiner from "
        f"{timed.fewest} to {timed.most} "
        "(each connection stays with the API worker process that accepted it)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--examiners", type=int, default=20)
    parser.add_argument("--claims", type=int, default=50, help="claims per examiner")
    parser.add_argument(
        "--workers",
        type=int,
        default=(os.cpu_count() or 2) + 1,
        help="API worker processes (default: one per core plus one, as docker/compose.yaml runs)",
    )
    parser.add_argument(
        "--http-seconds", type=int, default=5, help="how long wrk claims through HTTP (0: not at all)"
    )
    args = parser.parse_args()
    url = create_pg_database(ADMIN_URL, prefix="triage_bench")
    try:
        migrate.upgrade(url)
        engine = make_engine(url, pool_size=args.examiners + 5)
        print(f"populating {args.cases:,} cases, exhibits and queued tasks ...", flush=True)
        populate(engine, args.cases)

        with Session(engine) as s:
            facts = [queue.case_facts(c) for c in s.exec(select(Case)).all()]
        policy = scoring.load()
        now = datetime.now(UTC)
        started = time.perf_counter()
        for f in facts:
            scoring.score(f, scoring.TriageFacts(), now, policy)
        pure = time.perf_counter() - started
        # The first rescore writes every score; the next day's writes only those that changed
        # (days under restriction and weeks waiting move most of them); one an hour later,
        # as the schedule runs it, finds nothing changed and writes nothing. Between them,
        # the vacuum that autovacuum runs within a minute of a table's rows being rewritten
        # (untimed), as it would in the hours between scheduled rescores.
        timings: list[float] = []
        for when in (now, now + timedelta(days=1), now + timedelta(days=1, hours=1)):
            if timings:
                _vacuum(engine)
            with Session(engine) as s:
                started = time.perf_counter()
                queue.rescore(s, when)
                s.commit()
                timings.append(time.perf_counter() - started)
        print(
            f"rescore {args.cases:,} cases: scoring alone {pure:.2f} s; with database reads and "
            f"writes {timings[0]:.2f} s (every score new), {timings[1]:.2f} s (a day later), "
            f"{timings[2]:.2f} s (an hour after that: nothing changed) (target < 2 s)"
        )

        # The rescores above rewrote every task twice; let the vacuum autovacuum would now run,
        # and the checkpoint all that WAL calls for, happen before the claims are timed rather
        # than during them.
        _vacuum(engine)
        examiners = []
        with Session(engine, expire_on_commit=False) as s:
            for n in range(args.examiners):
                a = Account(
                    username=f"ex{n}", role=Role.examiner, password_hash=accounts.hash_password("x" * 12)
                )
                s.add(a)
                examiners.append(a)
            s.commit()
        # One examiner alone first: the cost of a claim without contention.
        solo = []
        for _ in range(50):
            with Session(engine, expire_on_commit=False) as s:
                t0 = time.perf_counter()
                queue.claim_next(s, Context(actor=examiners[0]), 3600)
                s.commit()
                solo.append(time.perf_counter() - t0)
        print(f"claim-next alone: median {statistics.median(solo) * 1000:.1f} ms", flush=True)
        if os.environ.get("BENCH_PROFILE"):
            import cProfile
            import pstats

            with Session(engine, expire_on_commit=False) as s:
                cProfile.runctx(
                    "queue.claim_next(s, Context(actor=examiners[0]), 3600); s.commit()",
                    globals(),
                    {"s": s, "queue": queue, "Context": Context, "examiners": examiners},
                    "/tmp/claim.prof",
                )
            pstats.Stats("/tmp/claim.prof").sort_stats("cumtime").print_stats(25)
        # Production serves claims from a few API worker processes (`triage serve --workers`,
        # about one per core plus one); the examiners are clients elsewhere. So: a pool of worker
        # processes, and one thread per examiner sending claim after claim, timed from the
        # examiner's side (waiting for a free worker included).
        engine.dispose()
        latencies: list[float] = []
        claimed: list[int] = []
        lock = threading.Lock()
        barrier = threading.Barrier(args.examiners)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            args.workers, mp_context=context, initializer=_api_worker, initargs=(url,)
        ) as pool:
            list(pool.map(_api_worker_ready, range(args.workers)))

            def examiner(account_id: int) -> None:
                mine, ids = [], []
                barrier.wait()
                for _ in range(args.claims):
                    t0 = time.perf_counter()
                    ids.append(pool.submit(_claim_request, account_id).result())
                    mine.append(time.perf_counter() - t0)
                with lock:
                    latencies.extend(mine)
                    claimed.extend(ids)

            threads = [threading.Thread(target=examiner, args=(a.id,)) for a in examiners]
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - started
        assert len(set(claimed)) == len(claimed) == args.examiners * args.claims, "a task was claimed twice"
        latencies.sort()
        p50 = statistics.median(latencies) * 1000
        p95 = latencies[int(len(latencies) * 0.95) - 1] * 1000
        print(
            f"claim-next, {args.cases:,} queued, {args.examiners} concurrent examiners, "
            f"{args.workers} API worker processes, "
            f"{len(latencies)} claims in {wall:.1f} s: median {p50:.1f} ms, p95 {p95:.1f} ms "
            "(target p95 < 50 ms)"
        )
        if args.http_seconds > 0:
            _claims_over_http(url, engine, examiners, args.workers, args.http_seconds)
        engine.dispose()
    finally:
        drop_pg_database(url, ADMIN_URL)


if __name__ == "__main__":
    main()
