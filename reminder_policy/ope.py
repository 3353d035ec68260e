"""Off-policy evaluation on plain arrays: IPW, SNIPW, DM, DR and SNDR, with bootstrap intervals.

Arguments are named as in Open Bandit Pipeline (obp): ``reward`` (n,), ``action`` (n,) integer ids,
``pscore`` (n,) the logging policy's probability of the logged action, ``action_dist``
(n, n_actions) the evaluation policy pi(a | x_i), ``estimated_rewards`` (n, n_actions) a reward
model's q_hat(x_i, a). obp's 3-D shapes (n, n_actions, len_list) are accepted when len_list is 1,
or when ``position`` is given and all zeros (slot 0 is used); other positions are refused.

Every estimator is ``mean(direct) + mean(weighted) / mean(weight)`` over per-round terms
(:class:`RoundTerms`; ``weight`` is 1 unless self-normalised): ``ipw_rounds`` and its kin return
the terms, ``ipw`` and its kin their value, and :func:`bootstrap_interval` / :func:`estimate_all`
resample the same terms, so point estimates and intervals come from one piece of code.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec

import numpy as np
from numpy.typing import ArrayLike

from paynudge.errors import DataError

TOLERANCE = 1e-5
"""Slack on action_dist row sums, action_dist >= 0 and pscore <= 1 (float32 policies round)."""
BOOTSTRAP_CHUNK = 2**20
"""At most this many resampled indices are held at once (replicates x rounds)."""
P = ParamSpec("P")


@dataclass(frozen=True)
class RoundTerms:
    """Per-round terms of an estimator: value = mean(direct) + mean(weighted) / mean(weight)."""

    direct: np.ndarray
    weighted: np.ndarray
    weight: np.ndarray

    @property
    def value(self) -> float:
        scale = self.weight.mean()
        if scale == 0:
            raise DataError(
                "action_dist: every logged action has probability 0 under the evaluation "
                "policy; expected some overlap for a self-normalised estimate"
            )
        return float(self.direct.mean() + self.weighted.mean() / scale)

    def rounds(self) -> np.ndarray:
        """Per-round contributions whose mean is :attr:`value` (obp's round rewards)."""
        return self.direct + self.weighted / self.weight.mean()


@dataclass(frozen=True)
class Estimate:
    """A policy value with its bootstrap interval [low, high] over n rounds."""

    value: float
    low: float
    high: float
    n: int


def _check(name: str, ok: np.ndarray, found: np.ndarray, expected: str, verb: str = "is") -> None:
    """A DataError naming the first row where ``ok`` is False."""
    if not ok.all():
        row = int(np.argmin(ok))
        raise DataError(f"{name}: row {row} {verb} {float(found[row]):g}; expected {expected}")


def _numbers(values: ArrayLike, name: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{name}: expected numbers, found {np.asarray(values).dtype}") from None


def as_rounds(values: ArrayLike, name: str, n: int) -> np.ndarray:
    """``values`` as a finite float vector of one value per round."""
    array = _numbers(values, name)
    if array.ndim != 1:
        raise DataError(f"{name}: expected a 1-D array (one value per round), found {array.shape}")
    if len(array) != n:
        raise DataError(
            f"{name}: expected {n} rounds (as many as the other inputs), found {len(array)}"
        )
    _check(name, np.isfinite(array), array, "a finite number")
    return array


def as_actions(action: ArrayLike, n: int, n_actions: float) -> np.ndarray:
    """``action`` as int64 ids, each in [0, n_actions) (``np.inf``: any id >= 0)."""
    values = _numbers(action, "action")
    if values.ndim != 1 or len(values) != n:
        raise DataError(f"action: expected {n} rounds as a 1-D array, found shape {values.shape}")
    ok = np.isfinite(values) & (values == np.round(values)) & (values >= 0) & (values < n_actions)
    _check("action", ok, values, f"an integer action id in [0, {n_actions})")
    return values.astype(np.int64)


def as_pscore(pscore: ArrayLike, n: int) -> np.ndarray:
    """``pscore`` as floats, each a probability in (0, 1]."""
    values = as_rounds(pscore, "pscore", n)
    _check("pscore", (values > 0) & (values <= 1 + TOLERANCE), values, "a propensity in (0, 1]")
    return values


def _matrix(values: ArrayLike, name: str, position: ArrayLike | None) -> np.ndarray:
    """(n, n_actions) finite floats; obp's (n, n_actions, len_list) gives its slot 0."""
    array = _numbers(values, name)
    if array.ndim == 3 and (array.shape[2] == 1 or position is not None):
        array = array[:, :, 0]
    if array.ndim != 2:
        raise DataError(
            f"{name}: expected shape (n_rounds, n_actions), or obp's (n_rounds, n_actions, "
            f"len_list) with len_list 1 or position all zeros; found {array.shape}"
        )
    if min(array.shape) == 0:
        raise DataError(f"{name}: expected at least one round and one action, found {array.shape}")
    row_ok = np.isfinite(array).all(axis=1)
    shown = np.where(np.isfinite(array), 0, array).sum(axis=1)
    _check(name, row_ok, shown, "finite numbers", verb="holds")
    if position is not None:
        slot = as_rounds(position, "position", len(array))
        _check("position", slot == 0, slot, "all zeros: keep a single position's rows")
    return array


def _policy(action_dist: ArrayLike, position: ArrayLike | None) -> np.ndarray:
    """action_dist as (n, n_actions), each row a probability distribution."""
    pi = _matrix(action_dist, "action_dist", position)
    lowest = pi.min(axis=1)
    _check("action_dist", lowest >= -TOLERANCE, lowest, "probabilities >= 0", verb="has minimum")
    total = pi.sum(axis=1)
    ok = np.abs(total - 1) <= TOLERANCE
    _check("action_dist", ok, total, f"each row to sum to 1 (within {TOLERANCE:g})", "sums to")
    return pi


def _reward_table(
    values: ArrayLike, name: str, pi: np.ndarray, position: ArrayLike | None
) -> np.ndarray:
    table = _matrix(values, name, position)
    if table.shape != pi.shape:
        raise DataError(f"{name}: expected shape {pi.shape} like action_dist, found {table.shape}")
    return table


def _weighted(
    reward: ArrayLike,
    action: ArrayLike,
    pscore: ArrayLike,
    action_dist: ArrayLike,
    position: ArrayLike | None,
    max_weight: float | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Checked (reward, action, pi, w) with w_i = pi(a_i | x_i) / pscore_i, capped at max_weight."""
    pi = _policy(action_dist, position)
    n, n_actions = pi.shape
    reward = as_rounds(reward, "reward", n)
    action = as_actions(action, n, n_actions)
    pscore = as_pscore(pscore, n)
    if max_weight is not None and not max_weight > 0:
        raise DataError(f"max_weight: expected a positive number or None, found {max_weight}")
    w = pi[np.arange(n), action] / pscore
    return reward, action, pi, w if max_weight is None else np.minimum(w, max_weight)


def ipw_rounds(
    reward: ArrayLike,
    action: ArrayLike,
    pscore: ArrayLike,
    action_dist: ArrayLike,
    *,
    position: ArrayLike | None = None,
    max_weight: float | None = None,
) -> RoundTerms:
    """Inverse propensity weighting: V = 1/n sum_i w_i r_i, w_i = pi(a_i | x_i) / pscore_i.

    With ``max_weight``, w_i becomes min(w_i, max_weight). Unbiased when pscore is the true
    logging probability and the logging policy covers pi's support.
    """
    reward, _, _, w = _weighted(reward, action, pscore, action_dist, position, max_weight)
    return RoundTerms(np.zeros_like(w), w * reward, np.ones_like(w))


def snipw_rounds(
    reward: ArrayLike,
    action: ArrayLike,
    pscore: ArrayLike,
    action_dist: ArrayLike,
    *,
    position: ArrayLike | None = None,
    max_weight: float | None = None,
) -> RoundTerms:
    """Self-normalised IPW: V = sum_i w_i r_i / sum_i w_i (w_i as in :func:`ipw_rounds`).

    Slightly biased but consistent, and never outside the range of the observed rewards.
    """
    reward, _, _, w = _weighted(reward, action, pscore, action_dist, position, max_weight)
    return RoundTerms(np.zeros_like(w), w * reward, w)


def dm_rounds(
    action_dist: ArrayLike, estimated_rewards: ArrayLike, *, position: ArrayLike | None = None
) -> RoundTerms:
    """Direct method: V = 1/n sum_i sum_a pi(a | x_i) q_hat(x_i, a).

    No variance from weights, but all the bias of the reward model q_hat.
    """
    pi = _policy(action_dist, position)
    q = _reward_table(estimated_rewards, "estimated_rewards", pi, position)
    direct = (pi * q).sum(axis=1)
    return RoundTerms(direct, np.zeros_like(direct), np.ones_like(direct))


def _dr_terms(
    reward: ArrayLike,
    action: ArrayLike,
    pscore: ArrayLike,
    action_dist: ArrayLike,
    estimated_rewards: ArrayLike,
    position: ArrayLike | None,
    max_weight: float | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DM term sum_a pi q_hat, correction w_i (r_i - q_hat(x_i, a_i)) and w_i of each round."""
    reward, action, pi, w = _weighted(reward, action, pscore, action_dist, position, max_weight)
    q = _reward_table(estimated_rewards, "estimated_rewards", pi, position)
    direct = (pi * q).sum(axis=1)
    return direct, w * (reward - q[np.arange(len(action)), action]), w


def dr_rounds(
    reward: ArrayLike,
    action: ArrayLike,
    pscore: ArrayLike,
    action_dist: ArrayLike,
    estimated_rewards: ArrayLike,
    *,
    position: ArrayLike | None = None,
    max_weight: float | None = None,
) -> RoundTerms:
    """Doubly robust: V = 1/n sum_i [sum_a pi(a | x_i) q_hat(x_i, a) + w_i (r_i - q_hat(x_i, a_i))].

    Unbiased if either pscore or q_hat is right; lower variance than IPW when q_hat is good.
    """
    direct, correction, w = _dr_terms(
        reward, action, pscore, action_dist, estimated_rewards, position, max_weight
    )
    return RoundTerms(direct, correction, np.ones_like(w))


def sndr_rounds(
    reward: ArrayLike,
    action: ArrayLike,
    pscore: ArrayLike,
    action_dist: ArrayLike,
    estimated_rewards: ArrayLike,
    *,
    position: ArrayLike | None = None,
    max_weight: float | None = None,
) -> RoundTerms:
    """Self-normalised DR: V = 1/n sum_i sum_a pi(a | x_i) q_hat(x_i, a)
    + sum_i w_i (r_i - q_hat(x_i, a_i)) / sum_i w_i.
    """
    direct, correction, w = _dr_terms(
        reward, action, pscore, action_dist, estimated_rewards, position, max_weight
    )
    return RoundTerms(direct, correction, w)


def _value_of(rounds: Callable[P, RoundTerms]) -> Callable[P, float]:
    """The estimator returning the value of ``rounds``' terms: same arguments, same docstring."""

    def value(*args: P.args, **kwargs: P.kwargs) -> float:
        return rounds(*args, **kwargs).value

    functools.update_wrapper(value, rounds)
    value.__name__ = value.__qualname__ = rounds.__name__.removesuffix("_rounds")
    return value


ipw = _value_of(ipw_rounds)
snipw = _value_of(snipw_rounds)
dm = _value_of(dm_rounds)
dr = _value_of(dr_rounds)
sndr = _value_of(sndr_rounds)


def policy_value(action_dist: ArrayLike, expected_rewards: ArrayLike) -> float:
    """True value of a policy when the expected rewards q(x_i, a) are known:
    V = 1/n sum_i sum_a pi(a | x_i) q(x_i, a) (the direct method with the true q)."""
    pi = _policy(action_dist, None)
    q = _reward_table(expected_rewards, "expected_rewards", pi, None)
    return float((pi * q).sum(axis=1).mean())


ESTIMATORS: dict[str, Callable[..., RoundTerms]] = {
    "ipw": ipw_rounds,
    "snipw": snipw_rounds,
    "dm": dm_rounds,
    "dr": dr_rounds,
    "sndr": sndr_rounds,
}
"""Per-round terms of each estimator, by name."""


def _resampled_means(series: np.ndarray, n_bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    """Column means of ``series`` (n, m) over bootstrap resamples of its rows: (n_bootstrap, m).

    Each resample is drawn as counts of the n rounds, so all columns (and all estimators) share it.
    """
    n = len(series)
    chunk = max(1, BOOTSTRAP_CHUNK // n)
    means = []
    for start in range(0, n_bootstrap, chunk):
        size = min(chunk, n_bootstrap - start)
        draws = rng.integers(0, n, size=(size, n)) + n * np.arange(size)[:, None]
        counts = np.bincount(draws.ravel(), minlength=size * n).reshape(size, n)
        means.append(counts @ series / n)
    return np.concatenate(means)


def _intervals(
    terms: dict[str, RoundTerms], n_bootstrap: int, alpha: float, seed: int | np.random.Generator
) -> dict[str, Estimate]:
    """Each estimator's value with its percentile interval, all over the same resamples."""
    if not (n_bootstrap >= 1 and 0 < alpha < 1):
        raise DataError(
            f"bootstrap: expected n_bootstrap >= 1 and alpha in (0, 1), "
            f"found {n_bootstrap} and {alpha}"
        )
    values = {name: term.value for name, term in terms.items()}
    series = np.column_stack(
        [np.column_stack([t.direct, t.weighted, t.weight]) for t in terms.values()]
    )
    means = _resampled_means(series, int(n_bootstrap), np.random.default_rng(seed))
    results = {}
    for j, name in enumerate(terms):
        direct, weighted, weight = means[:, 3 * j : 3 * j + 3].T
        with np.errstate(divide="ignore", invalid="ignore"):
            resampled = direct + weighted / weight  # nan for a resample without overlap: left out
        low, high = np.nanquantile(resampled, [alpha / 2, 1 - alpha / 2])
        results[name] = Estimate(values[name], float(low), float(high), len(series))
    return results


def bootstrap_interval(
    estimator: str | Callable[..., object],
    *,
    n_bootstrap: int = 1000,
    alpha: float = 0.05,
    seed: int | np.random.Generator = 0,
    **inputs: object,
) -> Estimate:
    """The estimate with its percentile bootstrap (1 - alpha) interval.

    ``estimator`` is a name of :data:`ESTIMATORS` or one of the functions above; ``inputs`` are
    its keyword arguments. Rounds are resampled with replacement; the direct, weighted and weight
    terms of a round move together, so self-normalised estimators resample numerator and
    denominator jointly.
    """
    name = estimator if isinstance(estimator, str) else estimator.__name__.removesuffix("_rounds")
    if name not in ESTIMATORS:
        raise DataError(f"estimator: expected one of {', '.join(ESTIMATORS)}, found {name!r}")
    terms = {name: ESTIMATORS[name](**inputs)}
    return _intervals(terms, n_bootstrap, alpha, seed)[name]


def estimate_all(
    reward: ArrayLike,
    action: ArrayLike,
    pscore: ArrayLike,
    action_dist: ArrayLike,
    estimated_rewards: ArrayLike | None = None,
    *,
    position: ArrayLike | None = None,
    max_weight: float | None = None,
    n_bootstrap: int = 1000,
    alpha: float = 0.05,
    seed: int | np.random.Generator = 0,
) -> dict[str, Estimate]:
    """Every estimator with its interval (DM, DR, SNDR only given ``estimated_rewards``).

    All estimators share the same resamples, so their intervals compare fairly.
    """
    given = {
        "reward": reward, "action": action, "pscore": pscore, "action_dist": action_dist,
        "estimated_rewards": estimated_rewards, "position": position, "max_weight": max_weight,
    }  # fmt: skip
    terms = {}
    for name, rounds in ESTIMATORS.items():
        accepted = inspect.signature(rounds).parameters
        if "estimated_rewards" not in accepted or estimated_rewards is not None:
            terms[name] = rounds(**{key: given[key] for key in accepted})
    return _intervals(terms, n_bootstrap, alpha, seed)
