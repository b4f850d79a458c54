"""One reader per hash-set format, registered in ``READERS`` in the order they are sniffed.

Formats: NIST NSRL RDS v3 (SQLite, ``FILE`` table or ``DISTINCT_HASH`` view), Project VIC
VICS JSON 1.3/2.0, UK CAID category lists (CSV), CSV with a header, and plain text
(md5sum/sha1sum/sha256sum lines, or one hash per line).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import ijson

from triage.analysis.hashsets.records import HEX, LENGTHS, HashRecord, HashSetKind, parse_digest
from triage.errors import HashSetError

SQLITE_MAGIC = b"SQLite format 3\x00"
VICS_CATEGORIES = {
    0: "non-pertinent",
    1: "child abuse material",
    2: "child exploitive (age difficult)",
    3: "CGI / animation",
    4: "comparison images",
}
CAID_GRADES = {"A": "CAID A", "B": "CAID B", "C": "CAID C"}
CAID_NOT_INDECENT = {"0", "N", "NI", "NON-INDECENT", "NOT INDECENT", "NONINDECENT", "D"}
HASH_COLUMNS = {
    "md5",
    "sha1",
    "sha-1",
    "sha256",
    "sha-256",
    "hash",
    "hashvalue",
    "hash_value",
    "digest",
}
CATEGORY_COLUMNS = {"category", "cat", "grade", "classification", "caid_category", "caid"}


@dataclass(frozen=True)
class Reader:
    name: str
    default_kind: HashSetKind
    sniff: Callable[[Path, bytes], bool]
    read: Callable[[Path], Iterator[HashRecord]]


# --- NSRL RDS v3 (SQLite) -----------------------------------------------------------------


def _sniff_nsrl(path: Path, head: bytes) -> bool:
    return head.startswith(SQLITE_MAGIC)


def _sql_text(raw: bytes) -> str:
    """SQLite text as str whatever its bytes: a damaged or foreign database may hold text that
    is not UTF-8, which would otherwise stop the read with a decoding error."""
    return raw.decode("utf-8", "backslashreplace")


def _sqlite_fault(exc: Exception) -> str:
    """SQLite's words for a fault. A damaged schema can put bytes in them that are not UTF-8,
    and Python then raises its decoding error in place of SQLite's."""
    return "its schema is damaged" if isinstance(exc, UnicodeDecodeError) else str(exc)


def _blob_text(value: bytes) -> str:
    """A BLOB as the text it may hold (hex written as bytes), or as what it is, for the error."""
    return value.decode("ascii") if value.isascii() else f"<{len(value)} bytes of binary data>"


def _read_nsrl(path: Path) -> Iterator[HashRecord]:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error as exc:
        raise HashSetError(f"{path.name}: not a readable SQLite database: {exc}") from exc
    conn.text_factory = _sql_text
    try:
        names = {
            r[0].upper()
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table','view')")
        }
    except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
        conn.close()
        raise HashSetError(f"{path.name}: not a readable SQLite database: {_sqlite_fault(exc)}") from exc
    source = "DISTINCT_HASH" if "DISTINCT_HASH" in names else "FILE" if "FILE" in names else None
    if source is None:
        conn.close()
        raise HashSetError(f"{path.name}: SQLite file without an NSRL FILE table or DISTINCT_HASH view")
    try:
        cursor = conn.execute(f"SELECT sha256, sha1, md5 FROM {source}")  # noqa: S608 - fixed names
        for number, row in enumerate(cursor, 1):
            for value in row:
                if value:
                    # SQLite keeps whatever a value was written as: hex text in an NSRL set, but
                    # a number or a BLOB in a damaged or home-made one, refused by its row.
                    text = _blob_text(value) if isinstance(value, bytes) else str(value)
                    where = f"{path.name}:{source} row {number}"
                    yield HashRecord(parse_digest(text, where), "NSRL", alert=False)
    except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
        raise HashSetError(f"{path.name}: NSRL query failed: {_sqlite_fault(exc)}") from exc
    finally:
        conn.close()


# --- Project VIC VICS JSON ----------------------------------------------------------------


def _sniff_vics(path: Path, head: bytes) -> bool:
    text = _text(head).lstrip(" \t\r\n")
    return text.startswith("{") and ("odata" in text or '"value"' in text or '"Media"' in text)


class _AsUtf8:
    """A text stream read as UTF-8 bytes, for ijson (which reads bytes) over UTF-16 JSON."""

    def __init__(self, text: TextIO) -> None:
        self._text = text

    def read(self, size: int = -1) -> bytes:
        return self._text.read(size).encode("utf-8")


