"""Hash-set readers for every format, and the indexed store."""

from __future__ import annotations

import codecs
import dataclasses
import json
import os
import random
import re
import sqlite3
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from triage import leftovers
from triage.analysis.hashsets import HashSetKind, HashSetStore, load_hashset, readers
from triage.analysis.hashsets import prefilter as prefilter_module
from triage.analysis.hashsets import store as store_module
from triage.analysis.hashsets.prefilter import DigestFilter, filter_path
from triage.analysis.hashsets.records import HashRecord
from triage.analysis.hashsets.store import ensure_filter
from triage.errors import HashSetError

MD5 = "9e107d9d372bb6826bd81d3542a419d6"
SHA1 = "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"
SHA256 = "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"


def _lookup(
    path: Path, tmp_path: Path, *digests: str, **kw: object
) -> tuple[object, tuple[str, bool] | None]:
    info = load_hashset(path, tmp_path / "cache", **kw)  # type: ignore[arg-type]
    store = HashSetStore(info.store, info.entries)  # as the scan opens it: with its filter
    try:
        return info, store.lookup(list(digests))
    finally:
        store.close()


def test_md5sum_style_lines(tmp_path: Path) -> None:
    f = tmp_path / "set.md5"
    f.write_text(f"{MD5}  some file.jpg\n{'a' * 32} *binary.bin\n\n# comment\n")
    info, found = _lookup(f, tmp_path, MD5)
    assert info.format == "plain" and info.entries == 2 and info.kind == HashSetKind.known_bad  # type: ignore[attr-defined]
    assert found == ("", True)


def test_one_hash_per_line_of_mixed_lengths(tmp_path: Path) -> None:
    f = tmp_path / "hashes.txt"
    f.write_text(f"{SHA1.upper()}\n{SHA256}\n")
    _, found = _lookup(f, tmp_path, MD5, SHA1)
    assert found is not None
    _, found = _lookup(f, tmp_path, SHA256)
    assert found is not None
    _, found = _lookup(f, tmp_path, MD5)
    assert found is None


def test_csv_with_a_header(tmp_path: Path) -> None:
    f = tmp_path / "set.csv"
    f.write_text(f"Name,MD5,SHA1,Category\nx.jpg,{MD5},{SHA1},seized-series-4\n")
    info, found = _lookup(f, tmp_path, SHA1)
    assert info.format == "csv" and found == ("seized-series-4", True)  # type: ignore[attr-defined]


def test_uk_caid_category_list(tmp_path: Path) -> None:
    f = tmp_path / "export.csv"
    f.write_text(f"MD5,Category\n{MD5},A\n{'b' * 32},Cat C\n{'c' * 32},Not Indecent\n")
    info, found = _lookup(f, tmp_path, MD5)
    assert info.format == "caid" and found == ("CAID A", True)  # type: ignore[attr-defined]
    _, found = _lookup(f, tmp_path, "c" * 32)
    assert found == ("CAID not indecent", False)


def test_caid_with_an_unknown_grade_names_the_line(tmp_path: Path) -> None:
    f = tmp_path / "caid_grades.csv"
    f.write_text(f"MD5,Grade\n{MD5},A\n{'b' * 32},Z\n")
    with pytest.raises(HashSetError, match="caid_grades.csv:3"):
        load_hashset(f, tmp_path / "cache")


@pytest.mark.parametrize("view", [False, True])
def test_nsrl_rds_v3_sqlite_file_table_or_distinct_hash_view(view: bool, tmp_path: Path) -> None:
    f = tmp_path / "RDS_minimal.db"
    conn = sqlite3.connect(f)
    conn.execute(
        "CREATE TABLE FILE (sha256 TEXT, sha1 TEXT, md5 TEXT, crc32 TEXT, file_name TEXT,"
        " file_size INTEGER, package_id INTEGER)"
    )
    if view:
        conn.execute("CREATE VIEW DISTINCT_HASH AS SELECT DISTINCT sha256, sha1, md5, crc32 FROM FILE")
    conn.execute(
        "INSERT INTO FILE VALUES (?,?,?,?,?,?,?)",
        (SHA256.upper(), SHA1.upper(), MD5.upper(), "0", "a.dll", 1, 1),
    )
    conn.commit()
    conn.close()
    info, found = _lookup(f, tmp_path, MD5)
    assert info.format == "nsrl" and info.kind == HashSetKind.known_good  # type: ignore[attr-defined]
    assert found == ("NSRL", False)


