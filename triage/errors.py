"""One base error and narrow subclasses; ``api/errors.py`` maps them to HTTP in one place."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class TriageError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigurationError(TriageError, ValueError):
    """A setting or a policy file is unusable; refused at start-up."""


class NotFoundError(TriageError):
    """An object does not exist, or the caller may not know that it exists."""


class ConflictError(TriageError):
    """The request clashes with the current state (duplicate, illegal transition, busy)."""


class PermissionDeniedError(TriageError):
    """The caller's role may not do this."""


class AuthenticationError(TriageError):
    """Missing, wrong or expired credentials."""


class FieldValidationError(TriageError):
    """A field's value is unacceptable in combination with others (answered as 422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InvalidInputError(TriageError):
    """Input that is well-formed but unacceptable (e.g. a path outside the evidence roots)."""


class EvidenceError(TriageError):
    """An evidence image cannot be read or understood."""


class UnsupportedFormatError(EvidenceError):
    """Not a format we read ("not my format", kept apart from corrupt)."""


class CorruptImageError(EvidenceError):
    """A recognised format whose content is damaged or truncated."""


class IntegrityError(EvidenceError):
    """The image's computed hash differs from its acquisition hash."""


class HashSetError(TriageError):
    """A hash-set file is malformed or of an unknown kind."""


class RulesError(TriageError):
    """A YARA rule set does not compile."""


class AuditChainError(TriageError):
    """The audit log's hash chain is broken."""


class ResultsNotWritten(OSError):
    """Writing a result failed (disk full, ...) in a child process: carried to the parent as
    the ``OSError`` it is, not as a failure to read the evidence."""


def in_words(problems: Iterable[Mapping[str, Any]], whole: str = "input") -> str:
    """Validation problems (pydantic's ``errors()``) on one line, as a person reads them, such
    as ``offset: Input should be ...``: never the values given (they may be passwords or
    secrets). The parts of a location a person did not type (query, path, body, form) are left
    out; a problem with the input as a whole is put down to ``whole``, or to nothing when it is
    empty. Our own checks' words come without pydantic's "Value error, " before them."""
    said = []
    for problem in problems:
        where = (
            ".".join(str(p) for p in problem["loc"] if p not in ("query", "path", "body", "form")) or whole
        )
        words = str(problem["msg"]).removeprefix("Value error, ")
        said.append(f"{where}: {words}" if where else words)
    return "; ".join(said)