@contextmanager
def _json_bytes(path: Path) -> Iterator[BinaryIO | _AsUtf8]:
    """The file's JSON as UTF-8 bytes. Windows tools write a byte order mark (UTF-8 from
    PowerShell or .NET, UTF-16 from PowerShell's ``Out-File``), which ijson does not expect."""
    with path.open("rb") as fh:
        head = fh.read(3)
        if _encoding(head) == "utf-16":
            fh.seek(0)
            with io.TextIOWrapper(fh, encoding="utf-16", errors="replace") as text:
                yield _AsUtf8(text)
            return
        fh.seek(len(codecs.BOM_UTF8) if head == codecs.BOM_UTF8 else 0)
        yield fh


def _vics_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


FLAT, NESTED = "value.item", "value.item.Media.item"  # where Media records are in the document


def _vics_shape(path: Path) -> str:
    """Whether the Media records are the ``value`` list's items or, in a case export, nested
    under ``value[].Media[]``: read from the first item, without reading on."""
    with _json_bytes(path) as fh:
        for prefix, event, _value in ijson.parse(fh):
            if prefix == "value" and event not in ("start_array", "end_array"):
                break  # "value" is there but is no list
            if (prefix, event) == ("value.item.Media", "start_array"):
                return NESTED
            if (prefix, event) in (("value.item", "end_map"), ("value", "end_array")):
                return FLAT
    raise HashSetError(f"{path.name}: VICS JSON without a 'value' list")


def _vics_media(path: Path) -> Iterator[dict[str, Any]]:
    """The Media records, one at a time: a national set or a case export is gigabytes of JSON,
    which read whole took about five times its size in memory. A file is taken in the shape of
    its first item (an item of a flat list that holds a Media list is read whole)."""
    shape = _vics_shape(path)
    with _json_bytes(path) as fh:
        for item in ijson.items(fh, shape, use_float=True):
            if not isinstance(item, dict):
                continue
            nested = item.get("Media") if shape == FLAT else None
            if isinstance(nested, list):
                yield from (m for m in nested if isinstance(m, dict))
            else:
                yield item


def _json_fault(exc: ijson.JSONError) -> str:
    """The parser's words for a fault, on one line: yajl follows them with the text around the
    fault (the evidence's bytes, control characters and all) and a pointer on further lines,
    and sometimes gives them as the repr of bytes."""
    words = str(exc)
    if words[:2] in ("b'", 'b"'):
        words = words[2:]
    return words.split("\\n", 1)[0].split("\n", 1)[0].strip() or type(exc).__name__


def _read_vics(path: Path) -> Iterator[HashRecord]:
    try:
        yield from _vics_records(path)
    except ijson.JSONError as exc:
        raise HashSetError(f"{path.name}: malformed VICS JSON: {_json_fault(exc)}") from exc


def _vics_records(path: Path) -> Iterator[HashRecord]:
    for n, media in enumerate(_vics_media(path), 1):
        raw_category = media.get("Category")
        try:
            category = int(raw_category) if raw_category not in (None, "") else None
        except (TypeError, ValueError):
            raise HashSetError(
                f"{path.name}: Media #{n}: Category {raw_category!r} is not a number"
            ) from None
        label = (
            f"VICS {category} {VICS_CATEGORIES.get(category, 'unknown')}" if category is not None else "VICS"
        )
        alert = category != 0
        if _vics_bool(media.get("IsPrecategorized", False)) and category is None:
            label = "VICS precategorized"
        found = False
        for key in ("MD5", "SHA1", "SHA256"):
            value = media.get(key)
            if value:
                found = True
                yield HashRecord(parse_digest(str(value), f"{path.name}: Media #{n} {key}"), label, alert)
        if not found:
            continue  # a record with only PhotoDNA has nothing for us to match


# --- CSV (generic and UK CAID) ------------------------------------------------------------


def _encoding(head: bytes) -> str:
    """UTF-16 where the file starts with its byte order mark (Windows tools write it: "Unicode
    text" from Excel, PowerShell's ``Out-File``), else UTF-8 (with or without its mark)."""
    return "utf-16" if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "utf-8-sig"


def _text(head: bytes) -> str:
    """The first bytes of a file as text: the last character may be cut in two by the end of
    the read, and a name column may be in a Windows code page, so what does not decode is
    replaced (a hash or a header never has any)."""
    return head.decode(_encoding(head), "replace")


