"""The cross-fitted reward model: it learns q(x, a) and never leaks a row's own reward."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from paynudge.errors import ConfigError, DataError
from reminder_policy import ope
from reminder_policy.reward_model import CrossFittedRewardModel

N_ACTIONS = 4


def world(n: int, seed: int, binary: bool = True) -> dict:
    """Contexts, the true q(x, a) (each action pays off in its own region), a uniform logging
    policy (pscore 1/4) and the logged rewards."""
    rng = np.random.default_rng(seed)
    contexts = rng.normal(size=(n, 3))
    centres = np.array([[1.5, 0, 0], [-1.5, 0, 0], [0, 1.5, 0], [0, -1.5, 0]])
    distance = ((contexts[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    q = 0.1 + 0.8 * np.exp(-distance / 2)
    action = rng.integers(0, N_ACTIONS, size=n)
    expected = q[np.arange(n), action]
    reward = rng.binomial(1, expected) if binary else expected + rng.normal(scale=0.3, size=n)
    return {
        "contexts": contexts,
        "action": action,
        "reward": reward.astype(float),
        "pscore": np.full(n, 1 / N_ACTIONS),
        "q": q,
    }


@pytest.fixture(scope="module")
def logged() -> dict:
    return world(4000, seed=0)


@pytest.fixture(scope="module")
def cross_fitted(logged: dict) -> tuple[CrossFittedRewardModel, np.ndarray]:
    model = CrossFittedRewardModel(seed=1)
    keys = ("contexts", "action", "reward")
    return model, model.fit_predict(*(logged[key] for key in keys), n_actions=N_ACTIONS)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_binary_rewards_give_probabilities_that_track_q(cross_fitted, logged) -> None:
    model, estimates = cross_fitted
    assert model.binary_
    assert estimates.shape == (4000, N_ACTIONS)
    assert estimates.min() >= 0 and estimates.max() <= 1
    assert correlation(estimates, logged["q"]) > 0.7
    assert len(model.models_) == 3
    assert np.bincount(model.fold_).tolist() == [1334, 1333, 1333]


def test_dr_with_the_cross_fitted_model(cross_fitted, logged) -> None:
    # The evaluation policy plays the best action 92.5% of the time, any other 2.5%.
    _, estimates = cross_fitted
    action_dist = np.eye(N_ACTIONS)[logged["q"].argmax(axis=1)] * 0.9 + 0.1 / N_ACTIONS
    truth = ope.policy_value(action_dist, logged["q"])
    arrays = {key: logged[key] for key in ("reward", "action", "pscore")}
    arrays["action_dist"] = action_dist
    dr_terms = ope.dr_rounds(**arrays, estimated_rewards=estimates)
    perfect_dr = ope.dr_rounds(**arrays, estimated_rewards=logged["q"]).rounds().std()
    ipw_spread = ope.ipw_rounds(**arrays).rounds().std()
    assert abs(dr_terms.value - truth) < 3 * dr_terms.rounds().std() / np.sqrt(4000)
    assert dr_terms.rounds().std() < 0.85 * ipw_spread
    assert dr_terms.rounds().std() < 1.1 * perfect_dr
    # A regularised model flattens the peaks the policy picks: DM is biased, DR corrects it.
    assert abs(dr_terms.value - truth) < abs(ope.dm(action_dist, estimates) - truth)


def test_held_out_estimates_ignore_their_own_rewards(cross_fitted, logged) -> None:
    model, estimates = cross_fitted
    held_out = model.fold_ == 0
    flipped = np.where(held_out, 1 - logged["reward"], logged["reward"])
    again = CrossFittedRewardModel(seed=1).fit_predict(
        logged["contexts"], logged["action"], flipped, n_actions=N_ACTIONS
    )
    np.testing.assert_array_equal(again[held_out], estimates[held_out])
    assert not np.allclose(again[~held_out], estimates[~held_out])


def test_pure_noise_estimates_do_not_correlate_with_the_rewards() -> None:
    # Long boosting without early stopping overfits: in-sample estimates chase the noise,
    # cross-fitted ones cannot.
    data = world(2000, seed=3)
    noise = np.random.default_rng(4).normal(size=2000)
    model = CrossFittedRewardModel(early_stopping_rounds=None, num_boost_round=100, seed=5)
    rounds = np.arange(2000)
    out_of_fold = model.fit_predict(data["contexts"], data["action"], noise)[rounds, data["action"]]
    model.fit(data["contexts"], data["action"], noise)
    in_sample = model.predict(data["contexts"])[rounds, data["action"]]
    assert not model.binary_
    assert abs(correlation(out_of_fold, noise)) < 4 / np.sqrt(2000)
    assert correlation(in_sample, noise) > 0.3


def test_real_valued_rewards_use_regression() -> None:
    data = world(3000, seed=6, binary=False)
    model = CrossFittedRewardModel(seed=7)
    estimates = model.fit_predict(data["contexts"], data["action"], data["reward"])
    assert not model.binary_ and model.n_actions_ == N_ACTIONS
    assert correlation(estimates, data["q"]) > 0.75


def test_frames_with_categories_and_missing_values() -> None:
    data = world(1500, seed=8)
    rng = np.random.default_rng(9)
    frame = pd.DataFrame(data["contexts"], columns=["a [x]", "b", "c"])
    frame.loc[rng.random(1500) < 0.1, "b"] = np.nan
    frame["segment"] = rng.choice(["retail", "business", None], size=1500)
    frame["flag"] = rng.random(1500) < 0.5
    model = CrossFittedRewardModel(seed=10).fit(frame, data["action"], data["reward"])
    scores = model.predict(frame.iloc[:5].assign(segment=["unseen", "retail", None, "b", "c"]))
    assert scores.shape == (5, N_ACTIONS) and np.isfinite(scores).all()
    with pytest.raises(DataError, match=r"contexts: expected column\(s\) segment"):
        model.predict(frame.drop(columns="segment"))
    with pytest.raises(DataError, match=r"contexts: expected a DataFrame, as at fit"):
        model.predict(data["contexts"])


def test_action_features_and_importance_weights(logged: dict) -> None:
    features = np.array([[1.5, 0], [-1.5, 0], [0, 1.5], [0, -1.5]])
    model = CrossFittedRewardModel(weight_by_pscore=True, seed=11)
    model.fit(
        logged["contexts"],
        logged["action"],
        logged["reward"],
        pscore=logged["pscore"],
        action_features=features,
    )
    assert model.n_actions_ == N_ACTIONS
    assert correlation(model.predict(logged["contexts"]), logged["q"]) > 0.7


def bad_fit(**changes: object) -> None:
    data = {key: value for key, value in world(60, seed=12).items() if key != "q"}
    CrossFittedRewardModel().fit_predict(**{**data, **changes})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"action": np.r_[np.zeros(59, int), 7]}, r"action: row 59 is 7; expected .*\[0, 4\)"),
        ({"action": np.r_[np.zeros(59), 0.5], "n_actions": None}, r"action: row 59 is 0.5"),
        ({"reward": np.r_[np.zeros(59), np.nan]}, r"reward: row 59 is nan; expected a finite"),
        ({"reward": np.zeros(50)}, r"reward: expected 60 rounds"),
        ({"contexts": np.zeros(60)}, r"contexts: expected a DataFrame or .* found shape \(60,\)"),
        ({"action_features": np.zeros((3, 2))}, r"action_features: expected 4 rows"),
        ({"contexts": np.zeros((4, 3)), "action": np.zeros(4), "reward": np.zeros(4)},
         r"contexts: expected at least 6 rounds for 3 folds, found 4"),
    ],
)  # fmt: skip
def test_bad_inputs_say_what_and_where(changes: dict, message: str) -> None:
    changes.setdefault("n_actions", N_ACTIONS)
    with pytest.raises(DataError, match=message):
        bad_fit(**changes)


def test_settings_and_the_estimator_contract(logged: dict) -> None:
    with pytest.raises(ConfigError, match=r"n_folds: expected an integer >= 2, found 1"):
        CrossFittedRewardModel(n_folds=1).fit_predict(
            logged["contexts"], logged["action"], logged["reward"]
        )
    with pytest.raises(DataError, match=r"pscore: expected the logging propensities"):
        CrossFittedRewardModel(weight_by_pscore=True).fit(
            logged["contexts"], logged["action"], logged["reward"]
        )
    with pytest.raises(NotFittedError):
        CrossFittedRewardModel().predict(logged["contexts"])
    model = CrossFittedRewardModel(n_folds=4, params={"num_leaves": 7})
    assert clone(model).get_params()["params"] == {"num_leaves": 7}
    model.binary_ = True
    assert model.booster_params(n_rows=100)["min_data_in_leaf"] == 5
    assert model.booster_params(n_rows=100)["num_leaves"] == 7
