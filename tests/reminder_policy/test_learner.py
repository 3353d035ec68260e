"""The contextual bandit: input contract, agreement with VW, learning on known problems."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from vowpalwabbit import Workspace

from paynudge.errors import ConfigError, DataError
from reminder_policy.learner import ContextualBandit
from reminder_policy.vw_examples import (
    action_lines,
    prediction_lines,
    shared_lines,
    training_learning_rate,
    training_text,
)

N_ACTIONS = 5
N_FEATURES = 4


def linear_problem(n: int, seed: int) -> dict[str, np.ndarray]:
    """Rewards linear in the context, one coefficient vector per action, logged uniformly."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(N_FEATURES, N_ACTIONS))
    contexts = rng.normal(size=(n, N_FEATURES))
    expected = 0.5 + contexts @ theta
    actions = rng.integers(0, N_ACTIONS, n)
    rewards = expected[np.arange(n), actions] + rng.normal(size=n)
    return {
        "contexts": contexts,
        "actions": actions,
        "rewards": rewards,
        "propensities": np.full(n, 1 / N_ACTIONS),
        "theta": theta,
    }


def logged(problem: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    return tuple(problem[key] for key in ("contexts", "actions", "rewards", "propensities"))


@pytest.fixture(scope="module")
def problem() -> dict[str, np.ndarray]:
    return linear_problem(5000, seed=0)


@pytest.fixture(scope="module")
def bandit(problem) -> ContextualBandit:
    return ContextualBandit(N_ACTIONS).fit(*logged(problem))


def vw_reference(
    bandit: ContextualBandit, context: np.ndarray, allowed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """VW's own probabilities and estimated rewards for one context, given the allowed actions."""
    workspace = bandit.workspace_
    examples = workspace.parse(
        prediction_lines(context - bandit.context_mean_, bandit.action_text_[allowed])
    )
    probabilities = np.array(workspace.predict(examples))
    rewards = -np.array([example.get_partial_prediction() for example in examples[1:]])
    workspace.finish_example(examples)
    return probabilities, rewards


# --- the input contract -------------------------------------------------------------------------

GOOD = logged(linear_problem(20, seed=1))


def replaced(position: int, value) -> tuple:
    return tuple(value if i == position else item for i, item in enumerate(GOOD))


def with_nan(position: int, row: int, column: int | None = None) -> tuple:
    values = np.array(GOOD[position], dtype=float)
    values[(row, column) if column is not None else row] = np.nan
    return replaced(position, values)


BAD_LOGS = [
    (replaced(0, GOOD[0][:, 0]), None, "contexts: expected a 2-D array"),
    (with_nan(0, 3, 2), None, r"contexts: .*found nan at row 3, column 2"),
    (replaced(0, np.full((20, N_FEATURES), "x")), None, "contexts: expected numbers only"),
    (replaced(1, GOOD[1][:-1]), None, r"actions: expected shape \(20,\)"),
    (replaced(1, GOOD[1] + 0.5), None, "actions: expected integers"),
    (replaced(1, np.full(20, N_ACTIONS)), None, r"actions: expected values in \[0, 5\)"),
    (replaced(1, np.full(20, -1)), None, r"actions: .*found -1 \(row 0\)"),
    (with_nan(2, 7), None, r"rewards: expected finite values, found nan \(row 7\)"),
    (replaced(2, np.full((20, 2), 1.0)), None, r"rewards: expected shape \(20,\)"),
    (replaced(3, np.zeros(20)), None, r"propensities: expected values in \(0, 1\]"),
    (replaced(3, np.full(20, 1.5)), None, r"propensities: .*found 1.5 \(row 0\)"),
    (GOOD, np.ones((20, N_ACTIONS - 1), dtype=bool), r"mask: expected shape \(20, 5\)"),
    (GOOD, np.ones((20, N_ACTIONS)), "mask: expected booleans"),
    (GOOD, np.zeros((20, N_ACTIONS), dtype=bool), "mask: row 0 allows no action"),
    (GOOD, np.arange(N_ACTIONS)[None, :] != GOOD[1][:, None], "mask: the logged action"),
]


@pytest.mark.parametrize(("log", "mask", "message"), BAD_LOGS)
def test_bad_logs_are_refused_with_a_clear_message(log, mask, message):
    with pytest.raises(DataError, match=message):
        ContextualBandit(N_ACTIONS).fit(*log, mask=mask)


BAD_PARAMS = [
    ({"n_actions": 0}, "n_actions: expected at least 1"),
    ({"n_actions": 2.5}, "n_actions: expected an integer"),
    ({"action_features": np.ones((N_ACTIONS + 1, 2))}, r"action_features: expected shape \(5, k\)"),
    ({"action_features": np.full((N_ACTIONS, 2), np.inf)}, "action_features: expected finite"),
    ({"epsilon": 1.5}, r"epsilon: expected a value in \[0, 1\]"),
    ({"learning_rate": 0.0}, "learning_rate: expected a positive value"),
    ({"bits": 0}, "bits: expected an integer in"),
    ({"passes": 0}, "passes: expected at least 1"),
]


@pytest.mark.parametrize(("params", "message"), BAD_PARAMS)
def test_bad_hyper_parameters_are_refused_when_fitting(params, message):
    bandit = ContextualBandit(**{"n_actions": N_ACTIONS, **params})  # storing never fails
    with pytest.raises(ConfigError, match=message):
        bandit.fit(*GOOD)


def test_scoring_checks_contexts_and_mask(bandit):
    with pytest.raises(DataError, match=r"contexts: expected shape \(n >= 1, 4\)"):
        bandit.action_distribution(np.ones((3, N_FEATURES + 1)))
    frame = pd.DataFrame(np.ones((3, N_FEATURES)), columns=["a", "b", "c", "d"])
    frame.loc[1, "c"] = np.inf
    with pytest.raises(DataError, match=r"found inf at row 1, column 2 \('c'\)"):
        bandit.predict_rewards(frame)
    with pytest.raises(DataError, match=r"mask: expected shape \(3, 5\)"):
        bandit.action_distribution(np.ones((3, N_FEATURES)), np.ones((2, N_ACTIONS), dtype=bool))


def test_data_frames_score_like_arrays(bandit, problem):
    contexts = problem["contexts"][:50]
    frame = pd.DataFrame(contexts, columns=[f"x{j}" for j in range(N_FEATURES)])
    np.testing.assert_array_equal(
        bandit.action_distribution(frame), bandit.action_distribution(contexts)
    )


# --- the policy and its agreement with VW -------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), allow_share=st.floats(0.05, 1.0))
def test_distribution_sums_to_one_over_allowed_actions(bandit, seed, allow_share):
    rng = np.random.default_rng(seed)
    contexts = rng.normal(size=(30, N_FEATURES)) * 3
    mask = rng.random((30, N_ACTIONS)) < allow_share
    mask[np.arange(30), rng.integers(0, N_ACTIONS, 30)] = True
    dist = bandit.action_distribution(contexts, mask)
    np.testing.assert_allclose(dist.sum(axis=1), 1.0)
    assert np.all(dist[~mask] == 0)
    floor = bandit.epsilon / mask.sum(axis=1, keepdims=True)
    assert np.all(dist[mask] >= np.broadcast_to(floor, mask.shape)[mask] - 1e-12)


ACTION_FEATURE_CASES = {
    "one-hot": (None, True),
    "dense features": (np.random.default_rng(3).normal(size=(N_ACTIONS, 3)), True),
    "no interactions": (None, False),
}


@pytest.mark.parametrize("case", list(ACTION_FEATURE_CASES))
def test_numpy_scores_and_policy_agree_with_vw_predict(problem, case):
    action_features, interactions = ACTION_FEATURE_CASES[case]
    bandit = ContextualBandit(
        N_ACTIONS, action_features, interactions=interactions, epsilon=0.2, bits=18
    ).fit(*logged(problem))
    rng = np.random.default_rng(4)
    contexts = rng.normal(size=(40, N_FEATURES)) * 2
    mask = rng.random((40, N_ACTIONS)) < 0.6
    mask[:, 1] = True
    ours = bandit.predict_rewards(contexts)
    dist = bandit.action_distribution(contexts, mask)
    for row in range(len(contexts)):
        allowed = np.flatnonzero(mask[row])
        probabilities, rewards = vw_reference(bandit, contexts[row], allowed)
        np.testing.assert_allclose(ours[row, allowed], rewards, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(dist[row, allowed], probabilities, atol=1e-6)
        assert np.argmax(ours[row, allowed]) == np.argmax(rewards)


def test_exact_ties_share_the_greedy_mass_as_vw_does(problem):
    contexts, actions, _, propensities = logged(problem)
    bandit = ContextualBandit(N_ACTIONS).fit(
        contexts, actions, np.zeros(len(actions)), propensities
    )
    dist = bandit.action_distribution(contexts[:3])  # zero rewards: every score ties at 0
    np.testing.assert_allclose(dist, 1 / N_ACTIONS)
    probabilities, _ = vw_reference(bandit, contexts[0], np.arange(N_ACTIONS))
    np.testing.assert_allclose(probabilities, dist[0], atol=1e-6)


def full_text(problem: dict[str, np.ndarray], action_text: np.ndarray) -> str:
    """VW text with every action's line per example, only the logged one labelled."""
    shared = shared_lines(problem["contexts"]).to_pylist()
    rows = []
    for i, line in enumerate(shared):
        actions = list(action_text)
        chosen = problem["actions"][i]
        label = f"0:{-float(problem['rewards'][i])!r}:{float(problem['propensities'][i])!r}"
        actions[chosen] = f"{label} {actions[chosen]}"
        rows.append("\n".join([line, *actions]))
    return "\n\n".join(rows) + "\n\n"


def test_logged_line_only_examples_learn_as_all_action_examples_do():
    """Why training sends VW the logged action's line only (and rescales the learning rate)."""
    problem = linear_problem(1500, seed=5)
    action_text = action_lines(np.eye(N_ACTIONS))
    arguments = ["--cb_explore_adf", "--cb_type", "mtr", "-q", "SA", "--quiet", "-b", "16"]
    chosen_only = training_text(
        problem["contexts"],
        problem["actions"],
        -problem["rewards"],
        problem["propensities"],
        action_text,
    )
    rate = 0.5
    with tempfile.TemporaryDirectory() as folder:

        def weights(text: str, learning_rate: float) -> np.ndarray:
            path = Path(folder) / "data.vw"
            path.write_text(text)
            workspace = Workspace(arg_list=[*arguments, "-l", repr(learning_rate), "-d", str(path)])
            return np.array([workspace.get_weight(i) for i in range(workspace.num_weights())])

        full = weights(full_text(problem, action_text), rate)
        short = weights(chosen_only, training_learning_rate(rate, N_ACTIONS))
        uncorrected = weights(chosen_only, rate)
    scale = np.abs(full).max()
    np.testing.assert_allclose(short, full, atol=1e-5 * scale)
    assert np.abs(uncorrected - full).max() > 0.01 * scale  # the rescaling is needed


# --- learning ------------------------------------------------------------------------------------


def test_learns_a_near_optimal_policy_from_uniform_logs(bandit, problem):
    rng = np.random.default_rng(6)
    contexts = rng.normal(size=(5000, N_FEATURES))
    expected = 0.5 + contexts @ problem["theta"]
    uniform, optimum = expected.mean(), expected.max(axis=1).mean()
    value = (bandit.action_distribution(contexts) * expected).sum(axis=1).mean()
    greedy = expected[np.arange(len(contexts)), bandit.predict_rewards(contexts).argmax(axis=1)]
    # measured: epsilon-greedy 0.93 and greedy 0.98 of the way from uniform to the optimum
    assert (value - uniform) / (optimum - uniform) > 0.85
    assert (greedy.mean() - uniform) / (optimum - uniform) > 0.93


def test_digits_as_bandit_feedback_are_mostly_classified():
    contexts, labels = load_digits(return_X_y=True)
    train, test, y_train, y_test = train_test_split(
        contexts, labels, test_size=0.3, random_state=0, stratify=labels
    )
    actions = np.random.default_rng(0).integers(0, 10, len(y_train))
    rewards = (actions == y_train).astype(float)
    bandit = ContextualBandit(10, passes=2).fit(train, actions, rewards, np.full(len(actions), 0.1))
    accuracy = (bandit.predict_rewards(test).argmax(axis=1) == y_test).mean()
    assert accuracy > 0.8  # measured 0.87 to 0.91 over five seeds; chance is 0.1


def test_online_learning_after_fit_follows_new_rewards(problem):
    contexts, actions, rewards, propensities = logged(problem)
    bandit = ContextualBandit(N_ACTIONS).fit(contexts, actions, rewards, propensities)
    before = bandit.action_distribution(contexts[:500])[:, 2].mean()
    rewards_before = bandit.predict_rewards(contexts[:500])[:, 2].mean()
    favoured = actions[:2000] == 2  # action 2 suddenly pays much more
    boosted = rewards[:2000] + np.where(favoured, 10.0, 0.0)
    bandit.learn(contexts[:2000], actions[:2000], boosted, propensities[:2000])
    assert bandit.predict_rewards(contexts[:500])[:, 2].mean() > rewards_before + 3
    assert bandit.action_distribution(contexts[:500])[:, 2].mean() > max(0.9, before)


def test_learn_without_fit_starts_a_model(problem):
    bandit = ContextualBandit(np.int64(N_ACTIONS)).learn(*logged(problem))  # numpy ints too
    contexts = problem["contexts"][:10]
    assert bandit.action_distribution(contexts).shape == (10, N_ACTIONS)
    loaded = ContextualBandit.from_bytes(bandit.to_bytes())
    np.testing.assert_array_equal(
        loaded.predict_rewards(contexts), bandit.predict_rewards(contexts)
    )


def test_fit_starts_afresh_and_is_deterministic(problem):
    log = logged(problem)
    once = ContextualBandit(N_ACTIONS, passes=2).fit(*log)
    twice = ContextualBandit(N_ACTIONS, passes=2).fit(*log).fit(*log)
    np.testing.assert_array_equal(once.coef_, twice.coef_)
    np.testing.assert_array_equal(once.intercept_, twice.intercept_)


def test_save_and_load_give_the_same_policy_and_learning(bandit, problem):
    loaded = ContextualBandit.from_bytes(bandit.to_bytes())
    assert loaded.get_params()["n_actions"] == N_ACTIONS
    contexts = problem["contexts"][:200]
    mask = np.random.default_rng(7).random((200, N_ACTIONS)) < 0.5
    mask[:, 0] = True
    np.testing.assert_array_equal(
        loaded.action_distribution(contexts, mask), bandit.action_distribution(contexts, mask)
    )
    more = tuple(item[:300] for item in logged(linear_problem(300, seed=8)))
    copy = ContextualBandit.from_bytes(bandit.to_bytes())
    np.testing.assert_array_equal(loaded.learn(*more).coef_, copy.learn(*more).coef_)
    with pytest.raises(DataError, match="not written by ContextualBandit"):
        ContextualBandit.from_bytes(b"something else")


def test_samples_follow_the_distribution_and_the_seed(bandit, problem):
    contexts = np.repeat(problem["contexts"][:4], 2500, axis=0)
    mask = np.random.default_rng(9).random((len(contexts), N_ACTIONS)) < 0.7
    mask[:, 3] = True
    actions, propensities = bandit.sample(contexts, np.random.default_rng(10), mask)
    again, _ = bandit.sample(contexts, np.random.default_rng(10), mask)
    np.testing.assert_array_equal(actions, again)
    dist = bandit.action_distribution(contexts, mask)
    np.testing.assert_array_equal(propensities, dist[np.arange(len(contexts)), actions])
    assert mask[np.arange(len(contexts)), actions].all()
    frequency = np.bincount(actions, minlength=N_ACTIONS) / len(actions)
    np.testing.assert_allclose(frequency, dist.mean(axis=0), atol=0.02)