def _open_text(path: Path, **kwargs: Any) -> TextIO:
    with path.open("rb") as fh:
        head = fh.read(2)
    return path.open("r", encoding=_encoding(head), errors="replace", **kwargs)


def _csv_header(head: bytes) -> list[str] | None:
    try:
        first = _text(head).splitlines()[0]
    except IndexError:
        return None
    if "," not in first and ";" not in first and "\t" not in first:
        return None
    cells = next(csv.reader([first], dialect=_dialect(first)))
    return [c.strip().lower() for c in cells]


def _dialect(line: str) -> type[csv.Dialect]:
    try:
        return csv.Sniffer().sniff(line, delimiters=",;\t")
    except csv.Error:
        return csv.excel


def _sniff_csv(path: Path, head: bytes) -> bool:
    header = _csv_header(head)
    return bool(header) and any(c in HASH_COLUMNS for c in header or [])


def _caid_grade(value: str) -> tuple[str, bool] | None:
    v = value.strip().upper().removeprefix("CATEGORY").removeprefix("CAT").strip(" :-_")
    if v in CAID_GRADES:
        return CAID_GRADES[v], True
    if v in {"1", "2", "3"}:
        return CAID_GRADES["ABC"[int(v) - 1]], True
    if v in CAID_NOT_INDECENT:
        return "CAID not indecent", False
    return None


def _sniff_caid(path: Path, head: bytes) -> bool:
    header = _csv_header(head)
    if not header or not any(c in HASH_COLUMNS for c in header):
        return False
    if "caid" in path.name.lower():
        return True
    category = next((i for i, c in enumerate(header) if c in CATEGORY_COLUMNS), None)
    if category is None:
        return False
    lines = _text(head).splitlines()[1:20]
    rows = list(csv.reader(lines, dialect=_dialect(lines[0] if lines else ",")))
    values = [r[category] for r in rows if len(r) > category and r[category].strip()]
    # Letter grades (A/B/C, "Cat A") mark a CAID list; plain numbers could be anything.
    return (
        bool(values)
        and all(_caid_grade(v) is not None for v in values)
        and any(not v.strip().isdigit() for v in values)
    )


def _read_csv_rows(path: Path, categorise: Callable[[str, int], tuple[str, bool]]) -> Iterator[HashRecord]:
    # Bytes that are not UTF-8 (a name column in a Windows code page) are replaced, as in
    # plain lists: hashes and categories are ASCII, and a bad one is refused with its line.
    with _open_text(path, newline="") as fh:
        first = fh.readline()
        fh.seek(0)
        reader = csv.reader(fh, dialect=_dialect(first))
        header = [c.strip().lower() for c in next(reader)]
        hash_cols = [i for i, c in enumerate(header) if c in HASH_COLUMNS]
        cat_col = next((i for i, c in enumerate(header) if c in CATEGORY_COLUMNS), None)
        if not hash_cols:
            raise HashSetError(f"{path.name}: no hash column in the CSV header {header}")
        try:
            for line_no, row in enumerate(reader, 2):
                if not row or all(not c.strip() for c in row):
                    continue
                raw_category = row[cat_col] if cat_col is not None and cat_col < len(row) else ""
                label, alert = categorise(raw_category, line_no)
                for i in hash_cols:
                    if i < len(row) and row[i].strip():
                        yield HashRecord(parse_digest(row[i], f"{path.name}:{line_no}"), label, alert)
        except csv.Error as exc:  # a field over the csv module's size limit, say
            raise HashSetError(f"{path.name}:{reader.line_num}: {exc}") from exc


def _read_csv(path: Path) -> Iterator[HashRecord]:
    return _read_csv_rows(path, lambda raw, _n: (raw.strip(), True))


# NSRL RDS 2.x ("legacy") NSRLFile.txt: a CSV of every file of known software, known-good. Its
# hash columns would otherwise make it a known-bad CSV: every operating system file an alert.
NSRL_TEXT_COLUMNS = {"sha-1", "md5", "crc32", "filename", "productcode", "opsystemcode"}


def _sniff_nsrl_text(path: Path, head: bytes) -> bool:
    return NSRL_TEXT_COLUMNS <= set(_csv_header(head) or [])


def _read_nsrl_text(path: Path) -> Iterator[HashRecord]:
    return _read_csv_rows(path, lambda _raw, _n: ("NSRL", False))