def _nsrl_with(tmp_path: Path, md5: str) -> Path:
    """An NSRL-shaped database whose second row's md5 is the SQL expression ``md5``, in a
    column of no declared type (so SQLite keeps a number or a BLOB as it was written)."""
    f = tmp_path / "RDS_damaged.db"
    conn = sqlite3.connect(f)
    conn.execute("CREATE TABLE FILE (sha256, sha1, md5)")
    conn.execute("INSERT INTO FILE VALUES (NULL, NULL, ?)", (MD5,))
    conn.execute(f"INSERT INTO FILE VALUES (NULL, NULL, {md5})")  # noqa: S608 - the test's own
    conn.commit()
    conn.close()
    return f


@pytest.mark.parametrize(
    ("md5", "shown"),
    [
        (f"x'{MD5}'", "'<16 bytes of binary data>'"),  # a raw digest: ended in a TypeError
        ("12345", "'12345'"),  # a number: ended in an AttributeError
        (f"CAST(x'{MD5[:8].encode().hex()}d6' AS TEXT)", r"'9e107d9d\\xd6'"),  # not UTF-8
        (f"x'{MD5.encode().hex()}'", None),  # hex text written as a BLOB: read
    ],
)
def test_an_nsrl_database_with_values_that_are_not_hex_text_names_the_row(
    md5: str, shown: str | None, tmp_path: Path
) -> None:
    # SQLite keeps any value in any column: a damaged or home-made set stopped the scan with a
    # Python traceback rather than the bad-hash-set error naming the place.
    f = _nsrl_with(tmp_path, md5)
    if shown is None:
        assert _lookup(f, tmp_path, MD5)[1] == ("NSRL", False)
        return
    with pytest.raises(HashSetError, match=re.escape(f"RDS_damaged.db:FILE row 2: {shown} is not an MD5")):
        load_hashset(f, tmp_path / "cache")


def test_an_nsrl_database_whose_schema_is_damaged_is_refused(tmp_path: Path) -> None:
    # SQLite's own error message then holds the damaged bytes, which Python could not decode:
    # a UnicodeDecodeError in place of the bad-hash-set error.
    f = tmp_path / "RDS_schema.db"
    conn = sqlite3.connect(f)
    conn.execute("CREATE TABLE FILE (sha256 TEXT, sha1 TEXT, md5 TEXT)")
    conn.commit()
    conn.close()
    f.write_bytes(f.read_bytes().replace(b"CREATE TABLE FILE", b"CREATE \xd6ABLE FILE"))
    with pytest.raises(
        HashSetError, match="RDS_schema.db: not a readable SQLite database: its schema is damaged"
    ):
        load_hashset(f, tmp_path / "cache")


def _sets_of_every_format(tmp_path: Path) -> dict[str, bytes]:
    """A small set in each format the readers take, by file name."""
    nsrl = tmp_path / "seed.db"
    conn = sqlite3.connect(nsrl)
    conn.execute("CREATE TABLE FILE (sha256 TEXT, sha1 TEXT, md5 TEXT, crc32 TEXT, file_name TEXT)")
    for i in range(20):
        conn.execute("INSERT INTO FILE VALUES (?,?,?,'0','a.dll')", (f"{i:064x}", f"{i:040x}", f"{i:032x}"))
    conn.commit()
    conn.close()
    vics = {"odata.metadata": "1.3.xml#Media", "value": [{"Media": [{"Category": "1", "MD5": MD5}]}]}
    return {
        "set.md5": f"{MD5}  a file.jpg\n{'a' * 32} *b.bin\n# comment\n".encode(),
        "hashes.txt": f"{SHA1.upper()}\n{SHA256}\n".encode(),
        "set.csv": f"Name,MD5,SHA1,Category\nx.jpg,{MD5},{SHA1},s-4\ny,{'b' * 32},{'c' * 40},z\n".encode(),
        "caid.csv": f"MD5,Category\n{MD5},A\n{'b' * 32},Cat C\n{'c' * 32},Not Indecent\n".encode(),
        "NSRLFile.txt": (
            '"SHA-1","MD5","CRC32","FileName","FileSize","ProductCode","OpSystemCode","SpecialCode"\r\n'
            f'"{SHA1}","{MD5}","7A0E4E7F","kernel32.dll",1114112,2754,"358",""\r\n'
        ).encode(),
        "known.hashdeep": (
            f"%%%% HASHDEEP-1.0\n%%%% size,md5,sha256,filename\n##\n5,{MD5},{'c' * 64},/a, b.jpg\n"
        ).encode(),
        "vics.json": json.dumps(vics).encode(),
        "RDS_minimal.db": nsrl.read_bytes(),
    }


