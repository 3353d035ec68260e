"""The ``paynudge`` command line: parse, call one library function, render with rich.

Library errors (:class:`paynudge.errors.PayNudgeError`) become one red line and exit code 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import typer
from rich.progress import Progress
from rich.table import Table

from dispatcher.cli import dispatch_app, tasks_app, templates_app
from paynudge.errors import PayNudgeError
from paynudge.monitoring_cli import explain, monitor_app, reports_app
from paynudge.policy_cli import policy_app
from paynudge.report_cli import report_app
from paynudge.serving_cli import score, serve
from paynudge.terminal import console, err_console, fail

if TYPE_CHECKING:
    from training.pipeline import TrainResult
    from training.registry import PromotionDecision

app = typer.Typer(
    name="paynudge",
    help="PayNudge: learn whether, when, how and with which offer to remind customers of bills.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


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


# --- training and the model registry: paynudge train, paynudge models (engineer B) ---

TABULAR = "tabular"
SHOWN_METRICS = ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_top_decile")


@app.command()
def train(
    model: str = typer.Argument(
        ..., help="late_payment, churn, send_time, or tabular (with --data and --label)."
    ),
    data: Path | None = typer.Option(None, help="tabular: the CSV or Parquet table to train on."),
    label: str | None = typer.Option(None, help="tabular: the label column."),
    positive: str | None = typer.Option(None, help="tabular: label value of the positive class."),
    test: Path | None = typer.Option(
        None, help="tabular: table to report metrics on (default: a stratified 25% holdout)."
    ),
    name: str | None = typer.Option(None, help="tabular: model name (default: the file name)."),
    truth: Path | None = typer.Option(
        None, help="send_time: simulated data set whose truth/ values the recommended hours."
    ),
    promote: bool = typer.Option(True, help="Apply the promotion rule after registering."),
) -> None:
    """Train, evaluate, log and register a model; promote it when it beats the champion."""
    from paynudge.config import get_settings
    from training.pipeline import train_model, train_tabular

    settings = get_settings()
    tabular_options = {"--data": data, "--label": label, "--positive": positive,
                       "--test": test, "--name": name}  # fmt: skip
    try:
        if model == TABULAR:
            if data is None or label is None:
                raise PayNudgeError("paynudge train tabular needs --data FILE and --label COLUMN")
            with console.status(f"training on {data}"):
                result = train_tabular(data, label, positive, test, name, settings, promote=promote)
        else:
            given = [option for option, value in tabular_options.items() if value is not None]
            if given:
                raise PayNudgeError(f"{', '.join(given)} only apply to `paynudge train tabular`")
            with console.status(f"training {model}"):
                result = train_model(model, settings, truth=truth, promote=promote)
    except PayNudgeError as error:
        raise fail(str(error)) from None
    console.print(training_table(result))
    if (line := open_rate_line(result.metrics)) is not None:
        console.print(line, highlight=False)
    console.print(f"run id: {result.run_id}", highlight=False)
    console.print(f"model URI: {result.model_uri}", highlight=False)
    if result.decision is not None:
        console.print(decision_line(result.decision), highlight=False)


def training_table(result: TrainResult) -> Table:
    """Test metrics of the model next to its baselines."""
    table = Table(title=f"{result.name}: test metrics")
    table.add_column("model")
    for metric in SHOWN_METRICS:
        table.add_column(metric, justify="right")
    for row, metrics in {"lightgbm": result.metrics, **result.baselines}.items():
        table.add_row(
            row, *(f"{metrics.get(metric, float('nan')):.4f}" for metric in SHOWN_METRICS)
        )
    return table


def open_rate_line(metrics: dict[str, float]) -> str | None:
    """The send-time model's value by the simulation's ground truth, when it was measured."""
    if "true_open_rate_model_hour" not in metrics:
        return None
    return (
        "true open rate of the chosen send hours: "
        f"model {metrics['true_open_rate_model_hour']:.3f}, "
        f"rule {metrics['true_open_rate_rule_hour']:.3f}, "
        f"global best hour ({metrics['global_best_hour']:.0f}:00) "
        f"{metrics['true_open_rate_global_best_hour']:.3f}, "
        f"logged hours {metrics['true_open_rate_logged_hour']:.3f}"
    )


def decision_line(decision: PromotionDecision) -> str:
    """One line saying whether the challenger became champion, and why."""
    interval = ""
    if decision.auc_difference is not None and decision.auc_interval is not None:
        low, high = decision.auc_interval
        interval = (
            f"; AUC difference {decision.auc_difference:+.4f} (95% CI {low:+.4f}..{high:+.4f})"
        )
    if decision.promoted:
        return (
            f"[green]champion[/]: {decision.name} v{decision.challenger_version} "
            f"({decision.reason}{interval})"
        )
    return (
        f"[yellow]challenger[/]: {decision.name} v{decision.challenger_version} stays challenger, "
        f"champion v{decision.champion_version} ({decision.reason}{interval})"
    )


models_app = typer.Typer(help="The model registry: versions, aliases, promotion.")
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list() -> None:
    """Every registered model version with its aliases, run and key test metrics."""
    from paynudge.config import get_settings
    from training.registry import KEY_METRICS, list_models

    try:
        summaries = list_models(get_settings())
    except PayNudgeError as error:
        raise fail(str(error)) from None
    if not summaries:
        console.print("no registered models yet: run `paynudge train late_payment`")
        return
    table = Table(title="registered models (test metrics)")
    table.add_column("model", overflow="fold")
    table.add_column("version", justify="right")
    table.add_column("aliases", overflow="fold")
    for metric in KEY_METRICS:
        table.add_column(metric, justify="right")
    table.add_column("run id", overflow="fold")
    for s in summaries:
        values = (f"{s.metrics[key]:.4f}" if key in s.metrics else "" for key in KEY_METRICS)
        table.add_row(s.name, s.version, " ".join(s.aliases), *values, s.run_id)
    console.print(table)


@models_app.command("promote")
def models_promote(
    name: str = typer.Argument(..., help="Registered model whose challenger to consider."),
    force: bool = typer.Option(False, help="Promote without comparing to the champion."),
) -> None:
    """Promote NAME's challenger to champion when it beats the champion on the same test data."""
    from paynudge.config import get_settings
    from training.registry import promote

    try:
        decision = promote(name, get_settings(), force=force)
    except PayNudgeError as error:
        raise fail(str(error)) from None
    console.print(decision_line(decision), highlight=False)


