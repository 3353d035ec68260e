"""``paynudge serve`` and ``paynudge score``: the decision service and batch decisions (thin)."""

from __future__ import annotations

import ipaddress
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from paynudge.errors import PayNudgeError
from paynudge.terminal import console, fail

if TYPE_CHECKING:
    from paynudge.config import Settings

LOOPBACK_NAMES = ("localhost",)


def _loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (loopback by default)."),
    port: int = typer.Option(3000, min=1, max=65535, help="Port to listen on."),
    dev: bool = typer.Option(
        False, "--dev", help="Serve without an API token (loopback addresses only)."
    ),
    sample: int = typer.Option(
        0, min=0, max=50, help="Instead of serving: start, show this many decisions, stop."
    ),
    data: Path | None = typer.Option(None, help="Data set the --sample invoices come from."),
    seed: int = typer.Option(7, help="Seed of the --sample draw and decisions."),
) -> None:
    """Start the decision service (BentoML) on the registry's champions and the online store."""
    from paynudge.config import get_settings
    from serving.loading import missing_components
    from serving.service import DEV_MODE_ENV, required_token
    from serving.showcase import serve_command

    env = dict(os.environ)
    if dev:
        if not _loopback(host):
            raise fail(f"--dev serves without a token: only on a loopback address, not {host}")
        os.environ[DEV_MODE_ENV] = env[DEV_MODE_ENV] = "1"
        get_settings.cache_clear()
    try:
        settings = get_settings()
        if not sample:
            required_token(settings)
        missing = missing_components(settings)
    except PayNudgeError as error:
        raise fail(str(error)) from None
    if missing:
        raise fail(
            f"no champion version of {', '.join(missing)} in {settings.mlflow_tracking_uri}; "
            "train them first (`make demo` does)"
        )
    if sample:
        _show_sample(settings, data, sample, seed)
        return
    console.print(f"serving decisions on http://{host}:{port} (OpenAPI at /docs.json)")
    raise typer.Exit(code=subprocess.run(serve_command(host, port), env=env).returncode)


def _show_sample(settings: Settings, data: Path | None, n: int, seed: int) -> None:
    from paynudge.validation import load_dataset
    from serving.showcase import sample_decisions

    try:
        tables = load_dataset(data if data is not None else settings.default_data_dir)
        with console.status("starting the decision service and asking it"):
            requests, decisions = sample_decisions(settings, tables, n, seed)
    except PayNudgeError as error:
        raise fail(str(error)) from None
    console.print(f"[bold]{len(decisions)} decisions of the live service (explain: true)[/]")
    for request, decision in zip(requests, decisions, strict=True):
        when = (
            decision.send_at_local.strftime("%a %d %b %H:%M %Z") if decision.send_at_local else ""
        )
        console.print(
            f"- {request.invoice_id} (late-payment risk {decision.late_payment_probability:.0%}, "
            f"churn {decision.churn_probability:.0%}): [bold]{decision.action}[/] {when} "
            f"(propensity {decision.propensity:.2f}, expected reward "
            f"{decision.expected_reward:.2f})",
            highlight=False,
        )
        for reason in decision.explanation or []:
            console.print(f"    {reason.sentence}", highlight=False)


def score(
    input: Path = typer.Option(..., "--input", help="Requests: CSV, Parquet or JSON lines."),
    output: Path = typer.Option(..., "--output", help="Decisions: CSV, Parquet or JSON lines."),
    seed: int | None = typer.Option(None, min=0, help="Same seed and inputs: same decisions."),
    explain: bool = typer.Option(False, "--explain", help="Add the late-payment score's reasons."),
    log: bool = typer.Option(True, help="Append the decisions to the decision log."),
    alias: str = typer.Option("champion", help="Registry alias of the models and the policy."),
) -> None:
    """Batch decisions from a file through the same decision function as the service."""
    from paynudge.config import get_settings
    from serving.batch import score_file
    from serving.decision_log import DecisionLog, default_log_path
    from serving.loading import load_components

    try:
        settings = get_settings()
        with console.status("loading the models and the policy"):
            components = load_components(settings, alias)
        decision_log = DecisionLog(default_log_path(settings)) if log else None
        result = score_file(input, output, components, decision_log, explain=explain, seed=seed)
    except PayNudgeError as error:
        raise fail(str(error)) from None
    table = Table(title=f"{result.decisions:,} decisions -> {result.output}")
    table.add_column("action")
    table.add_column("decisions", justify="right")
    for action, count in result.actions.items():
        table.add_row(action, f"{count:,}")
    console.print(table)