def test_hash_sets_with_bytes_changed_load_or_give_one_clear_error(tmp_path: Path) -> None:
    # A guard kept from the search that found the NSRL faults above (3,000 damaged sets a run,
    # every format): whatever the damage, a set loads or is refused as a bad hash set naming
    # the file, never with another exception (which would end a scan in a traceback).
    for name, original in _sets_of_every_format(tmp_path).items():
        for seed in range(40):
            chance = random.Random(f"{name}-{seed}")
            data = bytearray(original)
            for _ in range(chance.choice([1, 2, 4, 16])):
                at = chance.randrange(len(data))
                if chance.random() < 0.6:
                    data[at] = chance.randrange(256)
                else:
                    data[at:at] = chance.choice(
                        [b"\x00", b"\r", b"\n", b'"', b",", b"\xff\xfe", b"{", b"\xc3"]
                    )
            damaged = tmp_path / f"{seed}-{name}"
            damaged.write_bytes(data)
            try:
                load_hashset(damaged, tmp_path / "cache")
            except HashSetError as exc:
                assert damaged.name in str(exc) and "\n" not in str(exc), exc


def test_sqlite_without_nsrl_tables_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "other.db"
    sqlite3.connect(f).execute("CREATE TABLE x (y)").connection.commit()
    with pytest.raises(HashSetError, match="NSRL"):
        load_hashset(f, tmp_path / "cache")


def test_tagged_lines_as_bsd_tools_and_sha256sum_tag_write_them(tmp_path: Path) -> None:
    # `md5` on macOS, `shasum --tag`, `sha256sum --tag`: "ALGO (name) = hex". They were refused
    # as not a hash set format.
    f = tmp_path / "tagged.txt"
    f.write_text(
        f"MD5 (photo (1).jpg) = {MD5}\nSHA1 (a = b.jpg) = {SHA1}\n\\SHA256 (odd\\nname) = {'c' * 64}\n"
    )
    info, found = _lookup(f, tmp_path, MD5)
    assert (info.format, info.entries, found) == ("plain", 3, ("", True))  # type: ignore[attr-defined]
    assert _lookup(f, tmp_path, SHA1)[1] == ("", True)
    bad = tmp_path / "bad-tagged.txt"
    bad.write_text(f"MD5 (a.jpg) = {MD5}\nMD5 (b.jpg) = {MD5[:-1]}\n")
    with pytest.raises(HashSetError, match=r"bad-tagged\.txt:2: .* is not an MD5"):
        load_hashset(bad, tmp_path / "cache")


def test_hashdeep_audit_files_are_read(tmp_path: Path) -> None:
    # hashdeep (and md5deep -c) write "%%%%" header lines, "##" comments and CSV rows whose
    # last field, the file name, may hold commas. They were refused as not a hash set format.
    f = tmp_path / "known.hashdeep"
    f.write_text(
        "%%%% HASHDEEP-1.0\n%%%% size,md5,sha256,filename\n## Invoked from: /cases\n"
        "## $ hashdeep -c md5,sha256 -r .\n##\n"
        f"5,{MD5},{'c' * 64},/cases/a, b.jpg\n8,{'d' * 32},{'e' * 64},/cases/c.jpg\n"
    )
    info, found = _lookup(f, tmp_path, MD5)
    assert (info.format, info.entries, found) == ("hashdeep", 4, ("", True))  # type: ignore[attr-defined]
    assert _lookup(f, tmp_path, "e" * 64)[1] == ("", True)
    short = tmp_path / "short.hashdeep"
    short.write_text(f"%%%% HASHDEEP-1.0\n%%%% size,md5,sha256,filename\n5,{MD5}\n")
    with pytest.raises(HashSetError, match=r"short\.hashdeep:3: 2 fields where the header names 4"):
        load_hashset(short, tmp_path / "cache")


