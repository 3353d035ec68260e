"""Probability calibration of a raw LightGBM margin: sigmoid (Platt) or isotonic.

Decisions multiply these probabilities by money, so they must mean what they say. Both
calibrators map the booster's raw margin to a probability and are fitted on the validation rows
(data the trees never trained on).

Choice rule (``calibration="auto"``): the two methods are compared by *cross-fitting* on the
validation rows. They are split into ``folds`` stratified folds; each method is fitted on all
folds but one and scored by log loss on the held-out fold; the method with the lower total
out-of-fold log loss wins and is then refitted on all validation rows. No point is used both to
fit a calibrator and to judge it. Isotonic regression is only a candidate when each class has at
least ``min_class_rows_for_isotonic`` validation rows: with fewer, a step function overfits and
the two-parameter sigmoid is used. Ties go to the sigmoid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold

from paynudge.errors import ConfigError


@dataclass(frozen=True)
class CalibrationSettings:
    """How ``calibration="auto"`` chooses between the methods."""

    folds: int = 5
    """Stratified folds of the validation rows for the cross-fitted comparison."""
    min_class_rows_for_isotonic: int = 50
    """Fewest validation rows of each class for isotonic regression to be a candidate."""


class SigmoidCalibrator(BaseEstimator):
    """Platt scaling: ``p = 1 / (1 + exp(-(a * raw + b)))``.

    Fitted by maximum likelihood on Platt's smoothed targets ``(n+ + 1) / (n+ + 2)`` for
    positives and ``1 / (n- + 2)`` for negatives, which keeps ``a`` finite even when the
    validation rows are perfectly separated.
    """

    def fit(self, raw: np.ndarray, y: np.ndarray) -> Self:
        raw = np.asarray(raw, dtype=float)
        y = np.asarray(y)
        positives = int(y.sum())
        negatives = len(y) - positives
        target = np.where(y == 1, (positives + 1) / (positives + 2), 1 / (negatives + 2))

        def loss(ab: np.ndarray) -> tuple[float, np.ndarray]:
            margin = ab[0] * raw + ab[1]
            # log(1 + exp(m)) - t * m is the cross-entropy of sigmoid(m) against t
            value = np.sum(np.logaddexp(0.0, margin) - target * margin)
            residual = expit(margin) - target
            return float(value), np.array([residual @ raw, residual.sum()])

        # the raw margin is already a log-odds, so the identity is the natural start
        result = minimize(loss, x0=np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
        self.a_, self.b_ = (float(value) for value in result.x)
        return self

    def predict(self, raw: np.ndarray) -> np.ndarray:
        return expit(self.a_ * np.asarray(raw, dtype=float) + self.b_)


class IsotonicCalibrator(BaseEstimator):
    """Centred isotonic regression: a monotone fit that keeps the booster's ranking.

    Pool-adjacent-violators gives constant blocks; predictions interpolate linearly between the
    blocks' centres (mean raw margin, block rate), so distinct scores stay distinct and the
    ROC-AUC is not lost to ties. Probabilities are kept half an observation away from 0 and 1
    (``1 / (2 n)``) so that one surprising row cannot cost an infinite log loss.
    """

    def fit(self, raw: np.ndarray, y: np.ndarray) -> Self:
        order = np.argsort(raw, kind="stable")
        x = np.asarray(raw, dtype=float)[order]
        fitted = IsotonicRegression(increasing=True).fit(x, np.asarray(y)[order]).predict(x)
        starts = np.r_[0, np.flatnonzero(np.diff(fitted)) + 1]
        sizes = np.diff(np.r_[starts, len(x)])
        self.centres_ = np.add.reduceat(x, starts) / sizes
        self.rates_ = fitted[starts]
        self.floor_ = 1.0 / (2 * len(x))
        return self

    def predict(self, raw: np.ndarray) -> np.ndarray:
        p = np.interp(np.asarray(raw, dtype=float), self.centres_, self.rates_)
        return np.clip(p, self.floor_, 1.0 - self.floor_)


CALIBRATORS: dict[str, type[SigmoidCalibrator] | type[IsotonicCalibrator]] = {
    "sigmoid": SigmoidCalibrator,
    "isotonic": IsotonicCalibrator,
}
"""Calibration methods by name; the first wins ties."""


def fit_calibrator(method: str, raw: np.ndarray, y: np.ndarray):
    """A calibrator of kind ``method`` fitted on raw margins ``raw`` and 0/1 labels ``y``."""
    if method not in CALIBRATORS:
        raise ConfigError(
            f"calibration {method!r} is unknown; expected auto, {', '.join(CALIBRATORS)}"
        )
    return CALIBRATORS[method]().fit(raw, y)


def choose_calibration(
    raw: np.ndarray,
    y: np.ndarray,
    settings: CalibrationSettings = CalibrationSettings(),
    seed: int = 0,
) -> str:
    """The method with the lower cross-fitted log loss on (raw, y); see the module docstring."""
    y = np.asarray(y)
    fewest = np.bincount(y, minlength=2).min()
    if fewest < max(settings.min_class_rows_for_isotonic, settings.folds):
        return "sigmoid"
    folds = StratifiedKFold(settings.folds, shuffle=True, random_state=seed)
    losses = dict.fromkeys(CALIBRATORS, 0.0)
    for fit_rows, held_rows in folds.split(raw, y):
        for method in CALIBRATORS:
            p = fit_calibrator(method, raw[fit_rows], y[fit_rows]).predict(raw[held_rows])
            losses[method] += log_loss(y[held_rows], p, labels=[0, 1]) * len(held_rows)
    return min(losses, key=losses.__getitem__)
