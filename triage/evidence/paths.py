"""Keep every evidence path inside the configured evidence roots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from triage.errors import InvalidInputError


def confine(path: str | Path, roots: Sequence[Path]) -> Path:
    """Resolve ``path`` (symlinks followed) and return it if it is an existing regular file
    inside one of ``roots``. Relative paths are taken relative to each root in turn."""
    if not roots:
        raise InvalidInputError("no evidence roots are configured (TRIAGE_EVIDENCE_ROOTS)")
    resolved_roots = [Path(r).resolve() for r in roots]
    raw = Path(path)
    candidates = [raw] if raw.is_absolute() else [root / raw for root in resolved_roots]
    for candidate in candidates:
        resolved = candidate.resolve()
        inside = any(resolved.is_relative_to(root) for root in resolved_roots)
        if not inside:
            if raw.is_absolute() or candidate is candidates[-1]:
                raise InvalidInputError(f"{path}: outside the evidence roots")
            continue
        if not resolved.exists():
            if candidate is candidates[-1]:
                raise InvalidInputError(f"{path}: no such file under the evidence roots")
            continue
        if not resolved.is_file():
            raise InvalidInputError(f"{path}: not a regular file")
        return resolved
    raise InvalidInputError(f"{path}: no such file under the evidence roots")


def confine_all(paths: Sequence[Path], roots: Sequence[Path]) -> list[Path]:
    """Every segment of a multi-part image must also lie inside the roots."""
    return [confine(p, roots) for p in paths]