def test_a_hash_set_whose_name_is_not_utf8_is_refused(tmp_path: Path) -> None:
    # It was read, and its name went into the results as a stand-in no JSON reader takes.
    f = tmp_path / os.fsdecode(b"set-\xff.md5")
    f.write_text(f"{MD5}  a.jpg\n")
    with pytest.raises(HashSetError, match=r"set-\\xff\.md5: the path is not UTF-8 text"):
        load_hashset(f, tmp_path / "cache")


def test_nsrl_rds_2_text_is_known_good(tmp_path: Path) -> None:
    # The legacy NSRL (RDS 2.x NSRLFile.txt) is a CSV with hash columns: it was read as a
    # known-bad CSV, so that every operating system file it lists would have been an alert.
    f = tmp_path / "NSRLFile.txt"
    f.write_text(
        '"SHA-1","MD5","CRC32","FileName","FileSize","ProductCode","OpSystemCode","SpecialCode"\r\n'
        f'"{SHA1.upper()}","{MD5.upper()}","7A0E4E7F","kernel32.dll",1114112,2754,"358",""\r\n'
    )
    info, found = _lookup(f, tmp_path, MD5)
    assert (info.format, info.kind, info.entries) == ("nsrl_text", HashSetKind.known_good, 2)  # type: ignore[attr-defined]
    assert found == ("NSRL", False)
    assert _lookup(f, tmp_path, SHA1)[1] == ("NSRL", False)


def test_vics_booleans_as_strings_and_nested_media(tmp_path: Path) -> None:
    f = tmp_path / "case.json"
    f.write_text(
        json.dumps(
            {
                "odata.metadata": "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml#Media",
                "value": [
                    {
                        "CaseNumber": "1",
                        "Media": [
                            {"Category": "1", "MD5": MD5.upper(), "IsPrecategorized": "true"},
                            {"Category": 0, "SHA1": SHA1.upper(), "VictimIdentified": "false"},
                        ],
                    }
                ],
            }
        )
    )
    info, found = _lookup(f, tmp_path, MD5)
    assert info.format == "vics" and found == ("VICS 1 child abuse material", True)  # type: ignore[attr-defined]
    _, found = _lookup(f, tmp_path, SHA1)
    assert found == ("VICS 0 non-pertinent", False)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be"])
def test_vics_from_windows_tools_with_a_byte_order_mark_is_read(encoding: str, tmp_path: Path) -> None:
    # PowerShell and .NET write UTF-8 with a byte order mark, PowerShell's Out-File UTF-16:
    # such a set was taken for VICS, then refused as malformed (or not taken for VICS at all).
    f = tmp_path / "export.json"
    body = json.dumps({"odata.metadata": "x", "value": [{"Category": 2, "MD5": MD5, "Comments": "Łódź"}]})
    f.write_bytes((codecs.BOM_UTF16_BE if encoding == "utf-16-be" else b"") + body.encode(encoding))
    info, found = _lookup(f, tmp_path, MD5)
    assert info.format == "vics" and info.entries == 1  # type: ignore[attr-defined]
    assert found == ("VICS 2 child exploitive (age difficult)", True)


def test_a_vics_set_is_read_one_record_at_a_time(tmp_path: Path) -> None:
    # National sets and case exports are gigabytes: read whole, a set took about five times
    # its size in memory (3 GB for a 640 MB file), enough to take down the server indexing it.
    f = tmp_path / "national.json"
    media = {"Category": 1, "VictimIdentified": "false", "PhotoDNA": "A" * 400, "Comments": "x" * 200}
    with f.open("w") as fh:
        fh.write('{"@odata.context": "http://github.com/ICMEC/ProjectVic/DataModels/2.0.xml", "value": [')
        fh.write(",".join(json.dumps({**media, "MediaID": n, "MD5": f"{n:032x}"}) for n in range(40_000)))
        fh.write("]}")
    reader = readers.sniff(f)
    tracemalloc.start()
    try:
        count = sum(1 for _ in reader.read(f))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 40_000
    assert peak < f.stat().st_size / 4, (peak, f.stat().st_size)


