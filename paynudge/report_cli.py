"""``paynudge report``: the collection KPIs of a data set, optionally next to a baseline run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer
from rich.table import Table

from paynudge.errors import PayNudgeError
from paynudge.terminal import console, fail

report_app = typer.Typer(help="Reports for analysts: collection KPIs.")


@report_app.command("kpis")
def kpis(
    data: Path = typer.Option(..., help="Folder with invoices, payments, messages, ... tables."),
    out: Path | None = typer.Option(None, help="Output folder (default: HOME/reports/kpis)."),
    baseline: Path | None = typer.Option(
        None, help="A second data set (e.g. the static ladder on the same customers) to compare."
    ),
    as_of: str | None = typer.Option(None, help="ISO timestamp with zone; default: last event."),
) -> None:
    """On-time rate, DSO, overdue buckets, channel rates, automation, contact cost: HTML + CSV."""
    from dispatcher.kpi_report import write_kpi_report
    from dispatcher.kpi_tables import read_kpi_tables
    from dispatcher.kpis import compare_kpis, compute_kpis
    from paynudge.config import get_settings

    settings = get_settings()
    runs = {data.name or str(data): data}
    if baseline is not None:
        runs = {f"baseline: {baseline.name}": baseline, f"run: {data.name}": data}
    try:
        end = pd.Timestamp(as_of) if as_of else None
        reports = {
            name: compute_kpis(
                read_kpi_tables(folder),
                settings.policy.channel_costs,
                settings.kpis,
                as_of=end,
                grace_days=settings.late_grace_days,
            )
            for name, folder in runs.items()
        }
        files = write_kpi_report(
            reports, out if out is not None else settings.home / "reports" / "kpis"
        )
    except (PayNudgeError, ValueError) as error:
        raise fail(str(error)) from None
    table = Table(title="collection KPIs")
    summary = compare_kpis(reports)
    table.add_column("KPI")
    for run in summary.columns:
        table.add_column(str(run), justify="right")
    for metric, values in summary.iterrows():
        table.add_row(str(metric), *(_shown(value) for value in values))
    console.print(table)
    console.print(f"[green]wrote[/] {files.html} and {files.csv}")


def _shown(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, pd.Timestamp):
        return f"{value:%Y-%m-%d %H:%M} UTC"
    return str(value)
