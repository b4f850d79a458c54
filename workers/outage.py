"""A database outage in a loop that polls it (the local worker, the sweeper): told in one line
when it starts and one when it ends, not with a traceback at every poll (a page a second)."""

from __future__ import annotations

import logging

from triage.db import database_trouble


class OutageLog:
    def __init__(self, log: logging.Logger, what: str, database_url: str) -> None:
        self.log, self.what, self.database_url = log, what, database_url
        self.trouble = ""  # what was last told, while it lasts

    def failed(self, exc: Exception) -> None:
        """Log a failure of the loop: a database that cannot be used once (again if its reason
        changes), anything else with its traceback."""
        trouble = database_trouble(exc, self.database_url)
        if trouble is None:
            self.log.exception("%s failed; will try again", self.what)
        elif trouble != self.trouble:
            self.log.warning("%s waits for the database: %s", self.what, trouble)
        self.trouble = trouble or ""

    def succeeded(self) -> None:
        if self.trouble:
            self.log.warning("%s: the database answers again", self.what)
            self.trouble = ""
