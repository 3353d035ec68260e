"""``paynudge policy``: train, evaluate offline and simulate the reminder policy (thin layer)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import typer
from rich.table import Table

from paynudge.errors import PayNudgeError
from paynudge.terminal import console, fail

if TYPE_CHECKING:
    from paynudge.config import Settings
    from reminder_policy.dataset import DecisionSet, Scorer
    from reminder_policy.pipeline import PolicyTrainResult

policy_app = typer.Typer(help="The reminder policy: learn, evaluate offline, simulate an A/B.")


def _scorer(settings: Settings, use_scores: bool) -> tuple[Scorer | None, dict[str, str]]:
    from reminder_policy.scores import champion_versions, registry_scorer

    if not use_scores:
        return None, {}
    versions = champion_versions(settings)
    if versions is None:
        console.print(
            "[yellow]no late_payment and churn champions: the context has no model scores[/]"
        )
        return None, {}
    return registry_scorer(settings), versions


def _decisions(data: Path | None, settings: Settings, scorer: Scorer | None) -> DecisionSet:
    from paynudge.validation import load_dataset
    from reminder_policy.dataset import decision_set

    tables = load_dataset(data if data is not None else settings.default_data_dir)
    with console.status("building decision contexts"):
        return decision_set(
            tables, settings.policy, scorer=scorer, backend_url=settings.feature_backend,
            grace_days=settings.late_grace_days,
        )  # fmt: skip


def evaluation_table(evaluation: pd.DataFrame, title: str) -> Table:
    """Estimated policy values with their intervals, one row per policy and estimator."""
    table = Table(title=title)
    for column in ("policy", "estimator", "value", "95% interval"):
        table.add_column(column, justify="left" if column in ("policy", "estimator") else "right")
    for row in evaluation.itertuples():
        table.add_row(
            str(row.policy), str(row.estimator), f"{row.value:.4f}",
            f"{row.low:.4f} .. {row.high:.4f}",
        )  # fmt: skip
    return table


@policy_app.command("train")
def policy_train(
    data: Path | None = typer.Option(None, help="Data set folder (default: PAYNUDGE_DATA_DIR)."),
    test_share: float = typer.Option(0.25, min=0.05, max=0.9, help="Latest share to evaluate on."),
    seed: int = typer.Option(0, help="Seed of the learner and the evaluation."),
    scores: bool = typer.Option(True, help="Add the late-payment and churn champions' scores."),
) -> None:
    """Learn the policy from the logged decisions, evaluate it offline, register it."""
    from paynudge.config import get_settings
    from reminder_policy.pipeline import train_policy

    settings = get_settings()
    try:
        scorer, versions = _scorer(settings, scores)
        decisions = _decisions(data, settings, scorer)
        with console.status(f"learning from {len(decisions):,} logged decisions"):
            result = train_policy(
                decisions, settings, test_share=test_share, seed=seed, score_versions=versions
            )
    except PayNudgeError as error:
        raise fail(str(error)) from None
    _report(result)


def _report(result: PolicyTrainResult) -> None:
    console.print(
        evaluation_table(result.evaluation, f"offline evaluation on {result.n_test:,} decisions")
    )
    verdict = "[green]promoted to champion[/]" if result.promoted else "[yellow]kept challenger[/]"
    console.print(
        f"run {result.run_id}; registered {result.model_uri} ({result.n_train:,} decisions "
        f"learnt from); {verdict}: {result.reason}",
        highlight=False,
    )


@policy_app.command("update")
def policy_update(
    data: Path | None = typer.Option(None, help="Data set folder (default: PAYNUDGE_DATA_DIR)."),
    test_share: float = typer.Option(0.25, min=0.05, max=0.9, help="Latest share to compare on."),
    seed: int = typer.Option(0, help="Seed of the evaluation."),
) -> None:
    """Online update: the champion keeps learning from decisions made since it was trained."""
    from paynudge.config import get_settings
    from reminder_policy.pipeline import update_policy
    from reminder_policy.policy_registry import load_policy

    settings = get_settings()
    try:
        policy, _ = load_policy(settings)
        scorer, _ = _scorer(settings, bool(policy.spec_.get("scores")))
        decisions = _decisions(data, settings, scorer)
        with console.status("learning from the newer decisions"):
            result = update_policy(decisions, settings, test_share=test_share, seed=seed)
    except PayNudgeError as error:
        raise fail(str(error)) from None
    _report(result)


@policy_app.command("evaluate-offline")
def policy_evaluate_offline(
    data: Path | None = typer.Option(None, help="Data set folder (default: PAYNUDGE_DATA_DIR)."),
    alias: str = typer.Option("champion", help="Registry alias of the policy to evaluate."),
    seed: int = typer.Option(0, help="Seed of the reward model and the bootstrap."),
) -> None:
    """Estimate the registered policy's value on logged decisions (IPW, SNIPW, DM, DR)."""
    from paynudge.config import get_settings
    from reminder_policy.pipeline import evaluate_offline
    from reminder_policy.policy_registry import load_policy

    settings = get_settings()
    try:
        policy, version = load_policy(settings, alias)
        scorer, _ = _scorer(settings, bool(policy.spec_.get("scores")))
        decisions = _decisions(data, settings, scorer)
        with console.status("fitting the cross-fitted reward model"):
            evaluation = evaluate_offline(decisions, policy.bandit_, settings.policy, seed)
    except PayNudgeError as error:
        raise fail(str(error)) from None
    console.print(evaluation_table(evaluation, f"{version} on {len(decisions):,} logged decisions"))


@policy_app.command("simulate")
def policy_simulate(
    customers: int = typer.Option(5_000, min=100, help="Held-out simulated customers."),
    months: int = typer.Option(6, min=2, max=60, help="Months to simulate."),
    seed: int = typer.Option(101, help="Seed of the held-out world (not the training world's)."),
    alias: str = typer.Option("champion", help="Registry alias of the learned policy."),
) -> None:
    """Simulated A/B on held-out customers: learned policy vs ladder, e-mail, uniform, oracle."""
    from paynudge.config import get_settings
    from reminder_policy.ab_report import log_ab, run_simulated_ab
    from reminder_policy.policy_registry import load_policy
    from reminder_policy.simulated_ab import METRICS

    settings = get_settings()
    try:
        policy, version = load_policy(settings, alias)
        scorer, _ = _scorer(settings, bool(policy.spec_.get("scores")))
        with console.status(f"simulating {customers:,} held-out customers"):
            table, gap, n = run_simulated_ab(
                policy, settings, customers=customers, months=months, seed=seed, scorer=scorer
            )
        run_id = log_ab(table, gap, version, settings)
    except PayNudgeError as error:
        raise fail(str(error)) from None
    shown = Table(title=f"simulated A/B: {version} on {n:,} held-out decisions (95% intervals)")
    shown.add_column("policy")
    for metric in METRICS:
        shown.add_column(metric.replace("_", " "), justify="right")
    for policy_name, row in table.iterrows():
        shown.add_row(
            str(policy_name),
            *(f"{row[m]:.3f} [{row[f'{m}_low']:.3f}, {row[f'{m}_high']:.3f}]" for m in METRICS),
        )
    console.print(shown, width=150)
    console.print(
        f"the learned policy closes {gap:.0%} of the ladder-to-oracle reward gap; "
        f"MLflow run {run_id}",
        highlight=False,
    )
