"""Train, evaluate and register the reminder policy: the library behind ``paynudge policy``.

:func:`train_policy` learns the contextual bandit offline from the logged decisions of a data
set (the earlier ``1 - test_share`` of them by decision time), estimates its value and the
baselines' on the latest decisions with off-policy estimators (IPW, SNIPW, DM, DR with a
cross-fitted LightGBM reward model), logs everything to MLflow and registers the policy as the
``challenger`` of ``reminder_policy``. Promotion rule: the challenger becomes ``champion`` when
there is none, or when its DR value on the challenger's test decisions is above the champion's
on the same decisions (the bootstrap interval of the difference is reported).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from paynudge.config import PolicySettings, Settings
from paynudge.errors import PayNudgeError
from reminder_policy import baselines, ope
from reminder_policy.actions import ACTION_NAMES, ActionSpace
from reminder_policy.dataset import DecisionSet
from reminder_policy.learner import ContextualBandit
from reminder_policy.pyfunc import MODEL_NAME, PolicyModel, log_policy_model
from reminder_policy.reward_model import CrossFittedRewardModel
from training import registry
from training.tracking import connect, experiment_id

OPE_TABLE = "offline_evaluation.csv"
TEST_DECISIONS = "test_decisions.parquet"


@dataclass(frozen=True)
class PolicyTrainResult:
    """The run, the registered version, the offline evaluation and the promotion outcome."""

    run_id: str
    model_uri: str
    version: str
    promoted: bool
    reason: str
    evaluation: pd.DataFrame
    n_train: int
    n_test: int


def split_by_time(data: DecisionSet, test_share: float) -> tuple[DecisionSet, DecisionSet]:
    """Earlier decisions to learn from, the latest ``test_share`` to evaluate on."""
    decided = data.logged.decisions["decided_at"]
    cut = decided.quantile(1.0 - test_share)
    test = (decided > cut).to_numpy()
    return data.subset(~test), data.subset(test)


def fit_policy(train: DecisionSet, settings: PolicySettings, seed: int = 0) -> ContextualBandit:
    """The contextual bandit learned offline from the logged decisions of ``train``."""
    space = ActionSpace.from_settings(settings)
    bandit = ContextualBandit(
        n_actions=space.n_actions,
        action_features=space.features(),
        known_rewards=-space.costs,
        epsilon=settings.epsilon,
        seed=seed,
    )
    logged = train.logged
    # The biller's log may hold actions our guardrails would now refuse: learn from them too.
    mask = train.mask.copy()
    mask[np.arange(len(train)), logged.action] = True
    return bandit.fit(train.contexts.to_numpy(), logged.action, logged.reward, logged.pscore, mask)


def policy_distributions(bandit: ContextualBandit, data: DecisionSet) -> dict[str, np.ndarray]:
    """Action distributions of the learned policy and the baselines on ``data``."""
    stage = data.logged.decisions["stage"].to_numpy()
    return {
        "learned": bandit.action_distribution(data.contexts.to_numpy(), data.mask),
        "ladder": baselines.ladder(stage, data.mask),
        "always_email": baselines.always_email(stage, data.mask),
        "uniform": baselines.uniform(data.mask),
    }


def estimated_rewards(data: DecisionSet, settings: PolicySettings, seed: int = 0) -> np.ndarray:
    """Cross-fitted LightGBM estimates of every action's reward at every decision."""
    model = CrossFittedRewardModel(seed=seed)
    return model.fit_predict(
        data.contexts,
        data.logged.action,
        data.logged.reward,
        action_features=ActionSpace.from_settings(settings).features(),
    )


def offline_evaluation(
    policies: dict[str, np.ndarray],
    data: DecisionSet,
    q_hat: np.ndarray,
    *,
    n_bootstrap: int = 500,
    seed: int = 0,
) -> pd.DataFrame:
    """Each policy's value by every estimator, with 95% intervals; plus the logged mean."""
    logged = data.logged
    rows = []
    for policy, dist in policies.items():
        estimates = ope.estimate_all(
            reward=logged.reward,
            action=logged.action,
            pscore=logged.pscore,
            action_dist=dist,
            estimated_rewards=q_hat,
            n_bootstrap=n_bootstrap,
            seed=seed,
        )
        for name, estimate in estimates.items():
            rows.append(
                {"policy": policy, "estimator": name, "value": estimate.value,
                 "low": estimate.low, "high": estimate.high, "n": estimate.n}
            )  # fmt: skip
    mean = float(logged.reward.mean())
    half = 1.96 * float(logged.reward.std()) / np.sqrt(len(logged))
    rows.append(
        {"policy": "logging", "estimator": "on_policy", "value": mean,
         "low": mean - half, "high": mean + half, "n": len(logged)}
    )  # fmt: skip
    return pd.DataFrame(rows)


