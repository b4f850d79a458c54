"""Writing case scores and carrying them to the open examination tasks, in bulk.

Two ways, chosen by :func:`triage.queue.rescore`:

- :func:`store_in_transaction`: given cases (a change's own rescore), and every case on
  SQLite: a multi-row upsert, then one task update, in the caller's transaction.
- :func:`store_chunked`: a whole-queue rescore on PostgreSQL. The scores, as they are computed,
  are cut into chunks of :data:`CHUNK` cases (the last ones smaller) and written as ``COPY``
  text by the scoring thread; :data:`WRITERS` writer threads, each on its own connection,
  copy a chunk into a temporary staging table, store it and its tasks in one statement and
  commit, while the scoring goes on. So the scoring and the server's writes use the cores at
  once.

Why threads: PostgreSQL reads a connection's next statement only once it has finished the last,
so a chunk sent from the scoring thread would stall the scoring for as long as the server
takes; a writer thread waits on its socket, which frees the interpreter. Why a commit per
chunk: claims pass locked tasks by (``SKIP LOCKED``); were every chunk's tasks held until the
end, a claim meanwhile would be handed a lower task from a chunk not yet written. A rescore
stopped half-way leaves the chunks already written with their new scores: derived values,
which the next rescore completes.

Only scores whose total, flags, factors or policy version changed are rewritten, and only tasks
out of step with their case's score.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from functools import lru_cache
from queue import Queue
from typing import Any

from sqlalchemy import Text, bindparam, cast, column, or_, table, update
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session

import scoring
from triage.db import dialect_insert, json_text
from triage.models.queue import CaseScore, ExaminationTask, TaskState

COLUMNS = ("case_id", "total", "pinned", "held", "factors", "policy_version", "computed_at")
ScoreRow = tuple[int, float, bool, bool, tuple[scoring.Factor, ...], str]
CHUNK = 10_000  # cases per statement of a chunked rescore
TAIL_SPLIT = 4  # once at most CHUNK cases are left, chunks this many times smaller (_chunk_size)
WRITERS = 2  # writer connections: PostgreSQL stores two chunks at once, each on a core
_STAGING = "case_score_in"  # a temporary table per writer; each commit empties it


def upsert(dialect: str, source: Any = None) -> Any:
    """INSERT ... ON CONFLICT DO UPDATE of case scores (from ``source`` if given, else from the
    parameters), touching only rows whose score changed."""
    scores = CaseScore.__table__  # type: ignore[attr-defined]
    statement = dialect_insert(dialect)(scores)
    if source is not None:
        statement = statement.from_select(list(COLUMNS), source)
    new = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[scores.c.case_id],
        set_={name: new[name] for name in COLUMNS[1:]},
        where=or_(
            scores.c.total != new.total,
            scores.c.pinned != new.pinned,
            scores.c.held != new.held,
            scores.c.policy_version != new.policy_version,
            # Every writer serialises with db.json_text, so equal factors are equal text.
            cast(scores.c.factors, Text) != cast(new.factors, Text),
        ),
    )


def task_update(new: Any) -> Any:
    """Open tasks take their case's score from ``new`` (only those that differ are written)."""
    tasks = ExaminationTask.__table__  # type: ignore[attr-defined]
    return (
        update(tasks)
        .where(
            tasks.c.case_id == new.c.case_id,
            or_(tasks.c.state == TaskState.queued.value, tasks.c.state == TaskState.claimed.value),
            or_(
                tasks.c.priority != new.c.total,
                tasks.c.pinned != new.c.pinned,
                tasks.c.held != new.c.held,
            ),
        )
        .values(priority=new.c.total, pinned=new.c.pinned, held=new.c.held)
    )


def store_in_transaction(
    session: Session, scores: list[ScoreRow], now: datetime, case_ids: Sequence[int] | None
) -> None:
    """A multi-row upsert of ``scores``, then the open tasks of ``case_ids`` (all if None) take
    their case's stored score."""
    statement = upsert(session.get_bind().dialect.name)
    values = [
        dict(zip(COLUMNS, (*row[:4], [f.as_dict() for f in row[4]], row[5], now), strict=True))
        for row in scores
    ]
    for start in range(0, len(values), 5000):
        session.execute(statement, values[start : start + 5000])
    carry = task_update(CaseScore.__table__)  # type: ignore[attr-defined]
    if case_ids is not None:
        tasks = ExaminationTask.__table__  # type: ignore[attr-defined]
        carry = carry.where(tasks.c.case_id.in_(case_ids))
    session.execute(carry)


def store_chunked(
    engine: Engine, scores: Iterable[ScoreRow], now: datetime, count: int | None = None
) -> None:
    """PostgreSQL: store ``scores`` (in ascending case id, so that a chunk is a narrow range of
    ids) chunk by chunk from :data:`WRITERS` writer threads, each committing every chunk.
    ``count``, how many scores there are, lets the last chunks be smaller. The caller must hold
    no locks on tasks or scores: the writers would wait for them."""
    chunks: Queue[tuple[bytes, int, int] | None] = Queue(maxsize=WRITERS)
    failures: list[BaseException] = []
    writers = [
        threading.Thread(target=_writer, args=(engine, chunks, failures), name=f"rescore-writer-{n}")
        for n in range(WRITERS)
    ]
    for thread in writers:
        thread.start()
    try:
        for chunk in _copy_chunks(scores, now, count):
            if failures:
                break
            chunks.put(chunk)
    finally:
        for _ in writers:
            chunks.put(None)
        for thread in writers:
            thread.join()
    if failures:
        raise failures[0]


