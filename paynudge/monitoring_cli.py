"""``paynudge monitor``, ``explain`` and ``reports``: a thin layer over ``monitoring/``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import typer
from rich.table import Table

from paynudge.errors import PayNudgeError
from paynudge.terminal import console, fail

if TYPE_CHECKING:
    from monitoring.publish import PublishedCheck

monitor_app = typer.Typer(help="Drift and performance of the models; retraining triggers.")
reports_app = typer.Typer(help="The analysts' reports index.")


def parse_date(text: str | None, option: str) -> pd.Timestamp | None:
    """A date or timestamp (UTC unless it says otherwise), or a clear error naming ``option``."""
    if text is None:
        return None
    try:
        value = pd.Timestamp(text)
    except ValueError:
        raise PayNudgeError(
            f"{option}: expected a date (2025-03-01) or timestamp, found {text!r}"
        ) from None
    return value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")


def check_table(check: PublishedCheck) -> Table:
    """The headline numbers of a drift check."""
    s = check.result.summary
    table = Table(title=f"{s.model} v{s.version}: decisions since {s.window[0][:10]}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("decisions (sampled)", f"{s.current_rows:,} ({s.sampled_rows:,})")
    table.add_row("reference rows", f"{s.reference_rows:,}")
    table.add_row(
        "drifted features",
        f"{len(s.drifted_features)} of {len(s.features)} ({s.drifted_share:.0%})",
    )
    table.add_row("score (prediction) drift", f"{s.prediction.score:.3f}")
    if s.label is not None:
        table.add_row("label drift", f"{s.label.score:.3f}")
    table.add_row("labelled decisions", f"{s.labelled_rows:,}")
    late = "" if s.current_late_rate is None else f"{s.current_late_rate:.3f}"
    table.add_row("late rate: training / now", f"{s.reference_late_rate:.3f} / {late}")
    if s.current_auc is not None and s.reference_auc is not None:
        table.add_row("ROC-AUC: test / now", f"{s.reference_auc:.4f} / {s.current_auc:.4f}")
    return table


def _show(check: PublishedCheck) -> None:
    console.print(check_table(check))
    for alarm in check.alarms:
        console.print(
            f"[bold red]alarm[/] {alarm.kind}: {alarm.evidence}", highlight=False, soft_wrap=True
        )
    if not check.alarms:
        console.print("[green]no alarm[/]: the thresholds in \\[monitoring] hold")
    console.print(
        f"report: {check.folder / 'drift.html'} (MLflow run {check.run_id})",
        highlight=False,
        soft_wrap=True,
    )


@monitor_app.command("drift")
def monitor_drift(
    model: str = typer.Option("late_payment", help="Model whose champion to monitor."),
    since: str = typer.Option(..., help="First decision date of the window (UTC unless given)."),
    until: str | None = typer.Option(None, help="End of the window (exclusive); default: now."),
    log: Path | None = typer.Option(
        None, help="Decision log (default: HOME/serving/decisions.db)."
    ),
) -> None:
    """Evidently drift (and, with labels, performance) report of the decisions since DATE."""
    from monitoring.checks import run_drift
    from paynudge.config import get_settings

    try:
        with console.status("drift report"):
            check = run_drift(
                model,
                get_settings(),
                parse_date(since, "--since"),
                parse_date(until, "--until"),
                log,
            )
    except PayNudgeError as error:
        raise fail(str(error)) from None
    _show(check)


@monitor_app.command("check")
def monitor_check(
    model: str = typer.Option("late_payment", help="Model whose champion to check."),
    since: str = typer.Option(..., help="First decision date of the window (UTC unless given)."),
    until: str | None = typer.Option(None, help="End of the window (exclusive); default: now."),
    log: Path | None = typer.Option(
        None, help="Decision log (default: HOME/serving/decisions.db)."
    ),
    retrain: bool = typer.Option(False, help="On an alarm, train a challenger on fresh data."),
    data: Path | None = typer.Option(None, help="Dataset to retrain on (default: the built one)."),
) -> None:
    """Raise the retraining alarms; --retrain trains a challenger, promoted only by the rule."""
    from monitoring.checks import run_check
    from paynudge.cli import decision_line
    from paynudge.config import get_settings

    try:
        with console.status("checking"):
            outcome = run_check(
                model,
                get_settings(),
                parse_date(since, "--since"),
                parse_date(until, "--until"),
                log,
                retrain=retrain,
                data=data,
            )
    except PayNudgeError as error:
        raise fail(str(error)) from None
    _show(outcome.check)
    if outcome.retrained is not None:
        result = outcome.retrained
        console.print(
            f"retrained: {result.model_uri} (run {result.run_id})", highlight=False, soft_wrap=True
        )
        if result.decision is not None:
            console.print(decision_line(result.decision), highlight=False, soft_wrap=True)
    elif outcome.check.alarms:
        console.print("run again with --retrain to train a challenger on fresh data")


@monitor_app.command("shadow")
def monitor_shadow(
    data: Path = typer.Option(..., help="Data set whose invoices to log as shadow decisions."),
    since: str | None = typer.Option(None, help="Only invoices issued from this date."),
    log: Path | None = typer.Option(
        None, help="Decision log (default: HOME/serving/decisions.db)."
    ),
) -> None:
    """Log a data set's invoices as decisions of the late-payment champion (no service needed)."""
    from monitoring.reference import load_monitored
    from monitoring.replay import shadow_data_set
    from paynudge.config import get_settings
    from paynudge.validation import load_dataset
    from serving.decision_log import default_log_path

    settings = get_settings()
    target = log if log is not None else default_log_path(settings)
    try:
        with console.status("scoring and logging"):
            model = load_monitored("late_payment", settings)
            count = shadow_data_set(
                load_dataset(data),
                model,
                target,
                parse_date(since, "--since"),
                backend_url=settings.feature_backend,
                grace_days=settings.late_grace_days,
            )
    except PayNudgeError as error:
        raise fail(str(error)) from None
    console.print(
        f"[green]logged[/] {count:,} shadow decisions of {model.label} in {target}",
        soft_wrap=True,
    )


def explain(
    model: str = typer.Argument("late_payment", help="Model to explain."),
    version: list[str] = typer.Option([], help="Version(s) to explain (default: the champion)."),
    all_versions: bool = typer.Option(False, "--all-versions", help="Every registered version."),
    invoice: str | None = typer.Option(
        None, help="Also explain this invoice (waterfall, reasons)."
    ),
    customer: str | None = typer.Option(None, help="Also explain this customer's latest invoice."),
) -> None:
    """SHAP reports: global and segments per version; local for one invoice or customer."""
    from monitoring.explain import explain_versions
    from paynudge.config import get_settings

    try:
        with console.status("SHAP reports"):
            reports = explain_versions(
                model, get_settings(), version, all_versions, invoice, customer
            )
    except PayNudgeError as error:
        raise fail(str(error)) from None
    for report in reports:
        console.print(f"[green]wrote[/] {report}", highlight=False, soft_wrap=True)


@reports_app.command("index")
def reports_index() -> None:
    """Write HOME/reports/index.html linking the latest drift, SHAP, KPI and policy reports."""
    from monitoring.reports_index import write_index
    from paynudge.config import get_settings

    try:
        path = write_index(get_settings())
    except PayNudgeError as error:
        raise fail(str(error)) from None
    console.print(f"[green]reports index[/]: {path.absolute()}", highlight=False, soft_wrap=True)