def _read_caid(path: Path) -> Iterator[HashRecord]:
    def categorise(raw: str, line_no: int) -> tuple[str, bool]:
        grade = _caid_grade(raw)
        if grade is None:
            raise HashSetError(
                f"{path.name}:{line_no}: {raw!r} is not a CAID category (A, B, C or not indecent)"
            )
        return grade

    return _read_csv_rows(path, categorise)


# --- plain text ---------------------------------------------------------------------------


# BSD-style lines, as `md5`, `shasum --tag` and `sha256sum --tag` write them:
# "SHA256 (name) = hex". The name may hold anything, brackets included: the digest is last.
_TAGGED = re.compile(r"^\\?(?:MD5|SHA-?1|SHA-?256) ?\(.*\) ?= ?([0-9A-Fa-f]+)$")


def _plain_digest(text: str) -> str:
    """The digest a line of a plain list gives: its first word, or a tagged line's last."""
    tagged = _TAGGED.match(text)
    if tagged:
        return tagged[1]
    return text.split(maxsplit=1)[0].lstrip("\\")  # md5sum escapes odd names with '\'


def _sniff_plain(path: Path, head: bytes) -> bool:
    for line in _text(head).splitlines()[:50]:
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        token = _plain_digest(text)
        return bool(HEX.match(token)) and len(token) in LENGTHS
    return False


def _read_plain(path: Path) -> Iterator[HashRecord]:
    with _open_text(path) as fh:
        for line_no, line in enumerate(fh, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            yield HashRecord(parse_digest(_plain_digest(text), f"{path.name}:{line_no}"), "")


# --- hashdeep / md5deep -c ----------------------------------------------------------------

HASHDEEP_MARK = "%%%% HASHDEEP-1.0"
HASHDEEP_DIGESTS = {"md5", "sha1", "sha256"}  # it may also write tiger and whirlpool: not read


def _sniff_hashdeep(path: Path, head: bytes) -> bool:
    return _text(head).lstrip().startswith(HASHDEEP_MARK)


def _read_hashdeep(path: Path) -> Iterator[HashRecord]:
    """hashdeep's audit files: a "%%%% size,md5,...,filename" line names the columns, "##"
    lines are comments, and the file name (last) may hold commas."""
    columns: list[str] = []
    with _open_text(path) as fh:
        for line_no, line in enumerate(fh, 1):
            text = line.rstrip("\r\n")
            if text.startswith("%%%%"):
                if not text.startswith(HASHDEEP_MARK):
                    columns = [c.strip().lower() for c in text[4:].split(",")]
                continue
            if not text.strip() or text.startswith("##"):
                continue
            if not any(c in HASHDEEP_DIGESTS for c in columns):
                raise HashSetError(
                    f"{path.name}:{line_no}: no '%%%% size,md5,...' line names an MD5, SHA-1 or "
                    "SHA-256 column"
                )
            fields = text.split(",", len(columns) - 1)
            if len(fields) < len(columns):
                raise HashSetError(
                    f"{path.name}:{line_no}: {len(fields)} fields where the header names {len(columns)}"
                )
            for name, value in zip(columns, fields, strict=True):
                if name in HASHDEEP_DIGESTS:
                    yield HashRecord(parse_digest(value, f"{path.name}:{line_no}"), "")


READERS: list[Reader] = [
    Reader("nsrl", HashSetKind.known_good, _sniff_nsrl, _read_nsrl),
    Reader("vics", HashSetKind.known_bad, _sniff_vics, _read_vics),
    Reader("nsrl_text", HashSetKind.known_good, _sniff_nsrl_text, _read_nsrl_text),
    Reader("caid", HashSetKind.known_bad, _sniff_caid, _read_caid),
    Reader("csv", HashSetKind.known_bad, _sniff_csv, _read_csv),
    Reader("hashdeep", HashSetKind.known_bad, _sniff_hashdeep, _read_hashdeep),
    Reader("plain", HashSetKind.known_bad, _sniff_plain, _read_plain),
]
READERS_BY_NAME = {r.name: r for r in READERS}


def sniff(path: Path) -> Reader:
    """The reader for ``path``, by content (a CAID list is a CSV whose categories are A/B/C)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(64 * 1024)
    except OSError as exc:
        raise HashSetError(f"{path}: cannot be read: {exc.strerror}") from exc
    for reader in READERS:
        if reader.sniff(path, head):
            return reader
    raise HashSetError(
        f"{path.name}: not a hash set format we read (NSRL SQLite or NSRLFile.txt, VICS JSON, CAID "
        "CSV, CSV with a hash column, hashdeep, md5sum/sha1sum/sha256sum (or --tag) or one hash per line)"
    )
