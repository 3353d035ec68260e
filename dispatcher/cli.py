"""``paynudge dispatch`` and ``paynudge templates``: a thin layer over the dispatcher library."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from paynudge.errors import PayNudgeError
from paynudge.terminal import console, err_console, fail

dispatch_app = typer.Typer(help="The reminder dispatcher: load invoices, run the workflow.")
templates_app = typer.Typer(help="Reminder templates: preview and check them.")


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
        raise fail(str(error)) from None
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
        if report.loop is not None:
            loop = report.loop
            posted = f"posted {loop.feedback.decisions:,} decisions' outcomes"
            if loop.feedback.error:
                posted += f" ([yellow]kept for the next pass:[/] {loop.feedback.error})"
            console.print(
                f"promises kept {loop.promises_kept:,}, broken {loop.promises_broken:,} | "
                f"no-response tasks {loop.silent_tasks:,} | {posted}",
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
        raise fail(str(error)) from None


@dispatch_app.command("status")
def status() -> None:
    """Messages by status, reminders by outcome, case tasks and invoices."""
    from dispatcher.cycle import status_counts
    from dispatcher.database import open_database
    from paynudge.config import get_settings

    try:
        counts = status_counts(open_database(get_settings()))
    except PayNudgeError as error:
        raise fail(str(error)) from None
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
        raise fail(str(error)) from None
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
        raise fail(f"{len(problems)} template(s) fail")
    console.print("[bold green]every template renders[/]")


@dispatch_app.command("simulate")
def simulate(
    months: int = typer.Option(1, min=1, help="Simulated months to run."),
    customers: int = typer.Option(500, min=10, help="Simulated customers."),
    seed: int = typer.Option(7, help="Seed of the world and its answers."),
) -> None:
    """Run the dispatcher against the simulated world (learned policy, then the static ladder
    on the same customers) and print their collection KPIs side by side."""
    from dispatcher.kpi_report import write_kpi_report
    from dispatcher.kpis import compare_kpis
    from dispatcher.simulate import run_simulation
    from paynudge.config import get_settings
    from paynudge.report_cli import _shown
    from serving.loading import load_components
    from simulation.world import make_config, simulate_world

    settings = get_settings()
    try:
        components = load_components(settings)
        world = simulate_world(make_config(n_customers=customers, n_months=months + 1, seed=seed))
        runs = {
            name: run_simulation(world, settings, components, months, name, ladder, seed)
            for name, ladder in (("policy", False), ("static ladder", True))
        }
        reports = {name: run.kpis for name, run in runs.items()}
        files = write_kpi_report(reports, settings.reports_directory / "kpis")
    except PayNudgeError as error:
        raise fail(str(error)) from None
    table = Table(title=f"collection KPIs: {customers:,} simulated customers, {months} month(s)")
    summary = compare_kpis(reports)
    table.add_column("KPI")
    for run in summary.columns:
        table.add_column(str(run), justify="right")
    for metric, values in summary.iterrows():
        table.add_row(str(metric), *(_shown(value) for value in values))
    console.print(table)
    for name, run in runs.items():
        console.print(f"{name}: world events {run.events}", highlight=False)
    console.print(f"[green]wrote[/] {files.html} and {files.csv}")


tasks_app = typer.Typer(help="Case tasks for case managers: list, show, close, export.")


@tasks_app.command("list")
def tasks_list(
    status: str | None = typer.Option("open", help="open, closed (empty: all)."),
) -> None:
    """Case tasks, newest first."""
    from dispatcher.database import open_database
    from dispatcher.tasks import task_frame
    from paynudge.config import get_settings

    try:
        tasks = task_frame(open_database(get_settings()), status or None)
    except PayNudgeError as error:
        raise fail(str(error)) from None
    table = Table(title=f"case tasks ({len(tasks):,})")
    for column in ("task_id", "invoice_id", "stage", "reason", "status", "opened_at"):
        table.add_column(column)
    for row in tasks.itertuples():
        table.add_row(row.task_id, row.invoice_id, row.stage, row.reason, row.status,
                      f"{row.opened_at:%Y-%m-%d %H:%M}")  # fmt: skip
    console.print(table)


@tasks_app.command("show")
def tasks_show(task_id: str = typer.Argument(..., help="The task's id.")) -> None:
    """One task with its invoice and the customer's replies."""
    from dispatcher.database import open_database
    from dispatcher.tasks import task_detail
    from paynudge.config import get_settings

    try:
        detail = task_detail(open_database(get_settings()), task_id)
    except PayNudgeError as error:
        raise fail(str(error)) from None
    for key, value in detail.items():
        console.print(f"[bold]{key}[/]: {value}", highlight=False, markup=True)


@tasks_app.command("close")
def tasks_close(
    task_id: str = typer.Argument(..., help="The task's id."),
    note: str = typer.Option("", help="What was done (kept in the audit log)."),
) -> None:
    """Close an open task."""
    from datetime import UTC, datetime

    from dispatcher.database import open_database
    from dispatcher.tasks import close_task
    from paynudge.config import get_settings

    try:
        closed = close_task(open_database(get_settings()), task_id, datetime.now(UTC), note)
    except PayNudgeError as error:
        raise fail(str(error)) from None
    console.print("[green]closed[/]" if closed else "[yellow]already closed[/]")


@tasks_app.command("export")
def tasks_export(
    out: Path = typer.Option(Path("case_tasks.csv"), help="CSV file to write."),
    status: str | None = typer.Option(None, help="open or closed (default: all)."),
) -> None:
    """Export tasks as CSV (cells that look like formulas are quoted)."""
    from dispatcher.database import open_database
    from dispatcher.tasks import export_tasks, task_frame
    from paynudge.config import get_settings

    try:
        path = export_tasks(task_frame(open_database(get_settings()), status), out)
    except PayNudgeError as error:
        raise fail(str(error)) from None
    console.print(f"[green]wrote[/] {path}")
