"""The feature row of a live invoice: the stored customer profile plus this invoice's bill.

The online profile (:func:`features.store.online_features`) holds every catalogue feature as of
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

from collections.abc import Sequence

import numpy as np
import pandas as pd

from features.catalog import ALL_FEATURES, by_name
from features.store import ONLINE_DTYPES
from serving.schemas import DecisionRequest

KNOWN_COLUMN = "known"
"""The online frame's flag: False for customers the store does not hold (cold start)."""


def _floats(frame: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _divide(numerator: np.ndarray, denominator: np.ndarray, usable: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(usable, numerator / np.where(usable, denominator, 1.0), np.nan)


def bill_features(profiles: pd.DataFrame, amount: np.ndarray) -> pd.DataFrame:
    """The five bill features of invoices of ``amount`` for the customers of ``profiles``."""
    fee = _floats(profiles, "monthly_fee")
    mean = _floats(profiles, "trailing_mean_amount")
    last_amount = _floats(profiles, "amount")
    last_zscore = _floats(profiles, "amount_zscore")
    usable_z = np.isfinite(last_zscore) & (last_zscore != 0) & np.isfinite(mean)
    std = _divide(last_amount - mean, last_zscore, usable_z)
    usable_std = np.isfinite(std) & (std > 0)
    return pd.DataFrame(
        {
            "amount": amount,
            "amount_to_fee": _divide(amount, fee, np.isfinite(fee) & (fee > 0)),
            "trailing_mean_amount": mean,
            "amount_ratio": _divide(amount, mean, np.isfinite(mean) & (mean > 0)),
            "amount_zscore": _divide(amount - mean, std, usable_std),
        },
        index=profiles.index,
    )


def apply_overrides(features: pd.DataFrame, overrides: Sequence[dict[str, object]]) -> None:
    """Write each row's override values into ``features`` (in place), column by column."""
    catalogue = by_name()
    names = sorted({name for row in overrides for name in row})
    for name in names:
        rows = [i for i, row in enumerate(overrides) if name in row]
        values = pd.array([overrides[i][name] for i in rows], dtype=object)
        column = features[name].astype(object)
        column.iloc[rows] = values
        dtype = ONLINE_DTYPES[catalogue[name].kind]
        features[name] = _typed(column, dtype, name)


def _typed(column: pd.Series, dtype: str, name: str) -> pd.Series:
    """An overridden column back in its online dtype; a value of the wrong kind is refused."""
    from paynudge.errors import DataError

    try:
        if dtype == "object":
            return column.where(column.isna(), column.astype(str))
        if dtype == "boolean":
            ok = column.map(lambda v: v is None or v is pd.NA or isinstance(v, bool | np.bool_))
            if not ok.all():
                raise ValueError("expected true, false or null")
        return column.astype(dtype)
    except (TypeError, ValueError) as error:
        raise DataError(f"overrides.{name}: expected {dtype} values ({error})") from None


def invoice_features(profiles: pd.DataFrame, requests: Sequence[DecisionRequest]) -> pd.DataFrame:
    """Catalogue features of each request's invoice, in request order (profile order)."""
    amount = np.array([request.amount for request in requests], dtype=float)
    features = profiles[[feature.name for feature in ALL_FEATURES]].copy()
    bills = bill_features(profiles, amount)
    for column in bills.columns:
        features[column] = bills[column]
    overrides = [request.overrides for request in requests]
    if any(overrides):
        apply_overrides(features, overrides)
    return features