@pytest.mark.parametrize(
    "body,match",
    [
        ('{"value": [{"Category": 1, "MD5": "xyz"}]}', "Media #1 MD5"),
        ('{"value": [{"Category": "high", "MD5": "' + MD5 + '"}]}', "not a number"),
        ('{"value": [', "malformed VICS JSON"),
        ('{"value": [{"Category": 1, "MD5": "' + MD5 + '"}, {"Categ', "malformed VICS JSON"),
        ('{"odata.metadata": "x", "value": 5}', r"bad\.json: VICS JSON without a 'value' list"),
        ('{"odata.metadata": "x"}', "without a 'value' list"),
        ('{"value": [{"Category": 1, "MD5": "\xff"}]}', "malformed VICS JSON"),
    ],
)
def test_malformed_vics_is_refused_with_the_place(body: str, match: str, tmp_path: Path) -> None:
    f = tmp_path / "bad.json"
    f.write_bytes(body.encode("latin-1"))
    with pytest.raises(HashSetError, match=match):
        load_hashset(f, tmp_path / "cache")


def test_bad_line_names_its_number(tmp_path: Path) -> None:
    f = tmp_path / "list.txt"
    f.write_text(f"{MD5}\n{MD5[:-1]}\n")
    with pytest.raises(HashSetError, match="list.txt:2"):
        load_hashset(f, tmp_path / "cache")


def test_unknown_format_and_empty_sets_are_refused(tmp_path: Path) -> None:
    f = tmp_path / "notes.docx"
    f.write_bytes(b"PK\x03\x04 not a hash set")
    with pytest.raises(HashSetError, match="not a hash set format"):
        load_hashset(f, tmp_path / "cache")
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(HashSetError):
        load_hashset(empty, tmp_path / "cache")


