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

from dataclasses import dataclass

import numpy as np
import pandas as pd

from paynudge.config import PolicySettings, Settings
from paynudge.errors import PayNudgeError
from reminder_policy import baselines, ope
from reminder_policy.actions import ACTION_NAMES, ActionSpace
from reminder_policy.dataset import DecisionSet
from reminder_policy.learner import ContextualBandit
from reminder_policy.policy_registry import load_policy, log_policy_run, promote_policy
from reminder_policy.reward_model import CrossFittedRewardModel


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


def train_policy(
    data: DecisionSet,
    settings: Settings,
    *,
    test_share: float = 0.25,
    seed: int = 0,
    score_versions: dict[str, str] | None = None,
) -> PolicyTrainResult:
    """Learn offline, evaluate, log, register and (by the rule) promote the policy.

    ``score_versions`` names the model versions whose scores are in ``data``'s contexts.
    """
    train, test = split_by_time(data, test_share)
    bandit = fit_policy(train, settings.policy, seed)
    spec = policy_spec(data, train, settings.policy, score_versions or {})
    return _evaluate_and_register(bandit, spec, train, test, settings, seed, "offline")


def update_policy(
    data: DecisionSet, settings: Settings, *, test_share: float = 0.25, seed: int = 0
) -> PolicyTrainResult:
    """Online update: the champion keeps learning from the decisions made since it was trained.

    The newer decisions are split by time: the champion learns (``learn``, continuing its VW
    model) from the earlier part, and challenger and champion are compared on the latest part.
    """
    champion, version = load_policy(settings)
    trained_until = pd.Timestamp(champion.spec_["trained_until"])
    fresh = (data.logged.decisions["decided_at"] > trained_until).to_numpy()
    if fresh.sum() < 20:
        raise PayNudgeError(
            f"only {int(fresh.sum())} decisions after {trained_until} (when {version} was "
            "trained); nothing to learn from yet"
        )
    learn, test = split_by_time(data.subset(fresh), test_share)
    bandit = ContextualBandit.from_bytes(champion.bandit_.to_bytes())
    logged = learn.logged
    mask = learn.mask.copy()
    mask[np.arange(len(learn)), logged.action] = True
    bandit.learn(learn.contexts.to_numpy(), logged.action, logged.reward, logged.pscore, mask)
    spec = {**champion.spec_, "trained_until": str(learn.logged.decisions["decided_at"].max())}
    return _evaluate_and_register(bandit, spec, learn, test, settings, seed, f"update of {version}")


def policy_spec(
    data: DecisionSet, train: DecisionSet, settings: PolicySettings, scores: dict[str, str]
) -> dict[str, object]:
    """What serving needs to rebuild the context, stored next to the policy."""
    return {
        "context_columns": list(data.contexts.columns),
        "actions": list(ACTION_NAMES),
        "scores": scores,
        "stages": list(settings.reward.stage_window_days),
        "trained_until": str(train.logged.decisions["decided_at"].max()),
    }


def _evaluate_and_register(
    bandit: ContextualBandit,
    spec: dict[str, object],
    train: DecisionSet,
    test: DecisionSet,
    settings: Settings,
    seed: int,
    kind: str,
) -> PolicyTrainResult:
    policies = policy_distributions(bandit, test)
    q_hat = estimated_rewards(test, settings.policy, seed)
    evaluation = offline_evaluation(policies, test, q_hat, seed=seed)
    logged = log_policy_run(bandit, spec, train, test, evaluation, settings, kind)
    promoted, reason = promote_policy(logged.version, policies["learned"], test, q_hat, settings)
    return PolicyTrainResult(
        run_id=logged.run_id,
        model_uri=f"models:/{settings.policy.registered_name}/{logged.version}",
        version=logged.version,
        promoted=promoted,
        reason=reason,
        evaluation=evaluation,
        n_train=len(train),
        n_test=len(test),
    )