# --- experiments: paynudge tune (engineer C) ---


@app.command()
def tune(
    model: str = typer.Argument(..., help="Model spec to tune: late_payment, churn or send_time."),
    trials: int = typer.Option(20, min=1, help="Trials this process runs."),
    timeout: float | None = typer.Option(None, min=0, help="Stop starting trials after S seconds."),
    storage: str | None = typer.Option(None, help="Study storage URL (default: the setting)."),
    study: str | None = typer.Option(None, help="Study to create or join (MODEL-lightgbm)."),
    seed: int = typer.Option(0, help="Sampler seed; give each worker sharing a study its own."),
    threads: int = typer.Option(0, min=0, help="LightGBM threads per trial (0: all cores)."),
    output: Path | None = typer.Option(None, help="Folder for MODEL.yaml (experiments/configs)."),
) -> None:
    """Tune MODEL's LightGBM parameters with Optuna; write the best to experiments/configs."""
    from experiments.tuning import TuningConfig
    from experiments.tuning import tune as run_study
    from paynudge.config import get_settings

    try:
        result = run_study(
            model, get_settings(), trials=trials, timeout=timeout, storage=storage,
            study_name=study, output=output, config=TuningConfig(seed=seed, num_threads=threads),
        )  # fmt: skip
    except PayNudgeError as error:
        raise fail(str(error)) from None
    table = Table(title=f"{result.study_name}: best {result.objective} {result.best_value:.5f}")
    table.add_column("parameter")
    table.add_column("value", justify="right")
    for name, value in {**result.best_params, "num_boost_round": result.num_boost_round}.items():
        table.add_row(name, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)
    console.print(
        f"{result.finished} finished and {result.pruned} pruned trials in {result.storage}; "
        f"MLflow parent run {result.parent_run_id}; [green]wrote[/] {result.config_path}"
    )


app.add_typer(policy_app, name="policy")
app.add_typer(report_app, name="report")
app.add_typer(dispatch_app, name="dispatch")
app.add_typer(templates_app, name="templates")
app.add_typer(tasks_app, name="tasks")
app.command()(serve)
app.command()(score)
app.add_typer(monitor_app, name="monitor")
app.add_typer(reports_app, name="reports")
app.command("explain")(explain)

if __name__ == "__main__":  # pragma: no cover
    app()
