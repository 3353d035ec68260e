"""The feature row of a live invoice: the stored customer profile plus this invoice's bill.

The online profile (:func:`features.online.online_features`) holds every catalogue feature as of
the profile time, its bill features those of the customer's latest invoice then. The invoice a
request asks about may be a newer one, so its bill features are recomputed from the request's
amount and the profile, with these approximations (the offline pipeline has the full history):

- ``amount``: the request's amount; ``amount_to_fee``: amount / ``monthly_fee`` (null when the
  fee is 0 or unknown), exactly as offline;
- ``trailing_mean_amount``: the profile's, i.e. the mean of the customer's bills in the 183 days
  before their latest profiled bill, standing in for the 183 days before this one;
- ``amount_ratio``: amount / that trailing mean (null when it is not positive);
- ``amount_zscore``: against the trailing standard deviation recovered from the profile as
  (profile amount - trailing mean) / profile z-score, when that z-score is a non-zero number;
  null otherwise (as offline with fewer than two bills or a zero deviation).

Then the request's ``overrides`` replace any feature, bill features included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from features.catalog import ALL_FEATURES, by_name
from paynudge.errors import DataError
from serving.feature_rows import FeatureRows
from serving.schemas import DecisionRequest

KNOWN_COLUMN = "known"
"""The online rows' flag: False for customers the store does not hold (cold start)."""

_CATALOGUE = by_name()
_NUMBER_KINDS = {"int": "whole numbers", "float": "numbers", "bool": "true, false or null"}


def _divide(numerator: np.ndarray, denominator: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` where ``usable``, else NaN (unusable denominators are
    replaced before dividing, so nothing divides by zero)."""
    return np.where(usable, numerator / np.where(usable, denominator, 1.0), np.nan)


def _positive(values: np.ndarray) -> np.ndarray:
    return np.isfinite(values) & (values > 0)


def bill_features(profiles: Mapping[str, object], amount: np.ndarray) -> FeatureRows:
    """The five bill features of invoices of ``amount`` for the customers of ``profiles``
    (feature rows or a frame with float columns). The three ratios are divided as one block."""
    fee, mean, last_amount, last_zscore = np.array(
        [
            profiles[name]
            for name in ("monthly_fee", "trailing_mean_amount", "amount", "amount_zscore")
        ],
        dtype=np.float64,
    )
    usable_z = np.isfinite(last_zscore) & (last_zscore != 0) & np.isfinite(mean)
    std = _divide(last_amount - mean, last_zscore, usable_z)
    denominators = np.array([fee, mean, std])
    to_fee, ratio, zscore = _divide(
        np.array([amount, amount, amount - mean]), denominators, _positive(denominators)
    )
    return {
        "amount": amount,
        "amount_to_fee": to_fee,
        "trailing_mean_amount": mean,
        "amount_ratio": ratio,
        "amount_zscore": zscore,
    }


def override_value(name: str, value: object) -> object:
    """An override as the feature rows hold it (float, or str for categories); a value of the
    wrong kind is refused with a :class:`DataError` naming the feature."""
    kind = _CATALOGUE[name].kind
    if value is None:
        return None if kind == "category" else np.nan
    if kind == "category":
        return str(value)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    ok = {
        "bool": isinstance(value, bool),
        "int": number and float(value).is_integer(),  # type: ignore[arg-type]
        "float": number,
    }[kind]
    if not ok:
        raise DataError(f"overrides.{name}: expected {_NUMBER_KINDS[kind]}, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def apply_overrides(features: FeatureRows, overrides: Sequence[Mapping[str, object]]) -> None:
    """Write each row's override values into ``features`` (replacing, never mutating, a column:
    the cached profile rows may share its array)."""
    names = sorted({name for row in overrides for name in row})
    for name in names:
        column = features[name].copy()
        for i, row in enumerate(overrides):
            if name in row:
                column[i] = override_value(name, row[name])
        features[name] = column


def invoice_features(profiles: FeatureRows, requests: Sequence[DecisionRequest]) -> FeatureRows:
    """Catalogue features of each request's invoice, in request order (profile order)."""
    amount = np.array([request.amount for request in requests], dtype=np.float64)
    features = {feature.name: profiles[feature.name] for feature in ALL_FEATURES}
    features.update(bill_features(profiles, amount))
    overrides = [request.overrides for request in requests]
    if any(overrides):
        apply_overrides(features, overrides)
    return features
