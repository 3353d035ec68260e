"""Metrics of a probability forecast, and a paired bootstrap to compare two forecasts.

Ranking (ROC-AUC, PR-AUC, lift in the top decile) says whom to remind first; log loss, Brier score
and expected calibration error say whether the probability itself can be multiplied by money.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from paynudge.errors import PayNudgeError

ECE_BINS = 10
"""Equal-frequency bins of the expected calibration error."""
TOP_FRACTION = 0.1
"""The top decile of lift: the share of rows with the highest probabilities."""
CONFIDENCE = 0.95
"""Coverage of the bootstrap interval (2.5% and 97.5% quantiles)."""


def expected_calibration_error(
    y_true: np.ndarray, probability: np.ndarray, n_bins: int = ECE_BINS
) -> float:
    """``sum_b (n_b / n) * |mean(y_b) - mean(p_b)|`` over equal-frequency bins of ``p``.

    Rows are sorted by probability (stably) and cut into ``n_bins`` bins whose sizes differ by at
    most one (the first ``n % n_bins`` bins hold the extra row).
    """
    y, p = np.asarray(y_true, dtype=float), np.asarray(probability, dtype=float)
    order = np.argsort(p, kind="stable")
    gaps = [
        abs(y[rows].mean() - p[rows].mean()) * len(rows)
        for rows in np.array_split(order, n_bins)
        if len(rows)
    ]
    return float(np.sum(gaps) / len(y))


def lift_top_decile(
    y_true: np.ndarray, probability: np.ndarray, fraction: float = TOP_FRACTION
) -> float:
    """Positive rate among the ``ceil(fraction * n)`` most probable rows over the overall rate.

    Rows are ranked by descending probability, ties kept in input order; 1 means no better than
    random, NaN when there is no positive row.
    """
    y, p = np.asarray(y_true, dtype=float), np.asarray(probability, dtype=float)
    top = int(np.ceil(fraction * len(y)))
    overall = y.mean()
    if overall == 0:
        return float("nan")
    chosen = np.argsort(-p, kind="stable")[:top]
    return float(y[chosen].mean() / overall)


def _ranking(
    score: Callable[[np.ndarray, np.ndarray], float],
) -> Callable[[np.ndarray, np.ndarray], float]:
    """``score``, or NaN when ``y`` holds a single class (a ranking needs both)."""

    def safe(y: np.ndarray, p: np.ndarray) -> float:
        return float(score(y, p)) if len(np.unique(y)) == 2 else float("nan")

    return safe


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "roc_auc": _ranking(roc_auc_score),
    "pr_auc": _ranking(average_precision_score),
    "log_loss": lambda y, p: float(log_loss(y, p, labels=[0, 1])),
    "brier": lambda y, p: float(brier_score_loss(y, p, labels=[0, 1])),
    "ece": expected_calibration_error,
    "lift_top_decile": lift_top_decile,
}
"""Every metric by name: ``f(y_true, probability_of_class_1) -> float``."""


def classification_metrics(y_true: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    """All :data:`METRICS` of the positive-class ``probability`` against 0/1 ``y_true``."""
    y, p = np.asarray(y_true), np.asarray(probability, dtype=float)
    return {name: metric(y, p) for name, metric in METRICS.items()}


def bootstrap_difference(
    y_true: np.ndarray,
    p_new: np.ndarray,
    p_old: np.ndarray,
    metric: str,
    n_boot: int = 200,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``metric(new) - metric(old)`` on all rows, and the 2.5% / 97.5% quantiles of that
    difference over ``n_boot`` paired resamples (the same rows for both forecasts).

    Resamples where the metric is undefined (one class only) are skipped.
    """
    if metric not in METRICS:
        raise PayNudgeError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    score = METRICS[metric]
    y, new, old = (np.asarray(a) for a in (y_true, p_new, p_old))
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(y), size=(n_boot, len(y)))
    differences = np.array([score(y[r], new[r]) - score(y[r], old[r]) for r in rows])
    differences = differences[~np.isnan(differences)]
    tail = (1 - CONFIDENCE) / 2
    low, high = np.quantile(differences, [tail, 1 - tail]) if len(differences) else (np.nan,) * 2
    return float(score(y, new) - score(y, old)), float(low), float(high)
