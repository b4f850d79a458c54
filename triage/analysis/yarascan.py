"""YARA: compile once per process, scan each file with a timeout and a size cap.

A timeout, a too-many-matches warning or a file over the cap is recorded as
"scan incomplete" with its reason, never as "no match".
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yara

from triage.errors import RulesError
from triage.evidence.paths import not_usable, shown

RULE_SUFFIXES = {".yar", ".yara", ".rule", ".rules"}
# The externals that public rule sets (e.g. signature-base) expect; empty values compile.
EXTERNALS = {"filename": "", "filepath": "", "extension": "", "filetype": "", "owner": ""}


@dataclass(frozen=True)
class RuleSet:
    """Compiled rules as bytes (to hand to worker processes) plus their provenance."""

    compiled: bytes
    sha256: str
    files: tuple[str, ...]
    rule_count: int


@dataclass
class YaraResult:
    matches: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = True
    reason: str = ""


def rule_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if (problem := not_usable(path, allow_dir=True)) is not None:
            problem = "no such rule file or folder" if problem == "no such file" else problem
            raise RulesError(f"{shown(path)}: {problem}")
        if path.is_dir():
            files.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in RULE_SUFFIXES)
            )
        else:
            files.append(path)
    if not files:
        raise RulesError(f"no rule files (*.yar, *.yara) under {', '.join(map(str, paths))}")
    return files


def _digest_part(path: Path, data: bytes) -> bytes:
    """What one rule file adds to its set's SHA-256: its name and its content's hash, in the
    order ``rule_files`` gives (so the set's hash does not depend on the folder it is in)."""
    return path.name.encode() + b"\0" + hashlib.sha256(data).digest()


def rules_sha256(paths: list[Path]) -> str:
    """The SHA-256 that ``compile_rules`` gives the rules under ``paths``, without compiling."""
    digest = hashlib.sha256()
    for path in rule_files(paths):
        digest.update(_digest_part(path, path.read_bytes()))
    return digest.hexdigest()


def compile_rules(paths: list[Path]) -> RuleSet:
    """Compile every rule file together (one namespace per file) to validate them up front."""
    files = rule_files(paths)
    digest = hashlib.sha256()
    sources: dict[str, str] = {}
    for n, path in enumerate(files):
        data = path.read_bytes()  # hashed as read: the hash is of what was compiled
        digest.update(_digest_part(path, data))
        try:
            sources[f"r{n}_{path.stem}"] = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RulesError(f"{path}: not UTF-8 text: {exc}") from exc
    try:
        rules = yara.compile(sources=sources, externals=EXTERNALS)
    except yara.SyntaxError as exc:
        raise RulesError(f"rules do not compile: {exc}") from exc
    except yara.Error as exc:
        raise RulesError(f"rules do not compile: {exc}") from exc
    buffer = io.BytesIO()
    rules.save(file=buffer)
    count = sum(1 for _ in rules)
    return RuleSet(buffer.getvalue(), digest.hexdigest(), tuple(str(f) for f in files), count)


class Scanner:
    """Per-process YARA scanner over compiled rules."""

    def __init__(self, ruleset: RuleSet, timeout: int = 30, max_size: int = 64 * 1024 * 1024) -> None:
        self._rules = yara.load(file=io.BytesIO(ruleset.compiled))
        self.timeout = timeout
        self.max_size = max_size

    def scan(self, data: bytes, *, path: str, filetype: str, size: int) -> YaraResult:
        if size > self.max_size:
            return YaraResult(
                complete=False, reason=f"file larger than the YARA size cap ({self.max_size} bytes)"
            )
        name = path.rsplit("/", 1)[-1]
        externals = {
            "filename": name,
            "filepath": path,
            "extension": name.rsplit(".", 1)[-1].lower() if "." in name else "",
            "filetype": filetype,
            "owner": "",
        }
        warnings: list[str] = []

        def on_warning(kind: int, message: Any) -> int:
            if kind == yara.CALLBACK_TOO_MANY_MATCHES:
                rule, string = getattr(message, "rule", "?"), getattr(message, "string", "?")
                warnings.append(f"too many matches of {rule}:{string}")
            return int(yara.CALLBACK_CONTINUE)

        result = YaraResult()
        try:
            matches = self._rules.match(
                data=data, externals=externals, timeout=self.timeout, warnings_callback=on_warning
            )
        except yara.TimeoutError:
            return YaraResult(complete=False, reason=f"YARA timed out after {self.timeout} s")
        except yara.Error as exc:
            return YaraResult(complete=False, reason=f"YARA error: {exc}")
        result.matches = [
            {"rule": m.rule, "namespace": m.namespace, "tags": list(m.tags), "meta": dict(m.meta)}
            for m in matches
        ]
        if warnings:
            result.complete = False
            result.reason = "; ".join(sorted(set(warnings)))
        return result


def yara_version() -> str:
    return str(yara.__version__)
