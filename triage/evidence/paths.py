"""Keep every path a user names inside the folders configured for it: evidence images inside
the evidence roots, hash sets and rules registered through the API inside the reference roots."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from triage.errors import InvalidInputError

_CONTROL = re.compile("[\x00-\x1f\x7f]")


def confine(
    path: str | Path, roots: Sequence[Path], allow_dir: bool = False, what: str = "evidence roots"
) -> Path:
    """Resolve ``path`` (symlinks followed) and return it if it is an existing regular file (or,
    with ``allow_dir``, folder) inside one of ``roots``, which messages call ``what``. Relative
    paths are taken relative to each root in turn. A path the operating system refuses to look
    up (too long, a NUL byte, no permission) is :class:`InvalidInputError` too."""
    try:
        return _confine(path, roots, allow_dir, what)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"{shown(path)}: cannot be looked up: {_reason(exc)}") from None


NOT_UTF8 = (
    "the path is not UTF-8 text, which the libraries that open it and the records that name it "
    "need; give it a UTF-8 name (rename it, or link to it under one)"
)


def is_utf8(path: str | Path) -> bool:
    """Whether the path is text (a name in another encoding, copied from an old Windows disk,
    say, comes to Python with stand-ins for its bytes)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def not_usable(path: Path, allow_dir: bool = False) -> str | None:
    """Why ``path`` cannot be read as a file (or, with ``allow_dir``, a folder), as the end of a
    message: "no such file", "not a regular file", not UTF-8, or why the operating system
    refused to look it up (too long, a NUL byte, no permission); None if it can."""
    if not is_utf8(path):
        return NOT_UTF8
    try:
        if path.is_file() or (allow_dir and path.is_dir()):
            return None
        return "not a regular file" if path.exists() else "no such file"
    except (OSError, ValueError) as exc:
        return f"cannot be looked up: {_reason(exc)}"


def same_file(path: Path, others: Iterable[Path]) -> Path | None:
    """The first of ``others`` that ``path`` names too (the same name, a hard link or a
    symbolic link to it), or None. A path that does not exist or cannot be looked up names
    none of them."""
    try:
        found = path.stat()
    except (OSError, ValueError):
        return None
    for other in others:
        try:
            if os.path.samestat(found, other.stat()):
                return other
        except (OSError, ValueError):
            continue
    return None


def each_once(paths: Iterable[Path]) -> list[Path]:
    """``paths`` in their order, each file once: a later name of a file named before (the same
    name again, a hard link or a symbolic link to it) is left out."""
    once: list[Path] = []
    for path in paths:
        if same_file(path, once) is None:
            once.append(path)
    return once


def _reason(exc: OSError | ValueError) -> str:
    """Why the operating system refused a path: its error text (ValueError: a NUL byte)."""
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def shown(path: str | Path, limit: int = 200) -> str:
    """The path as messages quote it: a long one shortened in the middle, bytes that are not
    UTF-8 and control characters written as escapes (``\\xff``, ``\\x0A``), so that the
    message itself can be printed and sent, on one line (a newline in a name cut the scan's
    one-line error there, naming another path)."""
    text = str(path)
    if not is_utf8(text):
        try:
            text = os.fsencode(text).decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # a stand-in that is no byte's: escaped as itself
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    text = _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02X}", text)
    return text if len(text) <= limit else f"{text[: limit // 2]}...{text[-limit // 2 :]}"


def _confine(path: str | Path, roots: Sequence[Path], allow_dir: bool, what: str) -> Path:
    if not roots:
        raise InvalidInputError(f"no {what} are configured")
    resolved_roots = [Path(r).resolve() for r in roots]
    raw = Path(path)
    candidates = [raw] if raw.is_absolute() else [root / raw for root in resolved_roots]
    for candidate in candidates:
        resolved = candidate.resolve()
        inside = any(resolved.is_relative_to(root) for root in resolved_roots)
        if not inside:
            if raw.is_absolute() or candidate is candidates[-1]:
                raise InvalidInputError(f"{shown(path)}: outside the {what}")
            continue
        if not resolved.exists():
            if candidate is candidates[-1]:
                raise InvalidInputError(f"{shown(path)}: no such file under the {what}")
            continue
        if not (resolved.is_file() or (allow_dir and resolved.is_dir())):
            raise InvalidInputError(f"{shown(path)}: not a regular file")
        return resolved
    raise InvalidInputError(f"{shown(path)}: no such file under the {what}")


def confine_all(paths: Sequence[Path], roots: Sequence[Path]) -> list[Path]:
    """Every segment of a multi-part image must also lie inside the roots."""
    return [confine(p, roots) for p in paths]
