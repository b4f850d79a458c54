"""The ``triage`` command. Sub-commands live one module per concept in this folder."""

from __future__ import annotations

import typer

from triage.cli import admin, backlog, queue, reference, scan, worker

app = typer.Typer(
    name="triage",
    help="HTCU triage queue: intake, triage of disk images, prioritised examination queue.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(admin.db_app, name="db")
app.add_typer(admin.users_app, name="users")
app.add_typer(admin.audit_app, name="audit")
app.add_typer(reference.hashsets_app, name="hashsets")
app.add_typer(reference.rules_app, name="rules")
app.command("serve")(admin.serve)
app.command("scan")(scan.scan)
app.command("worker")(worker.worker)
app.command("queue")(queue.show_queue)
app.command("rescore")(queue.rescore)
app.command("backlog")(backlog.backlog)
app.command("vendors")(backlog.vendors)
app.command("simulate")(backlog.simulate)
app.command("outsource")(backlog.outsource)

__all__ = ["app"]
