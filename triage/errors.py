"""One base error and narrow subclasses; ``api/errors.py`` maps them to HTTP in one place."""

from __future__ import annotations


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
