"""Parameter types the commands share."""

from __future__ import annotations

from typing import Annotated

import typer

from triage.models.types import INT32_MAX

# A row's id as the database holds it. One past the integer columns' range ended in an
# OverflowError traceback (SQLite) rather than "not found"; typer now refuses it as it parses.
RowIdArgument = Annotated[int, typer.Argument(min=1, max=INT32_MAX, help="its id", show_default=False)]
