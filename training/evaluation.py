"""Metrics of a probability forecast, and a paired bootstrap to compare two forecasts.

Ranking (ROC-AUC, PR-AUC, lift in the top decile) says whom to remind first; log loss, Brier score
and expected calibration error say whether the probability itself can be multiplied by money.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

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


def roc_auc_of_draws(y_true: np.ndarray, probability: np.ndarray) -> Callable[[np.ndarray], float]:
    """A function of bootstrap draw counts (``counts[i]``: how often row ``i`` was drawn) that
    returns the ROC-AUC of ``probability`` on the drawn rows, NaN when they hold one class.

    The AUC is the Mann-Whitney statistic, a tie counting half:
    ``sum_{positive i} counts[i] * (N_<(p_i) + N_<=(p_i)) / (2 P N)``, where ``N_<(p)`` and
    ``N_<=(p)`` count the drawn negatives scored below and up to ``p``. The rows are sorted once,
    so each resample costs a cumulative sum instead of a sort; the sums are exact integers, so
    the result equals scikit-learn's ``roc_auc_score(y[rows], p[rows])``.
    """
    y, p = np.asarray(y_true), np.asarray(probability, dtype=float)
    positives = np.flatnonzero(y == 1)
    negatives = np.flatnonzero(y != 1)
    negatives = negatives[np.argsort(p[negatives], kind="stable")]
    below = np.searchsorted(p[negatives], p[positives], side="left")
    up_to = np.searchsorted(p[negatives], p[positives], side="right")

    def auc(counts: np.ndarray) -> float:
        drawn_negatives = np.r_[0, np.cumsum(counts[negatives], dtype=np.int64)]
        drawn_positives = counts[positives].astype(np.int64)
        pairs = int(drawn_positives.sum()) * int(drawn_negatives[-1])
        if pairs == 0:
            return float("nan")
        # integer sums, and no BLAS call (whose thread start-up dwarfs a 1-D product)
        twice_wins = (drawn_positives * (drawn_negatives[below] + drawn_negatives[up_to])).sum()
        return int(twice_wins) / (2 * pairs)

    return auc


def resample_rows(n_rows: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Row indices of ``n_boot`` bootstrap resamples of ``n_rows`` rows, one at a time (the same
    indices as one ``(n_boot, n_rows)`` draw from ``default_rng(seed)``)."""
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        yield rng.integers(0, n_rows, size=n_rows)


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

    ROC-AUC comes from draw counts and one sort (:func:`roc_auc_of_draws`); the other metrics
    are recomputed on each resample. Resamples where the metric is undefined (one class only)
    are skipped.
    """
    if metric not in METRICS:
        raise PayNudgeError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    score = METRICS[metric]
    y, new, old = (np.asarray(a) for a in (y_true, p_new, p_old))
    resamples = resample_rows(len(y), n_boot, seed)
    if metric == "roc_auc":  # from draw counts: ~10x faster than sorting every resample
        auc_new, auc_old = roc_auc_of_draws(y, new), roc_auc_of_draws(y, old)
        draws = (np.bincount(rows, minlength=len(y)) for rows in resamples)
        differences = np.array([auc_new(counts) - auc_old(counts) for counts in draws])
    else:
        differences = np.array(
            [score(y[rows], new[rows]) - score(y[rows], old[rows]) for rows in resamples]
        )
    differences = differences[~np.isnan(differences)]
    tail = (1 - CONFIDENCE) / 2
    low, high = np.quantile(differences, [tail, 1 - tail]) if len(differences) else (np.nan,) * 2
    return float(score(y, new) - score(y, old)), float(low), float(high)
