"""What the management commands print: tables on stdout, refusals on stderr.

(`triage scan` keeps its own plain one-line messages: its exit statuses are a contract with
scripts, see triage/cli/scan.py.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import typer
from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    from triage.analysis.hashsets.store import Progress as HashSetProgress

# No console markup: what is printed holds names, references and reasons users typed and
# names from evidence, and Rich read "[/x]" in one as a closing tag (a MarkupError traceback
# for every later `triage hashsets list`) and "[bold]" as a style. The few styled words of
# our own ask for markup at their call, around nothing a user wrote.
console = Console(markup=False)
err = Console(stderr=True, soft_wrap=True, markup=False)  # a refusal stays one line, however long


# Help texts are docstrings, read as Markdown: in Rich's own markup mode a paragraph's line
# breaks stayed, and broke the command list and the scan's exit statuses mid-sentence.
HELP_MARKUP: Final = "markdown"


def command_group(help_text: str) -> typer.Typer:
    """A group of sub-commands (``triage db``, ``triage users``, ...): bare, it shows its help."""
    return typer.Typer(rich_markup_mode=HELP_MARKUP, help=help_text, no_args_is_help=True)


def fail(message: str, code: int = 1, label: str = "error") -> typer.Exit:
    """Print ``label: message`` on stderr and return the exit to raise (``raise fail(...)``)."""
    err.print(Text.assemble((f"{label}:", "red"), " ", message))
    return typer.Exit(code)


def counted(count: int, noun: str) -> str:
    """``count`` and ``noun``, plural unless one: "1 rule", "3 exhibits"."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def hashset_progress(name: str, show: Callable[[str], None]) -> HashSetProgress:
    """What to tell ``load_hashset`` so that a terminal shows a set being made ready (minutes
    for one of NSRL size): ``show`` gets one line of text at a time."""

    def told(phase: str, done: int, total: int) -> None:
        if phase == "indexing":
            show(f"indexing {name}: {done:,} hashes read")
        else:
            show(f"{name}: lookup filter, {done:,} of {total:,} digests")

    return told