def test_store_is_built_once_and_reused_by_content(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text(MD5 + "\n")
    first = load_hashset(f, tmp_path / "cache")
    mtime = Path(first.store).stat().st_mtime_ns
    again = load_hashset(f, tmp_path / "cache", name="renamed")
    assert again.store == first.store and Path(first.store).stat().st_mtime_ns == mtime
    assert again.source_sha256 == first.source_sha256 and again.name == "renamed"
    assert not list((tmp_path / "cache").glob("*.building"))


def test_a_failed_build_leaves_no_store_behind(tmp_path: Path) -> None:
    f = tmp_path / "half.txt"
    f.write_text(MD5 + "\n" + "zz\n")
    with pytest.raises(HashSetError):
        load_hashset(f, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


@pytest.mark.parametrize("fails", ["hashing", "indexing"])
def test_a_hash_set_that_fails_as_it_is_read_is_a_hash_set_error(
    fails: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An I/O error reading the set (a failing disk, a share gone) came out as an OSError, which
    # `triage scan` could not tell from one of its index folder: a traceback.
    f = tmp_path / "set.md5"
    f.write_text(f"{MD5}  a\n{'b' * 32}  b\n")

    def failing(*_args: object) -> object:
        raise OSError(5, "Input/output error")

    reader = readers.sniff(f)

    def fails_half_way(path: Path) -> Iterator[HashRecord]:
        yield next(reader.read(path))
        raise OSError(5, "Input/output error")

    if fails == "hashing":
        monkeypatch.setattr(store_module, "file_sha256", failing)
    else:
        monkeypatch.setattr(
            store_module, "sniff", lambda _path: dataclasses.replace(reader, read=fails_half_way)
        )
    with pytest.raises(HashSetError, match=r"set\.md5: cannot be read: Input/output error"):
        load_hashset(f, tmp_path / "cache")
    assert [p.name for p in (tmp_path / "cache").glob("*")] == []
    monkeypatch.undo()
    assert load_hashset(f, tmp_path / "cache").entries == 2


def _random_set(tmp_path: Path, count: int) -> tuple[Path, list[str]]:
    rng = random.Random(5)
    digests = [rng.randbytes(rng.choice((16, 20, 32))).hex() for _ in range(count)]
    source = tmp_path / "set.txt"
    source.write_text("\n".join(digests) + "\n")
    return source, digests


def test_the_filter_never_rules_out_a_digest_of_the_set_and_rules_out_most_others(tmp_path: Path) -> None:
    source, digests = _random_set(tmp_path, 20_000)
    info = load_hashset(source, tmp_path / "cache")
    prefilter = DigestFilter.open(info.store)
    assert prefilter is not None and prefilter.count == info.entries == len(digests)
    assert all(bytes.fromhex(d) in prefilter for d in digests)
    store = HashSetStore(info.store, info.entries)
    assert all(store.lookup([d]) == ("", True) for d in digests[::97])
    rng = random.Random(11)
    others = [rng.randbytes(16) for _ in range(20_000)]
    assert sum(d in prefilter for d in others) < 100  # about 1 in 400 expected
    assert store.lookup([d.hex() for d in others[:3]]) is None


def test_a_damaged_or_foreign_filter_is_not_trusted_and_is_rebuilt(tmp_path: Path) -> None:
    source, digests = _random_set(tmp_path, 1_000)
    info = load_hashset(source, tmp_path / "cache")
    path = filter_path(info.store)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    assert DigestFilter.open(info.store) is None
    # Without a filter every lookup queries the store, and nothing is missed.
    assert HashSetStore(info.store, info.entries).lookup([digests[0]]) == ("", True)
    load_hashset(source, tmp_path / "cache")
    assert path.read_bytes() == whole
    # A filter built from another number of digests is not used.
    assert HashSetStore(info.store, info.entries + 1)._filter is None
    assert HashSetStore(info.store, info.entries)._filter is not None


def test_the_number_of_entries_is_recorded_at_build_not_counted_at_every_open(tmp_path: Path) -> None:
    source, _ = _random_set(tmp_path, 500)
    info = load_hashset(source, tmp_path / "cache")
    conn = sqlite3.connect(info.store)
    conn.execute("DELETE FROM h WHERE digest IN (SELECT digest FROM h LIMIT 10)")
    conn.commit()
    assert HashSetStore(info.store).count() == 500  # the recorded figure: the rows were not counted
    conn.execute("DROP TABLE meta")  # as a store built before the figure was recorded
    conn.commit()
    conn.close()
    assert HashSetStore(info.store).count() == 490


def test_a_store_without_a_filter_gets_one_once(tmp_path: Path) -> None:
    # As a store indexed before filters existed, which the workers open by its recorded path.
    source, digests = _random_set(tmp_path, 300)
    info = load_hashset(source, tmp_path / "cache")
    path = filter_path(info.store)
    path.unlink()
    assert HashSetStore(info.store, info.entries)._filter is None
    assert ensure_filter(info.store, info.entries) is True
    built = path.stat().st_mtime_ns
    assert ensure_filter(info.store, info.entries) is False
    assert path.stat().st_mtime_ns == built  # a good filter is left as it is
    store = HashSetStore(info.store, info.entries)
    assert store._filter is not None and all(store.lookup([d]) is not None for d in digests)


def test_making_a_set_ready_tells_how_far_it_has_got(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An NSRL-size set takes minutes to index and filter; the commands show this progress.
    monkeypatch.setattr(store_module, "BATCH", 100)
    monkeypatch.setattr(prefilter_module, "CHUNK", 100)
    source, digests = _random_set(tmp_path, 350)
    source.write_text(source.read_text() + digests[0] + "\n")  # a duplicate: read, not stored
    told: list[tuple[str, int, int]] = []
    info = load_hashset(source, tmp_path / "cache", progress=lambda *call: told.append(call))
    assert info.entries == 350
    assert [c for c in told if c[0] == "indexing"] == [("indexing", n, 0) for n in (100, 200, 300, 351)]
    assert [c for c in told if c[0] == "filtering"] == [("filtering", n, 350) for n in (100, 200, 300, 350)]
    told.clear()
    load_hashset(source, tmp_path / "cache", progress=lambda *call: told.append(call))
    assert told == []  # ready already: nothing to do, nothing told


def test_a_set_written_to_while_it_is_indexed_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its store would be named by the hash of the version read first and hold another, and
    # a scan's provenance would name a set it did not use.
    f = tmp_path / "growing.md5"
    f.write_text(f"{MD5}  a\n")
    real = store_module._build

    def appended_meanwhile(*args: object, **kwargs: object) -> int:
        entries = real(*args, **kwargs)  # type: ignore[arg-type]
        with f.open("a") as fh:
            fh.write(f"{'b' * 32}  b\n")
        return entries

    monkeypatch.setattr(store_module, "_build", appended_meanwhile)
    with pytest.raises(HashSetError, match=r"growing\.md5: changed while it was being indexed"):
        load_hashset(f, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []
    monkeypatch.undo()
    assert load_hashset(f, tmp_path / "cache").entries == 2


def test_a_utf8_list_whose_first_block_ends_inside_a_character_is_read(tmp_path: Path) -> None:
    # md5sum output of files with non-ASCII names: the 64 KiB read to tell the format could
    # end in the middle of a character, and the whole list was refused as no known format.
    names = "".join(f"{n:032x}  фотография_{n}.jpg\n" for n in range(3000))
    for pad in range(64):  # a padding comment that puts the cut inside a character
        data = f"#{'x' * pad}\n{names}".encode()
        try:
            data[: 64 * 1024].decode()
        except UnicodeDecodeError:
            break
    else:
        pytest.fail("no padding cut a character")
    f = tmp_path / "names.md5"
    f.write_bytes(data)
    assert load_hashset(f, tmp_path / "cache").entries == 3000


def test_csv_bytes_that_are_not_utf8_past_the_first_block_do_not_stop_the_read(tmp_path: Path) -> None:
    f = tmp_path / "export.csv"
    rows = b"".join(b"%032x,f%d.jpg\n" % (n, n) for n in range(5000))
    f.write_bytes(b"md5,name\n" + rows + MD5.encode() + b",caf\xe9.jpg\n")  # Windows-1252 name
    info, found = _lookup(f, tmp_path, MD5)
    assert info.entries == 5001 and found == ("", True)  # type: ignore[attr-defined]


def test_a_csv_field_over_the_size_limit_is_refused_with_its_line(tmp_path: Path) -> None:
    f = tmp_path / "odd.csv"
    f.write_text(f'md5,comment\n{MD5},ok\n{"a" * 32},"{"x" * 200_000}"\n')
    with pytest.raises(HashSetError, match=r"odd\.csv:3: field larger than field limit"):
        load_hashset(f, tmp_path / "cache")


def test_utf16_lists_from_windows_tools_are_read(tmp_path: Path) -> None:
    # Excel's "Unicode text" and PowerShell's Out-File write UTF-16 with a byte order mark.
    plain = tmp_path / "list.txt"
    plain.write_text(f"{MD5}  photo.jpg\r\n{'b' * 32}  other.jpg\r\n", encoding="utf-16")
    info, found = _lookup(plain, tmp_path, MD5)
    assert info.format == "plain" and info.entries == 2 and found == ("", True)  # type: ignore[attr-defined]
    table = tmp_path / "export.txt"
    table.write_text(f"MD5\tCategory\r\n{MD5}\tA\r\n", encoding="utf-16-be")
    table.write_bytes(b"\xfe\xff" + table.read_bytes())
    info, found = _lookup(table, tmp_path / "other", MD5)
    assert info.format == "caid" and found == ("CAID A", True)  # type: ignore[attr-defined]


def test_indexing_sweeps_builds_a_killed_process_left_in_the_cache(tmp_path: Path) -> None:
    # `triage scan` killed while indexing a set left its half-built store (gigabytes at NSRL
    # size) in ~/.cache for good.
    cache = tmp_path / "cache"
    cache.mkdir()
    stale, fresh = cache / "tmpa.building", cache / "tmpb.building"
    for path in (stale, fresh):
        path.write_bytes(b"half")
    old = time.time() - leftovers.STALE_SECONDS - 60
    os.utime(stale, (old, old))
    f = tmp_path / "set.md5"
    f.write_text(f"{MD5}  a\n")
    load_hashset(f, cache)
    assert not stale.exists() and fresh.exists()  # one under way elsewhere is left alone
