"""The ``paynudge`` command line: parse, call one library function, render with rich.

Library errors (:class:`paynudge.errors.PayNudgeError`) become one red line and exit code 1.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from paynudge.errors import PayNudgeError

app = typer.Typer(
    name="paynudge",
    help="PayNudge: learn whether, when, how and with which offer to remind customers of bills.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    """Print ``message`` as one red line and return the exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


@app.command()
def simulate(
    customers: int = typer.Option(20_000, min=1, help="Number of customers in the population."),
    months: int = typer.Option(18, min=1, max=120, help="Billing months to simulate."),
    seed: int = typer.Option(7, help="Random seed; the same seed gives the same world."),
    out: Path | None = typer.Option(None, help="Output folder (default: PAYNUDGE_HOME/data)."),
    start: str = typer.Option("2024-01-01", help="First billing month (YYYY-MM-DD)."),
) -> None:
    """Simulate a billing population and write its raw tables as Parquet."""
    from paynudge.config import get_settings
    from simulation.summary import summarise
    from simulation.world import make_config, simulate_world, write_world

    try:
        target = out if out is not None else get_settings().default_data_dir
        config = make_config(n_customers=customers, n_months=months, seed=seed, start=start)
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(f"simulating {customers:,} customers x {months} months", total=1)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            world = simulate_world(config, progress=advance)
        write_world(world, target)
    except PayNudgeError as error:
        raise fail(str(error)) from None
    console.print(f"[green]wrote[/] {target} ({len(world.tables['invoices']):,} invoices)")
    console.print(summarise(world.tables))


@app.command()
def validate(
    directory: Path = typer.Argument(..., help="Folder with customers, invoices, ... tables."),
) -> None:
    """Check a data set (Parquet or CSV tables) against PayNudge's data contracts."""
    from paynudge.validation import validate_dataset

    try:
        report = validate_dataset(directory)
    except PayNudgeError as error:
        raise fail(str(error)) from None
    counts = Table(title=f"tables in {directory}")
    counts.add_column("table")
    counts.add_column("rows", justify="right")
    for table, rows in report.row_counts.items():
        counts.add_row(table, f"{rows:,}")
    console.print(counts)
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    if report.ok:
        console.print("[bold green]valid[/]: every table meets its contract")
        return
    for problem in report.problems:
        err_console.print(f"[red]✗[/] {problem}", highlight=False)
    raise fail(f"{len(report.problems)} problem(s) found in {directory}")


features_app = typer.Typer(help="Build point-in-time datasets and serve customer profiles.")
app.add_typer(features_app, name="features")


@features_app.command("build")
def features_build(
    data: Path | None = typer.Option(None, help="Data set folder (default: PAYNUDGE_DATA_DIR)."),
    out: Path | None = typer.Option(None, help="Output folder (default: PAYNUDGE_FEATURES_DIR)."),
    as_of: str | None = typer.Option(None, help="Data end (ISO timestamp); default: last event."),
    only: list[str] = typer.Option([], help="Build only these datasets (repeatable)."),
) -> None:
    """Build the late_payment, churn and send_time datasets and the customer profiles."""
    from features.datasets import DATASETS, build_datasets
    from features.profiles import build_profiles
    from paynudge.config import get_settings
    from paynudge.validation import load_dataset

    settings = get_settings()
    source = data if data is not None else settings.default_data_dir
    target = out if out is not None else settings.features_directory
    try:
        end = parse_instant(as_of, "--as-of") if as_of else None
        tables = load_dataset(source)
        with console.status("building datasets"):
            manifests = build_datasets(
                tables,
                target,
                backend_url=settings.feature_backend,
                grace_days=settings.late_grace_days,
                as_of=end,
                which=only or DATASETS,
            )
            profiles = build_profiles(
                tables, target, backend_url=settings.feature_backend,
                grace_days=settings.late_grace_days,
            )  # fmt: skip
    except PayNudgeError as error:
        raise fail(str(error)) from None
    table = Table(title=f"datasets in {target}")
    for column in ("dataset", "rows", "censored", "from", "to", "features"):
        table.add_column(column)
    for m in manifests:
        first, last = (moment[:10] for moment in m.time_range)
        table.add_row(
            m.name, f"{m.rows:,}", f"{m.censored_rows:,}", first, last, str(len(m.features))
        )
    console.print(table)
    console.print(f"customer profiles: {profiles.customers:,} as of {profiles.as_of}")


@features_app.command("materialize")
def features_materialize() -> None:
    """Load the latest customer profiles into the Feast online store."""
    from features.store import materialize

    try:
        result = materialize()
    except PayNudgeError as error:
        raise fail(str(error)) from None
    console.print(
        f"[green]materialized[/] {result.customers:,} customer profiles ({result.features} "
        f"features, as of {result.as_of_max:%Y-%m-%d %H:%M} UTC) into the "
        f"{result.online_store} online store in {result.seconds:.1f} s"
    )


def parse_instant(text: str, option: str) -> pd.Timestamp:
    """An ISO timestamp with a time zone, or a clear error naming ``option``."""
    try:
        value = pd.Timestamp(text)
    except ValueError:
        raise PayNudgeError(f"{option}: expected an ISO timestamp, found {text!r}") from None
    if value.tzinfo is None:
        raise PayNudgeError(f"{option}: expected a time zone (e.g. {text}Z), found none")
    return value.tz_convert("UTC")


if __name__ == "__main__":  # pragma: no cover
    app()
