"""The ``triage`` command. Sub-commands live one module per concept in this folder.

Each sub-command's module is imported only when that command runs (or when ``--help`` lists
them all), so that ``triage scan``, which needs no database, does not pay for loading the
database, web and queue layers (about 0.7 s of start-up).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from triage.cli.output import HELP_MARKUP

# command name -> (module, attribute): a Typer sub-app (a group) or a function (one command)
COMMANDS: dict[str, tuple[str, str]] = {
    "db": ("triage.cli.admin", "db_app"),
    "users": ("triage.cli.admin", "users_app"),
    "audit": ("triage.cli.admin", "audit_app"),
    "hashsets": ("triage.cli.reference", "hashsets_app"),
    "rules": ("triage.cli.reference", "rules_app"),
    "serve": ("triage.cli.admin", "serve"),
    "scan": ("triage.cli.scan", "scan"),
    "worker": ("triage.cli.worker", "worker"),
    "scheduler": ("triage.cli.worker", "scheduler"),
    "queue": ("triage.cli.queue", "show_queue"),
    "rescore": ("triage.cli.queue", "rescore"),
    "backlog": ("triage.cli.backlog", "backlog"),
    "vendors": ("triage.cli.backlog", "vendors"),
    "simulate": ("triage.cli.backlog", "simulate"),
    "outsource": ("triage.cli.backlog", "outsource"),
}


def load_command(name: str) -> Any:
    """Import the module of sub-command ``name`` and build its click command."""
    module, attribute = COMMANDS[name]
    target: Any = getattr(importlib.import_module(module), attribute)
    if isinstance(target, typer.Typer):
        command: Any = typer.main.get_group(target)
    else:
        single = typer.Typer(rich_markup_mode=HELP_MARKUP, add_completion=False)
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """A Typer group whose sub-commands are loaded on first use (see ``COMMANDS``).

    (Typer builds on its own private copy of click, so its command and context types are
    written ``Any`` here.)"""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.add_command(load_command(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: Any) -> Any:
        """A configuration that any command may refuse as it starts (a bad scoring policy,
        settings that do not validate, such as a default secret in production), or a database
        it cannot use, ends the command with a one-line message on stderr and exit status 1,
        not a traceback."""
        from pydantic import ValidationError

        from scoring.policy import PolicyError
        from triage.errors import ConfigurationError

        try:
            return super().invoke(ctx)
        except (ConfigurationError, PolicyError) as exc:
            typer.echo(f"triage: {exc}", err=True)
            raise typer.Exit(1) from None
        except ValidationError as exc:
            if exc.title != "Settings":
                raise
            from triage.errors import in_words

            # Each error's field and message; not the input values, which hold the settings.
            typer.echo(f"triage: invalid settings: {in_words(exc.errors(), '')}", err=True)
            raise typer.Exit(1) from None
        except Exception as exc:
            message = _service_trouble(exc)
            if message is None:
                raise
            typer.echo(f"triage: {message}", err=True)
            raise typer.Exit(1) from None


def _service_trouble(exc: Exception) -> str | None:
    """A line for a database not running, refusing the account or without its tables yet, or a
    Redis broker not answering (an RQ worker starting), rather than a page of traceback; None
    for anything else. (``triage scan`` loads neither layer, so neither is imported for it.)"""
    from triage.settings import get_settings, without_password

    if "sqlalchemy" in sys.modules:
        from triage.db import database_trouble

        if (message := database_trouble(exc, get_settings().database_url)) is not None:
            return message
    if "redis" in sys.modules:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        if isinstance(exc, RedisConnectionError | RedisTimeoutError):
            return f"the broker {without_password(get_settings().broker_url)} cannot be reached: {exc}"
    return None


app = typer.Typer(
    rich_markup_mode=HELP_MARKUP,
    name="triage",
    cls=LazyGroup,
    help="HTCU triage queue: intake, triage of disk images, prioritised examination queue.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    # A callback makes Typer build a group (LazyGroup) even with no command registered here.
    return None


__all__ = ["app"]
