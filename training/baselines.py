"""Baselines every model must beat: a logistic regression and a one-line business rule.

The logistic regression sees the same features as the booster (numbers imputed by their median
with a missing-value indicator, then standardised; categoricals one-hot encoded, rare and unseen
values pooled), with its regularisation chosen on the validation rows. The rules are what a
collections team would do without a model; each turns one flag into the training rate of the
rows sharing that flag.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from paynudge.errors import PayNudgeError
from training.model import numeric_column
from training.specs import ModelSpec, binary_target

MISSING_CATEGORY = "(missing)"
"""The category a missing categorical value becomes in the one-hot encoding."""


@dataclass(frozen=True)
class LogisticSettings:
    """Regularisation grid and encoding limits of the logistic baseline."""

    c_grid: tuple[float, ...] = (0.01, 0.1, 1.0)
    """Inverse L2 strengths tried; the one with the lowest validation log loss is kept."""
    max_categories: int = 30
    """Most one-hot columns per categorical; the rarest values share one column."""
    max_iter: int = 1000
    max_rows: int = 100_000
    """Larger training sets are subsampled (seeded) to this many rows: ~100 coefficients need
    no more, and the baseline stays cheap next to the booster on a million rows."""
    blas_threads: int = 1
    """BLAS threads for the fits. A ~100-column Hessian is too small to pay for thread
    hand-offs, and on a busy machine spinning BLAS threads cost several times the work
    (measured: 8 s single-threaded against 27-42 s on two cores shared with other jobs)."""
    seed: int = 0


def as_numbers(frame: pd.DataFrame) -> np.ndarray:
    """Numeric features as a float matrix (booleans 0/1, times in days, missing NaN)."""
    return np.column_stack([numeric_column(frame[name], name) for name in frame.columns])


def as_text(frame: pd.DataFrame) -> np.ndarray:
    """Categorical features as strings, missing values as :data:`MISSING_CATEGORY`."""
    values = frame.astype(object)
    return values.where(values.notna(), MISSING_CATEGORY).astype(str).to_numpy()


def feature_encoder(spec: ModelSpec, settings: LogisticSettings) -> ColumnTransformer:
    """Impute and scale the numeric features of ``spec``, one-hot encode its categoricals."""
    numeric = [name for name in spec.features if name not in spec.categorical]
    numbers = make_pipeline(
        FunctionTransformer(as_numbers),
        SimpleImputer(strategy="median", add_indicator=True),
        StandardScaler(),
    )
    text = make_pipeline(
        FunctionTransformer(as_text),
        OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=settings.max_categories),
    )
    return ColumnTransformer(
        [("numbers", numbers, numeric), ("text", text, list(spec.categorical))]
    )


def logistic_baseline(
    train: pd.DataFrame,
    valid: pd.DataFrame,
    spec: ModelSpec,
    settings: LogisticSettings = LogisticSettings(),
) -> Pipeline:
    """An L2 logistic regression fitted on ``train``, its C chosen by log loss on ``valid``."""
    if len(train) > settings.max_rows:
        train = train.sample(settings.max_rows, random_state=settings.seed)
    encoder = feature_encoder(spec, settings).fit(train)
    features, valid_features = encoder.transform(train), encoder.transform(valid)
    y, y_valid = binary_target(train, spec), binary_target(valid, spec)
    with threadpool_limits(settings.blas_threads, user_api="blas"):
        fits = [
            LogisticRegression(C=c, solver="newton-cholesky", max_iter=settings.max_iter).fit(
                features, y
            )
            for c in settings.c_grid
        ]
    losses = [
        log_loss(y_valid, fit.predict_proba(valid_features)[:, 1], labels=[0, 1]) for fit in fits
    ]
    return Pipeline([("features", encoder), ("logistic", fits[int(np.argmin(losses))])])


RULES = {
    "late_payment": "last_invoice_late",
    "churn": "late_streak",
    "send_time": "recommended_hour",
}
"""The rule baseline of each PayNudge model."""


class RuleBaseline(ClassifierMixin, BaseEstimator):
    """``P(positive)`` = training rate of the rows whose rule flag equals this row's.

    - ``last_invoice_late``: the invoice due last before the cutoff was late
      (``last_days_late > 0``);
    - ``late_streak``: the customer is on a streak of late invoices (``late_streak > 0``);
    - ``recommended_hour``: the message goes out at the customer's most common past open hour
      (``open_hour_mode``), or at the hour with the best training open rate for customers who
      never opened.
    """

    def __init__(self, rule: str) -> None:
        self.rule = rule

    def fit(self, frame: pd.DataFrame, y) -> Self:
        y = np.asarray(y, dtype=float)
        if self.rule == "recommended_hour":
            self.best_hour_ = float(
                pd.Series(y, index=frame.index).groupby(frame["send_hour"]).mean().idxmax()
            )
        flag = self.flag(frame)
        overall = float(y.mean())
        self.rates_ = {
            value: float(y[flag == value].mean()) if (flag == value).any() else overall
            for value in (False, True)
        }
        self.classes_ = np.array([0, 1])
        return self

    def flag(self, frame: pd.DataFrame) -> np.ndarray:
        """Whether the rule fires on each row."""
        if self.rule == "last_invoice_late":
            return (frame["last_days_late"] > 0).to_numpy()
        if self.rule == "late_streak":
            return (frame["late_streak"] > 0).to_numpy()
        if self.rule == "recommended_hour":
            recommended = frame["open_hour_mode"].fillna(self.best_hour_)
            return (frame["send_hour"] == recommended).to_numpy()
        raise PayNudgeError(
            f"unknown rule {self.rule!r}; expected one of {', '.join(RULES.values())}"
        )

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        positive = np.where(self.flag(frame), self.rates_[True], self.rates_[False])
        return np.column_stack([1.0 - positive, positive])


def rule_baseline(spec: ModelSpec, train: pd.DataFrame) -> RuleBaseline:
    """The rule of ``spec`` fitted on ``train``; only the three PayNudge models have one."""
    if spec.name not in RULES:
        raise PayNudgeError(
            f"model {spec.name!r} has no rule baseline; rules exist for {', '.join(RULES)}"
        )
    return RuleBaseline(RULES[spec.name]).fit(train, binary_target(train, spec))
