"""Sleuth Kit's ``fiwalk`` as the independent oracle for per-file hashes."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

NS = {"d": "http://www.forensicswiki.org/wiki/Category:Digital_Forensics_XML"}


def _text(node: ET.Element, tag: str) -> str | None:
    found = node.find(f"d:{tag}", NS)
    return found.text if found is not None else None


def parse_dfxml(xml: str | bytes) -> dict[tuple[int, str], dict[str, str]]:
    """{(volume offset, path): {"md5": ..., "sha1": ...}} for allocated regular files."""
    root = ET.fromstring(xml)  # noqa: S314 - our own tool's output
    out: dict[tuple[int, str], dict[str, str]] = {}
    for volume in root.iter(f"{{{NS['d']}}}volume"):
        offset = int(volume.get("offset", "0"))
        for obj in volume.iter(f"{{{NS['d']}}}fileobject"):
            if _text(obj, "name_type") != "r" or _text(obj, "alloc") != "1":
                continue
            digests = {
                h.get("type", "").lower(): (h.text or "").lower() for h in obj.findall("d:hashdigest", NS)
            }
            digests["filesize"] = _text(obj, "filesize") or "0"
            out[(offset, "/" + (_text(obj, "filename") or ""))] = digests
    return out


def fiwalk(image: Path) -> dict[tuple[int, str], dict[str, str]]:
    xml = subprocess.run(["fiwalk", "-O", "-x", str(image)], check=True, capture_output=True).stdout
    return parse_dfxml(xml)


EMPTY = {"md5": "d41d8cd98f00b204e9800998ecf8427e", "sha1": "da39a3ee5e6b4b0d3255bfef95601890afd80709"}


def mismatches(
    records: list[dict[str, Any]],
    partitions: list[dict[str, Any]],
    oracle: dict[tuple[int, str], dict[str, str]],
) -> list[str]:
    """Every difference between our records and fiwalk's for allocated regular files.

    fiwalk writes no digest for an empty file (we expect the empty-input digests) and, for an
    NTFS file with no unnamed $DATA but a named one (``$Secure``), hashes that stream; we list
    the stream as its own entry, so either of the file's entries may carry fiwalk's digest.
    """
    offsets = {p["index"]: p["offset"] for p in partitions if p["status"] == "ok"}
    mine: dict[tuple[int, str], list[dict[str, str]]] = {}
    for r in records:
        if not r["allocated"]:
            continue
        key = (offsets[r["partition"]], r["path"].split(":", 1)[0] if r["stream"] else r["path"])
        mine.setdefault(key, []).append({"md5": r["md5"], "sha1": r["sha1"], "stream": r["stream"] or ""})
    problems = [f"missing from ours: {k}" for k in sorted(set(oracle) - set(mine))]
    problems += [f"not in fiwalk: {k}" for k in sorted(set(mine) - set(oracle))]
    for key, want in oracle.items():
        if key not in mine:
            continue
        expected = {"md5": want["md5"], "sha1": want["sha1"]} if "md5" in want else EMPTY
        candidates = (
            mine[key]
            if want.get("filesize") == "0" and "md5" in want
            else [e for e in mine[key] if not e["stream"]]
        )
        if not any(e["md5"] == expected["md5"] and e["sha1"] == expected["sha1"] for e in candidates):
            problems.append(f"digest differs: {key}: fiwalk {expected} ours {candidates}")
    return problems
