"""YARA: compile once per process, scan each file with a timeout and a size cap.

A timeout, a too-many-matches warning or a file over the cap is recorded as
"scan incomplete" with its reason, never as "no match".
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yara

from triage.analysis.hashers import Content
from triage.errors import RulesError
from triage.evidence.paths import each_once, not_usable, shown

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
    included: tuple[str, ...] = ()  # files the rules ``include``


@dataclass
class YaraResult:
    matches: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = True
    reason: str = ""


def rule_files(paths: list[Path]) -> list[Path]:
    """The rule files that ``paths`` (files and folders) name, each once: a file given twice, in
    a folder given and by itself, or linked to from its own folder, was compiled once for each
    name, and every file it matched got each match that many times."""
    files: list[Path] = []
    for path in paths:
        if (problem := not_usable(path, allow_dir=True)) is not None:
            problem = "no such rule file or folder" if problem == "no such file" else problem
            raise RulesError(f"{shown(path)}: {problem}")
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in RULE_SUFFIXES)
            files.extend(_inside(path, found))
        else:
            files.append(path)
    if not files:
        raise RulesError(f"no rule files (*.yar, *.yara) under {', '.join(map(str, paths))}")
    return each_once(files)


def _inside(folder: Path, files: list[Path]) -> list[Path]:
    """``files`` found in ``folder``, refused if one is a link to a file outside it (a folder
    given inside the reference roots must not bring in what lies elsewhere, as includes may
    not) or its name is not UTF-8 (its name is part of the set's hash and record)."""
    within = folder.resolve()
    for path in files:
        if (problem := not_usable(path)) is not None:  # a name that is not UTF-8, say
            raise RulesError(f"{shown(path)}: {problem}")
        if not path.resolve().is_relative_to(within):
            raise RulesError(
                f"{shown(path)}: a link to a file outside {shown(folder)}; copy the file in instead"
            )
    return files


def _digest_part(path: Path, data: bytes) -> bytes:
    """What one rule file adds to its set's SHA-256: its name and its content's hash, in the
    order ``rule_files`` gives (so the set's hash does not depend on the folder it is in)."""
    return path.name.encode() + b"\0" + hashlib.sha256(data).digest()


def _rule_text(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RulesError(f"{shown(path)}: not UTF-8 text: {exc}") from exc


class _Includes:
    """Reads the files that rules ``include``, as the yara command does: relative to the file
    that includes them, not to the current folder (a worker's is not the admin's). Each must
    lie inside one of ``roots`` (the folders given, or the given files' folders), so that a
    registered set's kept copy holds it; each is part of the set's hash. yara-python names
    an included file that includes more only by how it was itself included, so when that
    name meant two files (``common.yar`` beside each of two index files) its own includes are
    refused rather than guessed."""

    def __init__(self, roots: list[Path], top: dict[str, Path]) -> None:
        self.roots = [root.resolve() for root in roots]
        self.top = top  # namespace: the rule file given
        self.resolved: dict[str, set[Path]] = {}  # include name: the files it was read from
        self.files: list[Path] = []
        self.texts: dict[Path, str] = {}
        self.parts: list[bytes] = []
        self.problem = ""

    def __call__(self, requested: str, includer: str | None, namespace: str) -> str | None:
        try:
            return self._read(requested, includer, namespace)
        except RulesError as exc:  # yara-python would only say the callback failed
            self.problem = self.problem or str(exc)
            return None

    def _read(self, requested: str, includer: str | None, namespace: str) -> str:
        if includer is None:
            parent = self.top.get(namespace)
        else:
            found = self.resolved.get(includer, set())
            if len(found) > 1:
                raise RulesError(
                    f"include {requested!r} in {includer!r}, which names {len(found)} files "
                    f"({', '.join(sorted(shown(f) for f in found))}): give them different names"
                )
            parent = next(iter(found), None)
        if parent is None:
            raise RulesError(f"include {requested!r}: cannot tell which file includes it")
        try:
            target = (parent.parent / requested).resolve()
        except (OSError, RuntimeError) as exc:
            raise RulesError(f"{shown(parent)}: include {requested!r} cannot be looked up: {exc}") from exc
        if not any(target.is_relative_to(root) for root in self.roots):
            raise RulesError(
                f"{shown(parent)}: include {requested!r} is outside the rules given; give the folder "
                "that holds both"
            )
        self.resolved.setdefault(requested, set()).add(target)
        if (problem := not_usable(target)) is not None:
            raise RulesError(f"{shown(parent)}: include {requested!r}: {problem}")
        data = target.read_bytes()
        if target not in self.files:
            self.files.append(target)
        self.parts.append(b"include\0" + requested.encode() + b"\0" + hashlib.sha256(data).digest())
        self.texts[target] = _rule_text(target, data)
        return self.texts[target]


def compile_rules(paths: list[Path], root: Path | None = None) -> RuleSet:
    """Compile every rule file together (one namespace per file) to validate them up front.
    Files they ``include`` are read as ``_Includes`` says, inside ``root`` if given (else the
    folders given, or the given files' folders), and listed in ``RuleSet.included``. A file
    that another includes is not compiled on its own as well: a public set's folder holds
    index files that include the others, whose rules would otherwise be compiled twice and
    every match reported twice."""
    files = rule_files(paths)
    roots = [root] if root else [p if p.is_dir() else p.parent for p in paths]
    compiled = _compile(files, roots)
    included = {Path(f) for f in compiled.included}
    standalone = [f for f in files if f.resolve() not in included]
    return _compile(standalone, roots) if len(standalone) < len(files) else compiled


def _compile(files: list[Path], roots: list[Path]) -> RuleSet:
    digest = hashlib.sha256()
    sources: dict[str, str] = {}
    top: dict[str, Path] = {}
    for n, path in enumerate(files):
        data = path.read_bytes()  # hashed as read: the hash is of what was compiled
        digest.update(_digest_part(path, data))
        namespace = f"r{n}_{path.stem}"
        sources[namespace] = _rule_text(path, data)
        top[namespace] = path
    includes = _Includes(roots, top)
    try:
        rules = yara.compile(sources=sources, externals=EXTERNALS, include_callback=includes)
    except yara.Error as exc:  # yara.SyntaxError included
        raise RulesError(includes.problem or _explained(exc, sources, top, includes, roots)) from exc
    for part in includes.parts:
        digest.update(part)
    buffer = io.BytesIO()
    rules.save(file=buffer)
    count = sum(1 for _ in rules)
    return RuleSet(
        buffer.getvalue(),
        digest.hexdigest(),
        tuple(str(f) for f in files),
        count,
        tuple(str(f) for f in includes.files),
    )


_IMPORT = re.compile(r'^[ \t]*import[ \t]+"([^"\n]*)"', re.MULTILINE)


def _explained(
    exc: yara.Error, sources: dict[str, str], top: dict[str, Path], includes: _Includes, roots: list[Path]
) -> str:
    """A compile error with the rule file it is in, since YARA numbers the line of rules given
    as text but does not name their file (and a folder holds hundreds); or, where a file
    imports a module this build of YARA lacks, that: public sets import ``magic`` or
    ``cuckoo``, which yara-python is built without, and YARA then may report the first use of
    the module ("invalid field name") rather than the import."""
    texts = [(top[namespace], text) for namespace, text in sources.items()] + list(includes.texts.items())
    for path, text in texts:
        for module in _IMPORT.findall(text):
            if module not in yara.modules:
                return (
                    f"{shown(path)}: imports the YARA module {module!r}, which this YARA does not have "
                    f"(it has {', '.join(sorted(m for m in yara.modules if m != 'tests'))}); "
                    "leave out the rules that need it"
                )
    if len(sources) == 1:
        return f"{shown(next(iter(top.values())))}: rules do not compile: {exc}"
    for namespace, source in sources.items():  # on a failure only: each file on its own
        try:
            yara.compile(
                sources={namespace: source},
                externals=EXTERNALS,
                include_callback=_Includes(roots, {namespace: top[namespace]}),
            )
        except yara.Error as alone:
            if str(alone) == str(exc):
                return f"{shown(top[namespace])}: rules do not compile: {exc}"
    return f"rules do not compile: {exc}"


class Scanner:
    """Per-process YARA scanner over compiled rules."""

    def __init__(self, ruleset: RuleSet, timeout: int = 30, max_size: int = 64 * 1024 * 1024) -> None:
        self._rules = yara.load(file=io.BytesIO(ruleset.compiled))
        self.timeout = timeout
        self.max_size = max_size

    def scan(self, data: Content, *, path: str, filetype: str, size: int) -> YaraResult:
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
