"""The simulated A/B of ``paynudge policy simulate``: run, plot and log to MLflow.

A held-out simulated population (its own seed) goes through the same decision-set code as any
logged data; every policy is then scored on its decisions by the world's ground truth
(:mod:`reminder_policy.simulated_ab`), the oracle included.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import pandas as pd

from paynudge.config import Settings
from paynudge.errors import DataError
from reminder_policy import baselines
from reminder_policy.dataset import Scorer, decision_set
from reminder_policy.pipeline import policy_distributions
from reminder_policy.pyfunc import PolicyModel
from reminder_policy.simulated_ab import METRICS, compare_policies, gap_closed, true_outcomes
from simulation.truth import GroundTruth
from simulation.world import make_config, simulate_world
from training.tracking import connect, experiment_id, start_run

AB_TABLE = "simulated_ab.csv"
AB_PLOT = "simulated_ab.png"


@dataclass(frozen=True)
class ABResult:
    """The comparison table, the share of the ladder-to-oracle gap closed, and the run."""

    table: pd.DataFrame
    gap_closed: float
    decisions: int
    run_id: str | None


def run_simulated_ab(
    policy: PolicyModel,
    settings: Settings,
    *,
    customers: int,
    months: int,
    seed: int,
    scorer: Scorer | None = None,
) -> tuple[pd.DataFrame, float, int]:
    """Compare the policy with the ladder, always-email, uniform and the oracle by the truth."""
    world = simulate_world(make_config(n_customers=customers, n_months=months, seed=seed))
    data = decision_set(
        world.tables, settings.policy, scorer=scorer, backend_url=settings.feature_backend,
        grace_days=settings.late_grace_days,
    )  # fmt: skip
    expected = list(policy.spec_["context_columns"])
    if list(data.contexts.columns) != expected:
        missing = sorted(set(expected) - set(data.contexts.columns))
        raise DataError(
            f"the policy expects context columns the simulated decisions lack: {missing[:5]} "
            "(train the late-payment and churn champions it was trained with)"
        )
    outcomes = true_outcomes(
        GroundTruth.from_world(world), data, settings.policy, world.tables["messages"]
    )
    policies = policy_distributions(policy.bandit_, data)
    policies["oracle"] = baselines.oracle(outcomes.expected_reward, data.mask)
    table = compare_policies(policies, data, outcomes, seed=seed)
    return table, gap_closed(table), len(data)


def plot_ab(table: pd.DataFrame, path: Path) -> Path:
    """One panel per metric: each policy's value with its 95% interval."""
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    for ax, metric in zip(axes.ravel(), METRICS, strict=True):
        values = table[metric]
        errors = [values - table[f"{metric}_low"], table[f"{metric}_high"] - values]
        ax.bar(table.index, values, yerr=errors, capsize=4, color="#4C72B0")
        ax.set_title(metric.replace("_", " "))
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle("Simulated A/B on held-out customers (ground truth, 95% intervals)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def log_ab(table: pd.DataFrame, gap: float, version: str, settings: Settings) -> str:
    """Log the table, plot and headline metrics to MLflow; return the run id."""
    client = connect(settings)
    name = settings.policy.registered_name
    experiment = experiment_id(client, name, settings)
    with start_run(client, experiment, "simulated_ab", {"policy_version": version}) as run:
        for policy, row in table.iterrows():
            for metric in METRICS:
                mlflow.log_metric(f"{metric}_{policy}", float(row[metric]))
        mlflow.log_metric("gap_closed", gap)
        with tempfile.TemporaryDirectory() as folder:
            csv = Path(folder) / AB_TABLE
            table.to_csv(csv)
            mlflow.log_artifact(str(csv))
            mlflow.log_artifact(str(plot_ab(table, Path(folder) / AB_PLOT)))
        return str(run.info.run_id)