def evaluate_offline(
    data: DecisionSet, bandit: ContextualBandit, settings: PolicySettings, seed: int = 0
) -> pd.DataFrame:
    """A policy's and the baselines' values on logged decisions, by every estimator."""
    q_hat = estimated_rewards(data, settings, seed)
    return offline_evaluation(policy_distributions(bandit, data), data, q_hat, seed=seed)


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


def _dr_difference(
    challenger: np.ndarray, champion: np.ndarray, data: DecisionSet, q_hat: np.ndarray, seed: int
) -> tuple[float, float, float]:
    logged = data.logged
    arrays = {
        "reward": logged.reward, "action": logged.action, "pscore": logged.pscore,
        "estimated_rewards": q_hat,
    }  # fmt: skip
    diff = (
        ope.dr_rounds(action_dist=challenger, **arrays).rounds()
        - ope.dr_rounds(action_dist=champion, **arrays).rounds()
    )
    rng = np.random.default_rng(seed)
    draws = diff[rng.integers(0, len(diff), size=(400, len(diff)))].mean(axis=1)
    low, high = np.quantile(draws, [0.025, 0.975])
    return float(diff.mean()), float(low), float(high)


def _promote(
    client: mlflow.MlflowClient,
    name: str,
    version: str,
    learned: np.ndarray,
    test: DecisionSet,
    q_hat: np.ndarray,
    seed: int,
) -> tuple[bool, str]:
    challenger = client.get_model_version(name, version)
    champion = registry.version_by_alias(client, name, registry.CHAMPION)
    if champion is None:
        registry.move_champion(client, challenger, "first version")
        return True, "first version: no champion yet"
    model = mlflow.pyfunc.load_model(f"models:/{name}@{registry.CHAMPION}")
    policy = model.unwrap_python_model()
    assert isinstance(policy, PolicyModel)
    columns = policy.spec_["context_columns"]
    if list(columns) != list(test.contexts.columns):
        return False, "champion sees different context columns; not comparable (kept champion)"
    incumbent = policy.bandit_.action_distribution(test.contexts.to_numpy(), test.mask)
    diff, low, high = _dr_difference(learned, incumbent, test, q_hat, seed)
    reason = f"DR value difference {diff:+.4f} (95% interval {low:+.4f} to {high:+.4f})"
    if diff > 0:
        registry.move_champion(client, challenger, reason)
        return True, reason
    return False, reason


def train_policy(
    data: DecisionSet,
    settings: Settings,
    *,
    test_share: float = 0.25,
    seed: int = 0,
    tags: dict[str, str] | None = None,
    score_versions: dict[str, str] | None = None,
) -> PolicyTrainResult:
    """Learn, evaluate offline, log, register and (by the rule) promote the policy.

    ``score_versions`` names the model versions whose scores are in ``data``'s contexts.
    """
    policy_settings = settings.policy
    train, test = split_by_time(data, test_share)
    bandit = fit_policy(train, policy_settings, seed)
    policies = policy_distributions(bandit, test)
    q_hat = estimated_rewards(test, policy_settings, seed)
    evaluation = offline_evaluation(policies, test, q_hat, seed=seed)
    client = connect(settings)
    name = policy_settings.registered_name
    spec = {
        "context_columns": list(data.contexts.columns),
        "actions": list(ACTION_NAMES),
        "scores": score_versions or {},
        "stages": list(policy_settings.reward.stage_window_days),
    }
    with mlflow.start_run(
        experiment_id=experiment_id(client, name, settings), run_name="contextual_bandit",
        tags=tags or {},
    ) as run:  # fmt: skip
        mlflow.log_params(
            {"epsilon": policy_settings.epsilon, "n_train": len(train), "n_test": len(test),
             "context_columns": len(spec["context_columns"]), "test_share": test_share,
             "seed": seed, **bandit.get_params()}
        )  # fmt: skip
        for row in evaluation.itertuples():
            mlflow.log_metric(f"{row.estimator}_{row.policy}", float(row.value))
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / OPE_TABLE
            evaluation.to_csv(path, index=False)
            mlflow.log_artifact(str(path))
            (Path(folder) / "policy_settings.json").write_text(
                json.dumps(policy_settings.model_dump(), indent=2)
            )
            mlflow.log_artifact(str(Path(folder) / "policy_settings.json"))
        info = log_policy_model(bandit, spec, train.contexts.head(5))
    version = registry.register(client, name, info.model_uri)
    promoted, reason = _promote(
        client, name, str(version.version), policies["learned"], test, q_hat, seed
    )
    return PolicyTrainResult(
        run_id=run.info.run_id,
        model_uri=f"models:/{name}/{version.version}",
        version=str(version.version),
        promoted=promoted,
        reason=reason,
        evaluation=evaluation,
        n_train=len(train),
        n_test=len(test),
    )


__all__ = ["MODEL_NAME", "PolicyTrainResult", "train_policy"]
