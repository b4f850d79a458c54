"""Writing results: ``files.jsonl`` (one record per file), ``summary.json`` and DFXML in the
shape Sleuth Kit's ``fiwalk -x`` writes, so DFXML tools read it."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape, quoteattr

import orjson

from triage import __version__
from triage.evidence.names import xml_safe

DFXML_NS = "http://www.forensicswiki.org/wiki/Category:Digital_Forensics_XML"
_TIME_TAGS = (
    ("modified", "mtime"),
    ("changed", "ctime"),
    ("accessed", "atime"),
    ("born", "crtime"),
)


# An open file descriptor by name: /dev/stdout, /dev/fd/1, /proc/self/fd/1, ...
_DESCRIPTOR = re.compile(r"/dev/(stdin|stdout|stderr|fd/\d+)|/proc/[^/]+/fd/\d+")


def written_in_place(path: Path) -> bool:
    """Whether ``path`` is a device or a pipe (``/dev/null``), or names an open file descriptor
    (``/dev/stdout``, directly or through links), rather than a file of its own: results go
    straight to it, appended, are never staged or assembled beside it (``/dev`` is root's
    alone), and it is never replaced or removed, not even when a scan fails and its partial
    results are. Run as root, that removed the workstation's ``/dev/null``; and with standard
    output sent to a file, ``/dev/stdout`` (a link to it) was replaced by a file of the DFXML."""
    try:
        if path.exists() and not path.is_file():
            return True
        return _names_a_descriptor(path)
    except (OSError, ValueError):
        return False


def _names_a_descriptor(path: Path) -> bool:
    """Whether ``path``, or a link on the way from it to a file, is an open file descriptor."""
    here = Path(os.path.abspath(path))
    for _ in range(40):  # the system's own limit on links followed
        if _DESCRIPTOR.fullmatch(str(here)):
            return True
        if not here.is_symlink():
            return False
        here = Path(os.path.normpath(here.parent / os.readlink(here)))
    return False


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
        # zlib's usual level 6, not gzip's 9: 0.30 against 0.51 s of the parent's CPU for the
        # bench's 20,000 records, for a listing 2% larger.
        self._fh: gzip.GzipFile | io.BufferedWriter = (
            gzip.open(path, "wb", compresslevel=6) if path.suffix == ".gz" else path.open("wb")
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
    attributes = "".join(f" {k}={quoteattr(xml_safe(str(v)))}" for k, v in attrs.items())
    return f"{indent}<{tag}{attributes}>{escape(xml_safe(str(value)))}</{tag}>\n"


class DfxmlWriter:
    """DFXML written to ``target`` as the records arrive: each file object goes at once to its
    partition's fragment, in a hidden folder beside ``target`` (on the results' disk: ``/tmp``
    may be memory), or in the system's temporary folder when ``target`` is a device or a pipe
    (``written_in_place``); ``finish`` puts the header and the ``<volume>`` elements around the
    fragments. No listing is read back after the scan (that took 0.3 s of one core for the
    bench's 20,000 files, and grows with the image). Object ids follow the records' order.
    """

    def __init__(self, target: Path) -> None:
        self.target = target
        target.parent.mkdir(parents=True, exist_ok=True)
        self._in_place = written_in_place(target)
        beside = None if self._in_place else target.parent
        self._folder = Path(tempfile.mkdtemp(prefix=f".{target.name}-parts-", dir=beside))
        self._fragments: dict[int, IO[str]] = {}
        self._next_id = 0

    def add(self, record: dict[str, Any]) -> None:
        partition = int(record["partition"])
        if partition not in self._fragments:
            path = self._folder / f"dfxml-volume-{partition}.part"
            self._fragments[partition] = path.open("w+", encoding="utf-8", errors="backslashreplace")
        self._next_id += 1
        self._fragments[partition].write(_fileobject(record, self._next_id))

    def finish(self, summary: dict[str, Any]) -> None:
        """Write the whole document: every partition the walk read, in order."""
        # Appended to a descriptor: standard output sent to a file with >> must keep what it holds.
        mode = "a" if self._in_place else "w"
        with self.target.open(mode, encoding="utf-8", errors="backslashreplace") as out:
            out.write(_dfxml_head(summary))
            for part in summary["partitions"]:
                if part["status"] != "ok":
                    continue
                out.write(f"  <volume offset='{part['offset']}'>\n")
                out.write(_element("partition_offset", part["offset"], "    "))
                out.write(_element("ftype_str", part["filesystem"], "    "))
                if part.get("extra", {}).get("block_size"):
                    out.write(_element("block_size", part["extra"]["block_size"], "    "))
                fragment = self._fragments.get(int(part["index"]))
                if fragment is not None:
                    fragment.seek(0)
                    shutil.copyfileobj(fragment, out)
                out.write("  </volume>\n")
            out.write("</dfxml>\n")

    def close(self) -> None:
        """Remove the fragments (``finish`` first, to keep the document), whatever closing them
        says: on a full disk their last buffered bytes cannot be written, and are not wanted."""
        for fragment in self._fragments.values():
            with contextlib.suppress(OSError):
                fragment.close()
        self._fragments.clear()
        shutil.rmtree(self._folder, ignore_errors=True)


def write_dfxml(listing: Path, summary: dict[str, Any], target: Path) -> None:
    """DFXML from a listing already written (``files.jsonl``, plain or gzip)."""
    writer = DfxmlWriter(target)
    try:
        for record in read_jsonl(listing):
            writer.add(record)
        writer.finish(summary)
    finally:
        writer.close()


def _dfxml_head(summary: dict[str, Any]) -> str:
    """Everything before the first ``<volume>``: the creator and the source image."""
    image = summary["image"]
    head = [
        "<?xml version='1.0' encoding='UTF-8'?>\n",
        f"<dfxml xmlns='{DFXML_NS}' xmlns:dc='http://purl.org/dc/elements/1.1/' version='1.0'>\n",
        "  <metadata>\n    <dc:type>Disk Image</dc:type>\n  </metadata>\n",
        "  <creator version='1.0'>\n",
        _element("program", "htcu-triage", "    "),
        _element("version", __version__, "    "),
        "    <build_environment>\n",
    ]
    for name, version in summary["provenance"]["versions"].items():
        head.append(f"      <library name={quoteattr(name)} version={quoteattr(xml_safe(str(version)))}/>\n")
    head += [
        "    </build_environment>\n",
        "    <execution_environment>\n",
        _element("start_time", summary["provenance"]["started"], "      "),
        "    </execution_environment>\n",
        "  </creator>\n",
        "  <source>\n",
        _element("image_filename", image["path"], "    "),
        _element("imagesize", image["media_size"], "    "),
    ]
    for algo, value in (image.get("computed_hashes") or {}).items():
        head.append(_element("hashdigest", value, "    ", type=algo))
    head.append("  </source>\n")
    return "".join(head)


# A file's elements, each written as ``_element`` would write it; escaped where the value is
# text from the evidence (names, types, errors). Tens of thousands of files a scan, so no
# generic element builder per field.
_HASH_OPEN = {algo: f"      <hashdigest type={quoteattr(algo)}>" for algo in ("md5", "sha1", "sha256")}


def _fileobject(record: dict[str, Any], object_id: int) -> str:
    ind = "      "
    parts = [
        "    <fileobject>\n"
        f"{ind}<filename>{escape(xml_safe(record['path'].lstrip('/')))}</filename>\n"
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
        parts.append(f"{ind}<libmagic>{escape(xml_safe(str(record['mime'])))}</libmagic>\n")
    if record.get("error"):
        parts.append(f"{ind}<!-- error: {escape(xml_safe(record['error'])).replace('--', '- -')} -->\n")
    parts.append("    </fileobject>\n")
    return "".join(parts)