def _copy_chunks(
    scores: Iterable[ScoreRow], now: datetime, count: int | None = None
) -> Iterator[tuple[bytes, int, int]]:
    """Chunks of COPY text with their lowest and highest case id. Written in the scoring thread
    so that the writers need no interpreter time: tab-separated, booleans as t/f, backslash
    escapes in text.

    Chunk sizes come from :func:`_chunk_size`."""
    done = 0
    size = _chunk_size(count, done)
    stamp = now.isoformat()
    versions: dict[str, str] = {}  # each policy version escaped once (a rescore has one)
    lines: list[str] = []
    ids: list[int] = []
    for case_id, total, pinned, held, factors, version in scores:
        if (escaped := versions.get(version)) is None:
            escaped = versions[version] = _copy_escape(version)
        ids.append(case_id)
        lines.append(
            f"{case_id}\t{total!r}\t{'t' if pinned else 'f'}\t{'t' if held else 'f'}\t"
            f"{_copy_escape(json_text(factors))}\t{escaped}\t{stamp}\n"
        )
        if len(lines) == size:
            yield "".join(lines).encode(), min(ids), max(ids)
            done += size
            size = _chunk_size(count, done)
            lines, ids = [], []
    if lines:
        yield "".join(lines).encode(), min(ids), max(ids)


def _chunk_size(count: int | None, done: int) -> int:
    """Cases in the next chunk, ``done`` of ``count`` (None: not known) being chunked already:
    :data:`CHUNK`, but once at most :data:`CHUNK` are left, :data:`TAIL_SPLIT` times fewer.
    Once the scoring ends, the rescore only waits for the chunks still being written, so
    smaller last chunks end it sooner, while the server still gets large chunks for most of
    the work."""
    if count is None or count - done > CHUNK:
        return CHUNK
    return max(1, CHUNK // TAIL_SPLIT)


def _copy_escape(value: str) -> str:
    """Text for a column of COPY's text format."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        value = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


@lru_cache(maxsize=1)
def _chunk_statement() -> tuple[str, dict[str, Any]]:
    """One statement stores a staged chunk of scores (the upsert as a data-modifying CTE) and
    carries them to the chunk's open tasks. Parameters ``lo`` and ``hi``, the chunk's lowest
    and highest case id, bound the tasks read: without them the planner, which knows nothing
    of the fresh staging table, hashed every task for each chunk. Returns the SQL for the
    driver and its fixed parameters."""
    from sqlalchemy.dialects import postgresql

    staged = table(_STAGING, *(column(name) for name in COLUMNS))
    stored = upsert("postgresql", sa_select(staged)).cte("stored")
    tasks = ExaminationTask.__table__  # type: ignore[attr-defined]
    statement = (
        task_update(staged).where(tasks.c.case_id.between(bindparam("lo"), bindparam("hi"))).add_cte(stored)
    )
    compiled = statement.compile(dialect=postgresql.psycopg.dialect())  # type: ignore[no-untyped-call]
    return str(compiled), {k: v for k, v in compiled.params.items() if k not in ("lo", "hi")}


def _writer(
    engine: Engine, chunks: Queue[tuple[bytes, int, int] | None], failures: list[BaseException]
) -> None:
    """One writer: its own pooled connection and staging table; stores and commits each chunk
    it takes until it takes None. After a failure (its own or another writer's) it only drains
    the queue, so that the scoring thread is never left waiting to hand over a chunk."""
    statement, fixed = _chunk_statement()
    copy_sql = f"COPY {_STAGING} ({', '.join(COLUMNS)}) FROM STDIN"
    pooled = engine.raw_connection()
    connection: Any = pooled.driver_connection
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{_STAGING}")
            cursor.execute(f"CREATE TEMPORARY TABLE {_STAGING} (LIKE case_score) ON COMMIT DELETE ROWS")
            connection.commit()
            while (chunk := chunks.get()) is not None:
                if failures:
                    continue
                payload, lo, hi = chunk
                with cursor.copy(copy_sql) as copy:
                    copy.write(payload)
                cursor.execute(statement, {**fixed, "lo": lo, "hi": hi})
                connection.commit()  # the chunk's tasks unlocked, the staging table emptied
    except BaseException as exc:  # noqa: BLE001 - handed to the scoring thread, which raises it
        failures.append(exc)
        while chunks.get() is not None:
            pass
    finally:
        try:
            connection.rollback()
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{_STAGING}")
            connection.commit()
        except Exception:  # noqa: BLE001 - a broken connection: the pool must not hand it out again
            pooled.invalidate()
        pooled.close()
