"""Metrics against hand-computed examples and scikit-learn; the paired bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from paynudge.errors import PayNudgeError
from training.evaluation import (
    METRICS,
    bootstrap_difference,
    classification_metrics,
    expected_calibration_error,
    lift_top_decile,
    resample_rows,
    roc_auc_of_draws,
)


@pytest.fixture(scope="module")
def forecast() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    probability = rng.uniform(0.01, 0.99, size=2000)
    return (rng.random(probability.size) < probability).astype(int), probability


def test_ece_by_hand_two_bins() -> None:
    # sorted by p: (0.1, 0), (0.2, 0) | (0.8, 0), (0.9, 1)
    # bins: |0 - 0.15| and |0.5 - 0.85|, each with half the rows -> 0.5 * 0.15 + 0.5 * 0.35
    y, p = np.array([1, 0, 0, 0]), np.array([0.9, 0.1, 0.8, 0.2])
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(0.25)


def test_ece_bins_have_equal_frequency_in_stable_order() -> None:
    p = np.full(20, 0.5)
    assert expected_calibration_error(np.array([1, 0] * 10), p) == pytest.approx(0.0)
    assert expected_calibration_error(np.array([1, 1, 0, 0] * 5), p) == pytest.approx(0.5)


def test_ece_unequal_bins_weighted_by_size() -> None:
    # 5 rows in 2 bins: first bin 3 rows (p 0.1, 0.2, 0.3; y 0, 0, 1), second 2 (p 0.6, 0.9; y 1, 1)
    y, p = np.array([0, 1, 1, 0, 1]), np.array([0.1, 0.3, 0.6, 0.2, 0.9])
    expected = 3 / 5 * abs(1 / 3 - 0.2) + 2 / 5 * abs(1 - 0.75)
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(expected)


def test_lift_by_hand() -> None:
    # 10 rows, 20% positive; the top decile is the single most probable row, a positive: 1 / 0.2
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    p = np.array([0.9, 0.1, 0.2, 0.3, 0.1, 0.1, 0.2, 0.3, 0.4, 0.05])
    assert lift_top_decile(y, p) == pytest.approx(5.0)
    # 15 rows: ceil(1.5) = 2 rows on top, one positive of them; overall 2 / 15
    y15, p15 = np.r_[y, [0] * 5], np.r_[p, [0.95, 0.0, 0.0, 0.0, 0.0]]
    assert lift_top_decile(y15, p15) == pytest.approx(0.5 / (2 / 15))
    assert math.isnan(lift_top_decile(np.zeros(10), p))


def test_standard_metrics_agree_with_sklearn(forecast) -> None:
    y, p = forecast
    metrics = classification_metrics(y, p)
    assert set(metrics) == {"roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_top_decile"}
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert metrics["pr_auc"] == pytest.approx(average_precision_score(y, p))
    assert metrics["log_loss"] == pytest.approx(log_loss(y, p))
    assert metrics["brier"] == pytest.approx(brier_score_loss(y, p))
    assert metrics["ece"] < 0.05  # the labels were drawn from p itself
    assert metrics["lift_top_decile"] > 1.5


def test_rankings_are_nan_for_a_single_class(forecast) -> None:
    _, p = forecast
    metrics = classification_metrics(np.zeros(p.size, dtype=int), p)
    assert math.isnan(metrics["roc_auc"]) and math.isnan(metrics["pr_auc"])
    assert math.isfinite(metrics["log_loss"]) and math.isfinite(metrics["brier"])


@pytest.mark.parametrize("metric", list(METRICS))
def test_bootstrap_interval_contains_the_point_estimate(forecast, metric: str) -> None:
    y, p = forecast
    rng = np.random.default_rng(1)
    weaker = np.clip(p + rng.normal(scale=0.2, size=p.size), 0.01, 0.99)
    difference, low, high = bootstrap_difference(y, p, weaker, metric, n_boot=100, seed=4)
    assert low <= difference <= high
    assert difference == pytest.approx(METRICS[metric](y, p) - METRICS[metric](y, weaker))
    assert bootstrap_difference(y, p, weaker, metric, n_boot=100, seed=4) == (difference, low, high)


def test_bootstrap_sees_a_real_improvement_and_no_difference(forecast) -> None:
    y, p = forecast
    noise = np.random.default_rng(2).uniform(size=p.size)
    _, low, _ = bootstrap_difference(y, p, noise, "roc_auc")
    assert low > 0
    assert bootstrap_difference(y, p, p, "roc_auc") == (0.0, 0.0, 0.0)


def test_bootstrap_unknown_metric() -> None:
    with pytest.raises(PayNudgeError, match=r"unknown metric 'auc'; expected one of roc_auc"):
        bootstrap_difference(np.array([0, 1]), np.array([0.2, 0.8]), np.array([0.5, 0.5]), "auc")


@pytest.mark.parametrize("decimals", [None, 1], ids=["distinct", "tied"])
def test_roc_auc_of_draws_equals_sklearn_on_each_resample(forecast, decimals) -> None:
    y, p = forecast
    p = p if decimals is None else np.round(p, decimals)  # ten values: ties within and across
    auc = roc_auc_of_draws(y, p)
    for rows in resample_rows(len(y), n_boot=20, seed=3):
        counts = np.bincount(rows, minlength=len(y))
        assert auc(counts) == pytest.approx(roc_auc_score(y[rows], p[rows]), rel=1e-12, abs=0)


def test_roc_auc_of_draws_is_nan_for_a_single_drawn_class() -> None:
    auc = roc_auc_of_draws(np.array([0, 1, 0]), np.array([0.1, 0.9, 0.3]))
    assert math.isnan(auc(np.array([2, 0, 1])))
    assert auc(np.array([1, 1, 1])) == 1.0


def test_bootstrap_auc_matches_sklearn_on_every_resample(forecast) -> None:
    y, p = forecast
    weaker = np.round(np.clip(p + np.random.default_rng(5).normal(scale=0.2, size=p.size), 0, 1), 2)
    by_hand = np.array(
        [
            roc_auc_score(y[rows], p[rows]) - roc_auc_score(y[rows], weaker[rows])
            for rows in np.random.default_rng(6).integers(0, len(y), size=(50, len(y)))
        ]
    )
    _, low, high = bootstrap_difference(y, p, weaker, "roc_auc", n_boot=50, seed=6)
    assert (low, high) == pytest.approx(tuple(np.quantile(by_hand, [0.025, 0.975])), rel=1e-12)
