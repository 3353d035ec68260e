"""``paynudge dispatch`` and ``paynudge templates``: a thin layer over the dispatcher library."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from paynudge.errors import PayNudgeError

dispatch_app = typer.Typer(help="The reminder dispatcher: load invoices, run the workflow.")
templates_app = typer.Typer(help="Reminder templates: preview and check them.")
console = Console()
err_console = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def _instant(text: str | None, option: str) -> object:
    from paynudge.cli import parse_instant

    return parse_instant(text, option).to_pydatetime() if text else None


@dispatch_app.command("load")
def load(
    directory: Path = typer.Argument(..., help="Data set folder: customers, invoices, payments."),
) -> None:
    """Load customers, invoices, payments (and responses) into the dispatcher's database."""
    from dispatcher.database import open_database
    from dispatcher.loading import load_folder
    from dispatcher.stages import load_workflow
    from paynudge.config import get_settings

    settings = get_settings()
    try:
        report = load_folder(open_database(settings), directory, load_workflow(settings))
    except PayNudgeError as error:
        raise _fail(str(error)) from None
    console.print(
        f"[green]loaded[/] {report.customers:,} customers, {report.invoices:,} invoices "
        f"({report.settled:,} settled), {report.payments:,} payments, "
        f"{report.suppressions:,} opt-outs"
    )


@dispatch_app.command("run")
def run(
    once: bool = typer.Option(False, "--once", help="One pass, then exit (default: a loop)."),
    now: str | None = typer.Option(
        None, help="Replay up to this ISO instant (decide at it, send what is due by it)."
    ),
) -> None:
    """Plan what is due (asking /decide), then send it; recovers what a dead process left."""
    from dispatcher.cycle import CycleReport, Dispatcher
    from paynudge.config import get_settings

    def show(report: CycleReport) -> None:
        plan, sent = report.planned, report.sent
        console.print(
            f"planned {plan.invoices:,} invoices: {plan.scheduled:,} scheduled, "
            f"{plan.no_contact:,} no contact, {plan.blocked:,} blocked, {plan.case_tasks:,} case "
            f"tasks | sent {sent.sent:,}, blocked {sent.blocked:,}, retried {sent.retried:,}, "
            f"parked {sent.parked:,}, reconcile {sent.reconcile:,} | recovered "
            f"{report.recovered:,} | {report.seconds:.1f} s",
            highlight=False,
        )

    try:
        dispatcher = Dispatcher(get_settings())
        try:
            if once or now:
                show(dispatcher.run_once(_instant(now, "--now")))  # type: ignore[arg-type]
            else:
                dispatcher.run_forever(show)
        finally:
            dispatcher.close()
    except PayNudgeError as error:
        raise _fail(str(error)) from None


@dispatch_app.command("status")
def status() -> None:
    """Messages by status, reminders by outcome, case tasks and invoices."""
    from dispatcher.cycle import status_counts
    from dispatcher.database import open_database
    from paynudge.config import get_settings

    try:
        counts = status_counts(open_database(get_settings()))
    except PayNudgeError as error:
        raise _fail(str(error)) from None
    table = Table(title="dispatcher")
    for column in ("table", "state", "rows"):
        table.add_column(column, justify="right" if column == "rows" else "left")
    for name, states in counts.items():
        for state, rows in sorted(states.items()):
            table.add_row(name, state, f"{rows:,}")
    console.print(table)
    flagged = counts["messages"].get("reconcile", 0)
    if flagged:
        console.print(f"[yellow]{flagged:,} message(s) flagged for reconciliation[/]")


@templates_app.command("preview")
def preview(
    channel: str = typer.Option("email", help="email, sms, push, call or letter."),
    tone: str = typer.Option("friendly", help="friendly, neutral or firm."),
    language: str = typer.Option("en", help="en or nl."),
    offer: str = typer.Option("none", help="none, extension or instalment_plan."),
    invoice: str | None = typer.Option(None, help="An invoice in the dispatcher's database."),
    html: bool = typer.Option(False, "--html", help="Print the HTML part of an e-mail."),
) -> None:
    """Render a template for an invoice (or a sample one) and print it."""
    from dispatcher.preview import preview_message
    from paynudge.config import get_settings

    try:
        rendered = preview_message(get_settings(), channel, tone, language, offer, invoice)
    except PayNudgeError as error:
        raise _fail(str(error)) from None
    console.print(f"[bold]{rendered.template}[/]", highlight=False)
    if rendered.subject is not None:
        console.print(f"Subject: {rendered.subject}\n", highlight=False)
    body = rendered.html if html and rendered.html else rendered.text
    console.print(body, highlight=False, markup=False, soft_wrap=True)
    if rendered.sms_segments is not None:
        console.print(f"({rendered.sms_encoding}, {rendered.sms_segments} segment(s))")


@templates_app.command("check")
def check() -> None:
    """Render every channel x tone x language x offer for a sample invoice; list failures."""
    from dispatcher.preview import check_templates
    from paynudge.config import get_settings

    problems = check_templates(get_settings())
    for problem in problems:
        err_console.print(f"[red]✗[/] {problem}", highlight=False)
    if problems:
        raise _fail(f"{len(problems)} template(s) fail")
    console.print("[bold green]every template renders[/]")
