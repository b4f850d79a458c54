"""HTCU triage queue: the domain core (intake, custody, audit, evidence, analysis, queue)."""

__version__ = "0.1.0"
