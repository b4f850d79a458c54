"""The indexed store behind every hash set: one SQLite file per source file, keyed by the
source's SHA-256, with the raw digests as a ``WITHOUT ROWID`` primary key. Built once, then
opened read-only (immutable) by every worker; a lookup is one B-tree search per digest, after
the store's Bloom filter (``prefilter``) has ruled out the digests the set cannot hold."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from triage.analysis.hashsets.prefilter import DigestFilter, build_filter, filter_path
from triage.analysis.hashsets.readers import READERS_BY_NAME, Reader, sniff
from triage.analysis.hashsets.records import HashRecord, HashSetKind
from triage.errors import HashSetError
from triage.evidence.paths import not_usable, shown
from triage.leftovers import remove_stale

STORE_VERSION = 2  # 2: the number of entries kept in a ``meta`` table
BATCH = 50_000

Progress = Callable[[str, int, int], None]
"""progress(phase, done, total) while a set is made ready, which for one of NSRL size takes
minutes: "indexing" counts the hashes read (total 0: not known before the end), "filtering"
the digests put in the Bloom filter (of ``total``)."""


@dataclass(frozen=True)
class HashSetInfo:
    name: str
    kind: HashSetKind
    format: str
    source: str
    source_sha256: str
    entries: int
    store: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def file_sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _batches(records: Iterable[HashRecord]) -> Iterator[list[tuple[bytes, str, int]]]:
    batch: list[tuple[bytes, str, int]] = []
    for record in records:
        batch.append((record.digest, record.category, int(record.alert)))
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


@contextmanager
def _reading(source: Path) -> Iterator[None]:
    """A failure to read the hash set itself (an I/O error, a file shortened as it was read) as
    a ``HashSetError``; an ``OSError`` from ``load_hashset`` is then the index's folder's."""
    try:
        yield
    except OSError as exc:
        raise HashSetError(f"{shown(source)}: cannot be read: {exc.strerror or exc}") from None


def _build(reader: Reader, source: Path, target: Path, progress: Callable[[int], None]) -> int:
    """Write the store to a temporary file and move it into place only when complete."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, suffix=".building")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        conn = sqlite3.connect(tmp)
        conn.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA page_size=4096;"
            "CREATE TABLE h (digest BLOB PRIMARY KEY, category TEXT NOT NULL, alert INTEGER NOT NULL)"
            " WITHOUT ROWID;"
        )
        read = 0
        with _reading(source):
            for batch in _batches(reader.read(source)):
                # The first record of a digest wins; duplicates in a set are common.
                conn.executemany("INSERT OR IGNORE INTO h VALUES (?, ?, ?)", batch)
                read += len(batch)
                progress(read)
        count = int(conn.execute("SELECT count(*) FROM h").fetchone()[0])
        # Kept so that opening the store never counts it again: counting reads the whole store
        # (at 20M entries 0.5 s from the page cache, 21 s from disk here), where a scan's
        # lookups touch a few pages.
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('entries', ?)", (count,))
        conn.commit()
        conn.close()
        if count == 0:
            raise HashSetError(f"{source.name}: no hashes found")
        tmp.replace(target)
        return count
    except sqlite3.Error as exc:
        raise HashSetError(f"{source.name}: cannot build the index: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def load_hashset(
    source: Path,
    cache_dir: Path,
    kind: HashSetKind | None = None,
    fmt: str | None = None,
    name: str | None = None,
    progress: Progress | None = None,
    known_sha256: str | None = None,
) -> HashSetInfo:
    """Validate ``source``, build (or reuse) its indexed store, and describe it.

    ``known_sha256``: the source's SHA-256 when the caller has it already and nothing else
    writes the file (the registry's private copy, hashed as it was written); the file is then
    not read again to hash it, nor checked for changes after indexing."""
    told = progress or (lambda _phase, _done, _total: None)
    if (problem := not_usable(source)) is not None:
        raise HashSetError(f"{shown(source)}: {problem}")
    reader = READERS_BY_NAME[fmt] if fmt else sniff(source)
    remove_stale(cache_dir.glob("*.building"))  # a build a killed process left
    with _reading(source):
        sha = known_sha256 or file_sha256(source)
    store = cache_dir / f"{sha}.v{STORE_VERSION}.{reader.name}.sqlite"
    if store.exists():
        entries = HashSetStore(store).count()
    else:
        entries = _build(reader, source, store, lambda done: told("indexing", done, 0))
        with _reading(source):
            changed = known_sha256 is None and file_sha256(source) != sha
        if changed:  # written to while it was read: a mix of two versions
            discard_store(store)
            raise HashSetError(
                f"{shown(source)}: changed while it was being indexed; index it again once complete"
            )
    ensure_filter(store, entries, lambda done: told("filtering", done, entries))
    return HashSetInfo(
        name=name or source.name,
        kind=kind or reader.default_kind,
        format=reader.name,
        source=str(source),
        source_sha256=sha,
        entries=entries,
        store=str(store),
    )


def discard_store(store: Path | str) -> None:
    """Remove a store and its filter."""
    Path(store).unlink(missing_ok=True)
    filter_path(store).unlink(missing_ok=True)


def ensure_filter(store: Path | str, entries: int, progress: Callable[[int], None] | None = None) -> bool:
    """Build the store's Bloom filter unless one for ``entries`` digests is there already (a
    store indexed before filters existed gets one the first time it is used). True if built."""
    found = DigestFilter.open(store)
    if found is not None and found.count == entries:
        return False
    build_filter(store, entries, progress)
    return True


class HashSetStore:
    """Read-only lookups in a built store (safe to open in many processes at once).

    Given the store's number of entries (``HashSetInfo.entries``), its filter is used when it
    was built from exactly that many; without it, or without a filter, every lookup queries.
    """

    def __init__(self, path: Path | str, entries: int | None = None) -> None:
        self._conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
        found = DigestFilter.open(path) if entries is not None else None
        self._filter = found if found is not None and found.count == entries else None

    def lookup(self, digests: Iterable[str]) -> tuple[str, bool] | None:
        """The (category, alert) of the first digest found, or None."""
        raw = [bytes.fromhex(d) for d in digests if d]
        if self._filter is not None:
            raw = [digest for digest in raw if digest in self._filter]
        if not raw:
            return None
        marks = ",".join("?" * len(raw))
        row = self._conn.execute(
            f"SELECT category, alert FROM h WHERE digest IN ({marks}) LIMIT 1",  # noqa: S608 - only ?s
            raw,
        ).fetchone()
        return (str(row[0]), bool(row[1])) if row else None

    def count(self) -> int:
        """The number of digests, as recorded when the store was built (counted in a store
        built before that was recorded)."""
        try:
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'entries'").fetchone()
        except sqlite3.OperationalError:  # no meta table: a version 1 store
            row = self._conn.execute("SELECT count(*) FROM h").fetchone()
        return int(row[0])

    def close(self) -> None:
        self._conn.close()
