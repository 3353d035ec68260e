"""The policy in MLflow: log a run, register it as ``challenger``, promote by the rule, load it.

Promotion rule: a new version becomes ``champion`` when there is none, or when its doubly robust
(DR) value on the new version's test decisions is above the champion's on the same decisions;
the decision reports the difference with its 95% bootstrap interval. Policies are loaded only
from our own registry, by alias.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from paynudge.config import Settings
from paynudge.errors import PayNudgeError
from reminder_policy import ope
from reminder_policy.dataset import DecisionSet
from reminder_policy.learner import ContextualBandit
from reminder_policy.pyfunc import PolicyModel, log_policy_model
from training import registry
from training.tracking import connect, experiment_id, start_run

OPE_TABLE = "offline_evaluation.csv"
SETTINGS_FILE = "policy_settings.json"
BOOTSTRAP_DRAWS = 400


@dataclass(frozen=True)
class LoggedPolicy:
    run_id: str
    version: str


def log_policy_run(
    bandit: ContextualBandit,
    spec: dict[str, object],
    train: DecisionSet,
    test: DecisionSet,
    evaluation: pd.DataFrame,
    settings: Settings,
    kind: str,
) -> LoggedPolicy:
    """One MLflow run with parameters, OPE metrics and table, settings and the pyfunc policy;
    the policy registered as the new challenger."""
    client = connect(settings)
    name = settings.policy.registered_name
    experiment = experiment_id(client, name, settings)
    with start_run(client, experiment, "contextual_bandit", {"kind": kind}) as run:
        params = {k: v for k, v in bandit.get_params().items() if np.isscalar(v)}
        mlflow.log_params(
            {**params, "n_train": len(train), "n_test": len(test),
             "context_columns": len(train.contexts.columns),
             "trained_until": spec["trained_until"]}
        )  # fmt: skip
        for row in evaluation.itertuples():
            mlflow.log_metric(f"{row.estimator}_{row.policy}", float(row.value))
        with tempfile.TemporaryDirectory() as folder:
            table = Path(folder) / OPE_TABLE
            evaluation.to_csv(table, index=False)
            mlflow.log_artifact(str(table))
            stored = Path(folder) / SETTINGS_FILE
            stored.write_text(json.dumps(settings.policy.model_dump(), indent=2))
            mlflow.log_artifact(str(stored))
        info = log_policy_model(bandit, spec, train.contexts.head(5))
    version = registry.register(client, name, info.model_uri)
    return LoggedPolicy(run_id=run.info.run_id, version=str(version.version))


def load_policy(settings: Settings, alias: str = registry.CHAMPION) -> tuple[PolicyModel, str]:
    """The registered policy holding ``alias`` (from our registry only) and its version."""
    client = connect(settings)
    name = settings.policy.registered_name
    version = registry.version_by_alias(client, name, alias)
    if version is None:
        raise PayNudgeError(
            f"no {alias} version of {name!r} in {settings.mlflow_tracking_uri}; "
            "train one with `paynudge policy train`"
        )
    model = mlflow.pyfunc.load_model(f"models:/{name}@{alias}").unwrap_python_model()
    assert isinstance(model, PolicyModel)
    return model, f"{name}/{version.version}"


def dr_difference(
    challenger: np.ndarray, champion: np.ndarray, data: DecisionSet, q_hat: np.ndarray, seed: int
) -> tuple[float, float, float]:
    """DR value of ``challenger`` minus ``champion`` on the same decisions, with its interval."""
    logged = data.logged
    arrays = {
        "reward": logged.reward, "action": logged.action, "pscore": logged.pscore,
        "estimated_rewards": q_hat,
    }  # fmt: skip
    diff = (
        ope.dr_rounds(action_dist=challenger, **arrays).rounds()  # type: ignore[arg-type]
        - ope.dr_rounds(action_dist=champion, **arrays).rounds()  # type: ignore[arg-type]
    )
    rng = np.random.default_rng(seed)
    draws = diff[rng.integers(0, len(diff), size=(BOOTSTRAP_DRAWS, len(diff)))].mean(axis=1)
    low, high = np.quantile(draws, [0.025, 0.975])
    return float(diff.mean()), float(low), float(high)


def promote_policy(
    version: str,
    learned: np.ndarray,
    test: DecisionSet,
    q_hat: np.ndarray,
    settings: Settings,
    seed: int = 0,
) -> tuple[bool, str]:
    """Apply the promotion rule to ``version`` (whose action distribution on ``test`` is
    ``learned``); return whether it became champion and why."""
    client = connect(settings)
    name = settings.policy.registered_name
    challenger = client.get_model_version(name, version)
    if registry.version_by_alias(client, name, registry.CHAMPION) is None:
        registry.move_champion(client, challenger, "first version")
        return True, "first version: no champion yet"
    incumbent, incumbent_version = load_policy(settings)
    columns = list(incumbent.spec_["context_columns"])
    missing = [column for column in columns if column not in test.contexts.columns]
    if missing:
        return False, f"{incumbent_version} needs context columns {missing[:3]}: not comparable"
    champion = incumbent.bandit_.action_distribution(test.contexts[columns].to_numpy(), test.mask)
    diff, low, high = dr_difference(learned, champion, test, q_hat, seed)
    reason = (
        f"DR value difference vs {incumbent_version} {diff:+.4f} "
        f"(95% interval {low:+.4f} to {high:+.4f})"
    )
    if diff > 0:
        registry.move_champion(client, challenger, reason)
        return True, reason
    return False, reason
