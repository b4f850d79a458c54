"""DFXML from a listing: well-formed whatever the evidence's names and errors hold."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from triage.evidence.names import name_text
from triage.scan.outputs import DFXML_NS, JsonlWriter, read_jsonl, write_dfxml

NS = {"d": DFXML_NS}


def _summary() -> dict[str, Any]:
    return {
        "partitions": [{"index": 0, "offset": 0, "status": "ok", "filesystem": "ext4", "extra": {}}],
        "image": {"path": "/evidence/x.raw", "media_size": 1024, "computed_hashes": {"md5": "00"}},
        "provenance": {"versions": {"htcu-triage": "0"}, "started": "2026-11-23T00:00:00Z"},
    }


def test_names_and_errors_from_the_evidence_are_escaped(tmp_path: Path) -> None:
    hostile = "/dir <&> \"quoted\" 'single'/--ü--.txt"
    listing = tmp_path / "files.jsonl"
    writer = JsonlWriter(listing)
    writer.write(
        {
            "partition": 0,
            "path": hostile,
            "inode": 12,
            "size": 3,
            "allocated": False,
            "times": {"modified": "2020-01-02T03:04:05Z", "born": None},
            "md5": "a" * 32,
            "sha1": None,
            "sha256": "b" * 64,
            "mime": "text/<plain>&",
            "error": "read failed: -- short read <at> 0 & on --",
        }
    )
    writer.close()
    target = tmp_path / "out.xml"
    write_dfxml(listing, _summary(), target)

    root = ET.parse(target).getroot()  # raises if not well-formed
    (fileobject,) = root.findall("d:volume/d:fileobject", NS)
    assert fileobject.findtext("d:filename", namespaces=NS) == hostile.lstrip("/")
    assert fileobject.findtext("d:alloc", namespaces=NS) == "0"
    assert fileobject.findtext("d:mtime", namespaces=NS) == "2020-01-02T03:04:05Z"
    assert fileobject.find("d:crtime", NS) is None  # no time, no element
    assert fileobject.findtext("d:libmagic", namespaces=NS) == "text/<plain>&"
    digests = {h.get("type"): h.text for h in fileobject.findall("d:hashdigest", NS)}
    assert digests == {"md5": "a" * 32, "sha256": "b" * 64}


def test_any_field_that_holds_what_xml_escapes_is_escaped(tmp_path: Path) -> None:
    # The scan writes numbers, times and hex digests there, which need no escaping; a listing
    # edited by hand, or a future field, may not: the document must stay well-formed.
    odd = "1 <&> 2"
    listing = tmp_path / "files.jsonl"
    writer = JsonlWriter(listing)
    record = {"partition": 0, "path": "/f", "inode": odd, "size": odd, "allocated": True}
    writer.write({**record, "times": {"modified": odd}, "md5": odd, "sha1": None, "sha256": None})
    writer.close()
    target = tmp_path / "out.xml"
    write_dfxml(listing, _summary(), target)
    (fileobject,) = ET.parse(target).getroot().findall("d:volume/d:fileobject", NS)
    texts = [
        fileobject.findtext(f"d:{tag}", namespaces=NS) for tag in ("inode", "filesize", "mtime", "hashdigest")
    ]
    assert texts == [odd] * 4


def test_every_record_is_written_even_one_orjson_refuses(tmp_path: Path) -> None:
    # A lone surrogate is not UTF-8: orjson refuses it, the writer falls back to escaping it.
    records = [{"path": "/a/ü.txt", "size": 1}, {"path": "/b/\udcff.bin", "size": 2}]
    for name in ("files.jsonl", "files.jsonl.gz"):
        writer = JsonlWriter(tmp_path / name)
        for record in records:
            writer.write(record)
        writer.close()
        assert list(read_jsonl(tmp_path / name)) == records


def test_text_that_xml_cannot_hold_is_written_as_bytes_in_hex(tmp_path: Path) -> None:
    # An error message or an image path with a control character, U+FFFE or a lone surrogate
    # (an image path that is not UTF-8) made the whole document unreadable.
    listing = tmp_path / "files.jsonl"
    writer = JsonlWriter(listing)
    writer.write(
        {
            "partition": 0,
            "path": "/tab\there.txt",
            "inode": 1,
            "size": 0,
            "allocated": True,
            "error": "read failed at \x01\x1b\ufffe",
        }
    )
    writer.close()
    summary = _summary()
    summary["image"]["path"] = "/evidence/caf\udce9.raw"
    target = tmp_path / "out.xml"
    write_dfxml(listing, summary, target)
    root = ET.parse(target).getroot()  # raises if not well-formed
    assert root.findtext("d:source/d:image_filename", namespaces=NS) == "/evidence/caf\\xE9.raw"
    assert "read failed at \\x01\\x1B\\xEF\\xBF\\xBE" in target.read_text()
    assert root.findtext("d:volume/d:fileobject/d:filename", namespaces=NS) == "tab\there.txt"


def test_names_from_the_evidence_are_escaped_as_fiwalk_escapes_them() -> None:
    assert name_text(b"plain-name.txt") == "plain-name.txt"
    assert name_text("фото.jpg".encode()) == "фото.jpg"
    assert name_text(b"caf\xe9") == "caf\\xE9"
    assert name_text(b"a\\b\x00\x7f") == "a\\x5Cb\\x00\x7f"  # DEL is an XML character: kept
    assert name_text(b"\xef\xbf\xbf\xed\xa0\x80") == "\\xEF\\xBF\\xBF\\xED\\xA0\\x80"
    assert name_text("already\ttext") == "already\\x09text"
