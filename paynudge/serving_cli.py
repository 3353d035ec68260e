"""``paynudge serve`` and ``paynudge score``: the decision service and batch decisions (thin)."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from paynudge.errors import PayNudgeError

console = Console()
err_console = Console(stderr=True)
SERVICE = "serving.service:PayNudgeDecisions"
LOOPBACK_NAMES = ("localhost",)


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


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
    alias: str = typer.Option("champion", help="Registry alias of the models and the policy."),
) -> None:
    """Start the decision service (BentoML) on the registry's champions and the online store."""
    from paynudge.config import get_settings
    from serving.loading import missing_components
    from serving.service import DEV_MODE_ENV, required_token

    env = dict(os.environ)
    if dev:
        if not _loopback(host):
            raise _fail(f"--dev serves without a token: only on a loopback address, not {host}")
        os.environ[DEV_MODE_ENV] = env[DEV_MODE_ENV] = "1"
        get_settings.cache_clear()
    try:
        settings = get_settings()
        required_token(settings)
        missing = missing_components(settings, alias)
    except PayNudgeError as error:
        raise _fail(str(error)) from None
    if missing:
        raise _fail(
            f"no {alias} version of {', '.join(missing)} in {settings.mlflow_tracking_uri}; "
            "train them first (`make demo` does)"
        )
    working_dir = Path(__import__("serving").__file__).resolve().parents[1]
    command = [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", host,
               "--port", str(port), "--working-dir", str(working_dir)]  # fmt: skip
    console.print(f"serving decisions on http://{host}:{port} (OpenAPI at /docs.json)")
    raise typer.Exit(code=subprocess.run(command, env=env, check=False).returncode)


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
        raise _fail(str(error)) from None
    table = Table(title=f"{result.decisions:,} decisions -> {result.output}")
    table.add_column("action")
    table.add_column("decisions", justify="right")
    for action, count in result.actions.items():
        table.add_row(action, f"{count:,}")
    console.print(table)
