"""Off-policy estimators: bad inputs, hand-computed cases, a synthetic logged bandit, intervals."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paynudge.errors import DataError
from reminder_policy import ope
from reminder_policy.ope import (
    bootstrap_interval,
    dm,
    dr,
    estimate_all,
    ipw,
    policy_value,
    sndr,
    snipw,
)

# Four rounds, three actions, worked by hand:
#   w = pi(a_i | x_i) / pscore_i = [0.5/0.5, 0.5/0.25, 1/0.5, 1/0.25] = [1, 2, 2, 4]   (sum 9)
#   w r = [1, 0, 4, 8]                                                               (sum 13)
#   DM terms sum_a pi q = [0.5, 0.75, 1, 1]                                           (sum 3.25)
#   r - q(x_i, a_i) = [0, -0.5, 1, 1];  w (r - q) = [0, -1, 2, 4]                     (sum 5)
HAND = {
    "reward": np.array([1.0, 0.0, 2.0, 2.0]),
    "action": np.array([0, 1, 2, 0]),
    "pscore": np.array([0.5, 0.25, 0.5, 0.25]),
    "action_dist": np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]),
    "estimated_rewards": np.array(
        [[1.0, 0.0, 0.5], [0.5, 0.5, 1.0], [0.0, 1.0, 1.0], [1.0, 2.0, 0.0]]
    ),
}
HAND_VALUES = {
    "ipw": 13 / 4,
    "snipw": 13 / 9,
    "dm": 3.25 / 4,
    "dr": (3.25 + 5) / 4,
    "sndr": 3.25 / 4 + 5 / 9,
}
# With max_weight=2 the weights become [1, 2, 2, 2] (sum 7), w r = [1, 0, 4, 4] (sum 9) and
# w (r - q) = [0, -1, 2, 2] (sum 3).
CLIPPED_VALUES = {
    "ipw": 9 / 4,
    "snipw": 9 / 7,
    "dr": (3.25 + 3) / 4,
    "sndr": 3.25 / 4 + 3 / 7,
}


def inputs_for(name: str, arrays: dict) -> dict:
    """The arrays the estimator ``name`` takes."""
    accepted = inspect.signature(ope.ESTIMATORS[name]).parameters
    return {key: value for key, value in arrays.items() if key in accepted}


@pytest.mark.parametrize("name", list(HAND_VALUES))
def test_hand_computed_values(name: str) -> None:
    estimator = getattr(ope, name)
    assert estimator(**inputs_for(name, HAND)) == pytest.approx(HAND_VALUES[name], rel=1e-12)
    terms = ope.ESTIMATORS[name](**inputs_for(name, HAND))
    assert terms.rounds().mean() == pytest.approx(HAND_VALUES[name], rel=1e-12)


@pytest.mark.parametrize("name", list(CLIPPED_VALUES))
def test_hand_computed_clipped_values(name: str) -> None:
    value = getattr(ope, name)(**inputs_for(name, HAND), max_weight=2.0)
    assert value == pytest.approx(CLIPPED_VALUES[name], rel=1e-12)


def test_policy_value_is_dm_with_the_true_rewards() -> None:
    assert policy_value(HAND["action_dist"], HAND["estimated_rewards"]) == HAND_VALUES["dm"]


def replaced(**changes: object) -> dict:
    return {**HAND, **changes}


def with_row(name: str, row: int, value: object) -> np.ndarray:
    array = HAND[name].astype(float).copy()
    array[row] = value
    return array


BAD_INPUTS = [
    ("reward-nan", replaced(reward=with_row("reward", 1, np.nan)),
     r"reward: row 1 is nan; expected a finite number"),
    ("reward-2d", replaced(reward=HAND["reward"][:, None]),
     r"reward: expected a 1-D array \(one value per round\), found \(4, 1\)"),
    ("reward-short", replaced(reward=HAND["reward"][:3]), r"reward: expected 4 rounds.*found 3"),
    ("reward-text", replaced(reward=np.array(["a", "b", "c", "d"])),
     r"reward: expected numbers, found <U1"),
    ("action-too-big", replaced(action=np.array([0, 1, 3, 0])),
     r"action: row 2 is 3; expected an integer action id in \[0, 3\)"),
    ("action-negative", replaced(action=np.array([0, -1, 2, 0])), r"action: row 1 is -1"),
    ("action-fraction", replaced(action=np.array([0, 1, 2, 0.5])), r"action: row 3 is 0.5"),
    ("action-short", replaced(action=np.array([0, 1])), r"action: expected 4 rounds"),
    ("pscore-zero", replaced(pscore=with_row("pscore", 0, 0.0)),
     r"pscore: row 0 is 0; expected a propensity in \(0, 1\]"),
    ("pscore-above-one", replaced(pscore=with_row("pscore", 3, 1.5)), r"pscore: row 3 is 1.5"),
    ("pscore-long", replaced(pscore=np.full(5, 0.5)), r"pscore: expected 4 rounds.*found 5"),
    ("dist-sum", replaced(action_dist=with_row("action_dist", 1, [0.0, 0.5, 0.4])),
     r"action_dist: row 1 sums to 0.9; expected each row to sum to 1 \(within 1e-05\)"),
    ("dist-negative", replaced(action_dist=with_row("action_dist", 0, [1.5, -0.5, 0.0])),
     r"action_dist: row 0 has minimum -0.5; expected probabilities >= 0"),
    ("dist-nan", replaced(action_dist=with_row("action_dist", 3, [np.nan, 0.5, 0.5])),
     r"action_dist: row 3 holds nan; expected finite numbers"),
    ("dist-1d", replaced(action_dist=np.full(4, 0.25)),
     r"action_dist: expected shape \(n_rounds, n_actions\).*found \(4,\)"),
    ("dist-two-slots", replaced(action_dist=np.repeat(HAND["action_dist"][:, :, None], 2, 2)),
     r"action_dist: .*len_list 1 or position all zeros; found \(4, 3, 2\)"),
    ("dist-empty", replaced(action_dist=np.zeros((0, 3))), r"action_dist: expected at least one"),
    ("position-nonzero", replaced(position=np.array([0, 0, 1, 0])),
     r"position: row 2 is 1; expected all zeros"),
    ("rewards-shape", replaced(estimated_rewards=np.zeros((4, 2))),
     r"estimated_rewards: expected shape \(4, 3\) like action_dist, found \(4, 2\)"),
    ("rewards-inf", replaced(estimated_rewards=with_row("estimated_rewards", 0, [np.inf, 0, 0])),
     r"estimated_rewards: row 0 holds inf; expected finite numbers"),
    ("max-weight", replaced(max_weight=0.0),
     r"max_weight: expected a positive number or None, found 0.0"),
    ("no-overlap", replaced(action_dist=np.tile([0.0, 0.0, 1.0], (4, 1)), action=np.zeros(4, int)),
     r"every logged action has probability 0 under the evaluation policy"),
]  # fmt: skip


def reads(name: str, case: str, arrays: dict) -> bool:
    """Whether the estimator ``name`` reads every argument the bad case changes (and, for
    the no-overlap case, normalises by the weights)."""
    accepted = inspect.signature(ope.ESTIMATORS[name]).parameters
    changed = {key for key in arrays if key not in HAND or arrays[key] is not HAND[key]}
    return changed <= set(accepted) and (case != "no-overlap" or name in ("snipw", "sndr"))


BAD_CASES = [
    pytest.param(name, arrays, message, id=f"{name}-{case}")
    for case, arrays, message in BAD_INPUTS
    for name in ope.ESTIMATORS
    if reads(name, case, arrays)
]


@pytest.mark.parametrize(("name", "arrays", "message"), BAD_CASES)
def test_bad_inputs_say_what_and_where(name: str, arrays: dict, message: str) -> None:
    with pytest.raises(DataError, match=message):
        getattr(ope, name)(**inputs_for(name, arrays))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n_bootstrap": 0}, r"expected n_bootstrap >= 1 and alpha in \(0, 1\), found 0 and 0.05"),
        ({"alpha": 1.5}, r"found 1000 and 1.5"),
    ],
)
def test_bad_bootstrap_options(options: dict, message: str) -> None:
    with pytest.raises(DataError, match=message):
        bootstrap_interval("ipw", **options, **inputs_for("ipw", HAND))


def test_unknown_estimator_name() -> None:
    with pytest.raises(DataError, match=r"estimator: expected one of ipw, snipw, dm, dr, sndr"):
        bootstrap_interval("switch", **inputs_for("ipw", HAND))


def test_obp_shapes_and_zero_positions() -> None:
    flat = {name: getattr(ope, name)(**inputs_for(name, HAND)) for name in HAND_VALUES}
    three_d = {
        **HAND,
        "action_dist": HAND["action_dist"][:, :, None],
        "estimated_rewards": HAND["estimated_rewards"][:, :, None],
    }
    for name, value in flat.items():
        assert getattr(ope, name)(**inputs_for(name, three_d)) == value
    # obp's len_list 3 with every round at position 0: slot 0 is the policy of those rounds.
    other_slots = np.full((4, 3, 2), 1 / 3)
    slotted = {
        **HAND,
        "position": np.zeros(4, dtype=int),
        "action_dist": np.concatenate([three_d["action_dist"], other_slots], axis=2),
        "estimated_rewards": np.concatenate([three_d["estimated_rewards"], other_slots], axis=2),
    }
    for name, value in flat.items():
        assert getattr(ope, name)(**inputs_for(name, slotted)) == value


def softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def logged_bandit(n: int, seed: int, n_actions: int = 5, dim: int = 3) -> dict:
    """A known expected reward q(x, a), a mild softmax logging policy with its propensities, the
    logged rounds, and a softmax evaluation policy leaning to the best actions."""
    rng = np.random.default_rng(seed)
    world = np.random.default_rng(0)  # the same q and policies for every seed
    theta, beta = world.normal(size=(2, dim, n_actions))
    contexts = rng.normal(size=(n, dim))
    q = 1 / (1 + np.exp(-(contexts @ theta)))
    logging = softmax(0.5 * contexts @ beta)
    action = (logging.cumsum(axis=1) < rng.random(n)[:, None]).sum(axis=1)
    action = np.minimum(action, n_actions - 1)
    rounds = np.arange(n)
    return {
        "reward": rng.binomial(1, q[rounds, action]).astype(float),
        "action": action,
        "pscore": logging[rounds, action],
        "action_dist": softmax(2 * contexts @ theta),
        "q": q,
    }


def standard_error(terms: ope.RoundTerms) -> float:
    return float(terms.rounds().std() / np.sqrt(len(terms.direct)))


def test_estimators_recover_the_true_value_of_a_synthetic_bandit() -> None:
    data = logged_bandit(20_000, seed=1)
    truth = policy_value(data["action_dist"], data["q"])
    arrays = {**data, "estimated_rewards": data["q"]}
    assert dm(data["action_dist"], data["q"]) == truth
    for name in ("ipw", "snipw", "dr", "sndr"):
        terms = ope.ESTIMATORS[name](**inputs_for(name, arrays))
        assert abs(terms.value - truth) < 3 * standard_error(terms), name
    # The evaluation policy is not the logging one: a naive average would be off.
    assert abs(data["reward"].mean() - truth) > 0.05


def test_dr_with_a_perfect_model_varies_less_than_ipw() -> None:
    ipw_values, dr_values, truths = [], [], []
    for seed in range(40):
        data = logged_bandit(500, seed=seed)
        logged = {key: data[key] for key in ("reward", "action", "pscore", "action_dist")}
        ipw_values.append(ipw(**logged))
        dr_values.append(dr(**logged, estimated_rewards=data["q"]))
        truths.append(policy_value(data["action_dist"], data["q"]))
    ipw_error = np.subtract(ipw_values, truths)
    dr_error = np.subtract(dr_values, truths)
    assert dr_error.std() < 0.7 * ipw_error.std()
    assert abs(dr_error.mean()) < 3 * dr_error.std() / np.sqrt(len(dr_error))


def test_bootstrap_interval_covers_the_truth_and_shrinks_with_n() -> None:
    widths = []
    for n in (1000, 16_000):
        data = logged_bandit(n, seed=2)
        truth = policy_value(data["action_dist"], data["q"])
        logged = {key: data[key] for key in ("reward", "action", "pscore", "action_dist")}
        estimate = bootstrap_interval(snipw, n_bootstrap=400, seed=3, **logged)
        assert estimate.low <= truth <= estimate.high
        assert estimate.low <= estimate.value <= estimate.high
        assert estimate.n == n
        widths.append(estimate.high - estimate.low)
    assert widths[1] < widths[0] / 2.5  # sqrt(16) = 4 in theory


def test_estimate_all_matches_the_estimators_and_is_deterministic() -> None:
    data = logged_bandit(2000, seed=4)
    logged = {key: data[key] for key in ("reward", "action", "pscore", "action_dist")}
    only_weights = estimate_all(**logged, n_bootstrap=200)
    assert list(only_weights) == ["ipw", "snipw"]
    results = estimate_all(**logged, estimated_rewards=data["q"], n_bootstrap=200, seed=5)
    assert list(results) == ["ipw", "snipw", "dm", "dr", "sndr"]
    assert results["ipw"].value == ipw(**logged)
    assert results["sndr"].value == sndr(**logged, estimated_rewards=data["q"])
    again = bootstrap_interval("dr", n_bootstrap=200, seed=5, **logged, estimated_rewards=data["q"])
    assert again == results["dr"]
    assert results["dr"].high - results["dr"].low < results["ipw"].high - results["ipw"].low


@st.composite
def random_logs(draw: st.DrawFn) -> dict:
    n = draw(st.integers(1, 30))
    n_actions = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    logging = rng.dirichlet(np.ones(n_actions), size=n)
    action = rng.integers(0, n_actions, size=n)
    return {
        "reward": rng.normal(size=n),
        "action": action,
        "pscore": np.maximum(logging[np.arange(n), action], 1e-3),
        "action_dist": rng.dirichlet(np.ones(n_actions), size=n),
        "estimated_rewards": rng.normal(size=(n, n_actions)),
    }


@settings(max_examples=60, deadline=None)
@given(random_logs())
def test_estimator_properties(log: dict) -> None:
    logged = {key: log[key] for key in ("reward", "action", "pscore", "action_dist")}
    # DR with a zero model is IPW; SNDR with a zero model is SNIPW.
    zero = np.zeros_like(log["estimated_rewards"])
    assert dr(**logged, estimated_rewards=zero) == pytest.approx(ipw(**logged), abs=1e-9)
    assert sndr(**logged, estimated_rewards=zero) == pytest.approx(snipw(**logged), abs=1e-9)
    # SNIPW is a weighted mean of the observed rewards.
    assert log["reward"].min() - 1e-9 <= snipw(**logged) <= log["reward"].max() + 1e-9
    # A cap above every weight changes nothing.
    assert ipw(**logged, max_weight=1e9) == ipw(**logged)
    # Evaluating the logging policy itself (w = 1): IPW and SNIPW are the plain average.
    own = np.zeros_like(log["action_dist"])
    own[np.arange(len(own)), log["action"]] = 1.0
    same = {**logged, "action_dist": own, "pscore": np.ones(len(own))}
    assert ipw(**same) == pytest.approx(log["reward"].mean())
    assert snipw(**same) == pytest.approx(log["reward"].mean())
