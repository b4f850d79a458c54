"""Writing results: ``files.jsonl`` (one record per file), ``summary.json`` and DFXML in the
shape Sleuth Kit's ``fiwalk -x`` writes, so DFXML tools read it."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import orjson

from triage import __version__

DFXML_NS = "http://www.forensicswiki.org/wiki/Category:Digital_Forensics_XML"
_TIME_TAGS = (
    ("modified", "mtime"),
    ("changed", "ctime"),
    ("accessed", "atime"),
    ("born", "crtime"),
)


def json_line(value: Any) -> bytes:
    """``value`` as one line of UTF-8 JSON, newline included.

    orjson is several times faster than ``json`` here (a scan writes every file's record);
    ``json`` takes what orjson refuses (a string with a lone surrogate), escaping it.
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:
        return (json.dumps(value, separators=(",", ":")) + "\n").encode()


class JsonlWriter:
    """Appends records as JSON lines (gzip-compressed when the name ends in .gz)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: gzip.GzipFile | io.BufferedWriter = (
            gzip.open(path, "wb") if path.suffix == ".gz" else path.open("wb")
        )

    def write(self, record: dict[str, Any]) -> None:
        self._fh.write(json_line(record))

    def close(self) -> None:
        self._fh.close()


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        for line in fh:
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:  # an escaped lone surrogate (see json_line)
                record = json.loads(line)
            yield record


def _element(tag: str, value: Any, indent: str, **attrs: Any) -> str:
    attributes = "".join(f" {k}={quoteattr(str(v))}" for k, v in attrs.items())
    return f"{indent}<{tag}{attributes}>{escape(str(value))}</{tag}>\n"


def write_dfxml(listing: Path, summary: dict[str, Any], target: Path) -> None:
    """Group the listing's records by partition into ``<volume>`` elements (one pass each)."""
    partitions = [p for p in summary["partitions"] if p["status"] == "ok"]
    image = summary["image"]
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8") as out:
        out.write("<?xml version='1.0' encoding='UTF-8'?>\n")
        out.write(f"<dfxml xmlns='{DFXML_NS}' xmlns:dc='http://purl.org/dc/elements/1.1/' version='1.0'>\n")
        out.write("  <metadata>\n    <dc:type>Disk Image</dc:type>\n  </metadata>\n")
        out.write("  <creator version='1.0'>\n")
        out.write(_element("program", "htcu-triage", "    "))
        out.write(_element("version", __version__, "    "))
        out.write("    <build_environment>\n")
        for name, version in summary["provenance"]["versions"].items():
            out.write(f"      <library name={quoteattr(name)} version={quoteattr(str(version))}/>\n")
        out.write("    </build_environment>\n")
        out.write("    <execution_environment>\n")
        out.write(_element("start_time", summary["provenance"]["started"], "      "))
        out.write("    </execution_environment>\n")
        out.write("  </creator>\n")
        out.write("  <source>\n")
        out.write(_element("image_filename", image["path"], "    "))
        out.write(_element("imagesize", image["media_size"], "    "))
        for algo, value in (image.get("computed_hashes") or {}).items():
            out.write(_element("hashdigest", value, "    ", type=algo))
        out.write("  </source>\n")
        object_id = 0
        for part in partitions:
            out.write(f"  <volume offset='{part['offset']}'>\n")
            out.write(_element("partition_offset", part["offset"], "    "))
            out.write(_element("ftype_str", part["filesystem"], "    "))
            if part.get("extra", {}).get("block_size"):
                out.write(_element("block_size", part["extra"]["block_size"], "    "))
            for record in read_jsonl(listing):
                if record["partition"] != part["index"]:
                    continue
                object_id += 1
                out.write(_fileobject(record, object_id))
            out.write("  </volume>\n")
        out.write("</dfxml>\n")


# A file's elements, each written as ``_element`` would write it; escaped where the value is
# text from the evidence (names, types, errors). Tens of thousands of files a scan, so no
# generic element builder per field.
_HASH_OPEN = {algo: f"      <hashdigest type={quoteattr(algo)}>" for algo in ("md5", "sha1", "sha256")}


def _fileobject(record: dict[str, Any], object_id: int) -> str:
    ind = "      "
    parts = [
        "    <fileobject>\n"
        f"{ind}<filename>{escape(record['path'].lstrip('/'))}</filename>\n"
        f"{ind}<partition>{escape(str(record['partition']))}</partition>\n"
        f"{ind}<id>{object_id}</id>\n"
        f"{ind}<name_type>r</name_type>\n"
        f"{ind}<filesize>{escape(str(record['size']))}</filesize>\n"
        f"{ind}<alloc>{1 if record['allocated'] else 0}</alloc>\n"
        f"{ind}<inode>{escape(str(record['inode']))}</inode>\n"
    ]
    times = record.get("times") or {}
    for key, tag in _TIME_TAGS:
        value = times.get(key)
        if value:
            parts.append(f"{ind}<{tag}>{escape(str(value))}</{tag}>\n")
    for algo, opening in _HASH_OPEN.items():
        digest = record.get(algo)
        if digest:
            parts.append(f"{opening}{escape(str(digest))}</hashdigest>\n")
    if record.get("mime"):
        parts.append(f"{ind}<libmagic>{escape(str(record['mime']))}</libmagic>\n")
    if record.get("error"):
        parts.append(f"{ind}<!-- error: {escape(record['error']).replace('--', '- -')} -->\n")
    parts.append("    </fileobject>\n")
    return "".join(parts)
