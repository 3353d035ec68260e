"""Why a customer is at risk: the top SHAP contributions to the late-payment score, in words.

Contributions come from LightGBM's native ``pred_contrib`` (TreeSHAP in C++) on the booster's
raw margin (log-odds before calibration): per row they sum, with the bias, to that margin.
Calibration is monotone, so a feature that raises the margin raises the probability. Each
reason gets a plain-language sentence: a specific one for the features analysts ask about most,
else the catalogue's description of the feature with its value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from features.catalog import by_name
from serving.feature_rows import FeatureRows, feature_records
from training.model import CalibratedLightGBM

TOP_REASONS = 3
"""Reasons given per decision: enough to act on, few enough to read."""

Row = Mapping[str, object]
"""One feature row as a mapping (a dict of the row's values, or a pandas Series)."""
Phrase = Callable[[Row], str]


def _late_of_known(row: Row) -> str:
    known = int(row["known_invoices"])  # type: ignore[call-overload]
    late = round((1.0 - float(row["on_time_rate"])) * known)  # type: ignore[arg-type]
    return f"{late} of the last {known} bills were paid late"


def _count(feature: str, template: str) -> tuple[tuple[str, ...], Phrase]:
    return (feature,), lambda row: template.format(n=int(row[feature]))  # type: ignore[call-overload]


def _number(feature: str, template: str) -> tuple[tuple[str, ...], Phrase]:
    return (feature,), lambda row: template.format(x=float(row[feature]))  # type: ignore[arg-type]


def _flag(feature: str, yes: str, no: str) -> tuple[tuple[str, ...], Phrase]:
    return (feature,), lambda row: yes if row[feature] else no


SENTENCES: dict[str, tuple[tuple[str, ...], Phrase]] = {
    "on_time_rate": (("on_time_rate", "known_invoices"), _late_of_known),
    "late_streak": _count("late_streak", "the last {n} known bills in a row were late"),
    "mean_days_late": _number("mean_days_late", "bills were paid {x:.1f} days late on average"),
    "max_days_late": _number("max_days_late", "the latest payment so far was {x:.0f} days late"),
    "last_days_late": _number("last_days_late", "the previous bill was paid {x:.0f} days late"),
    "days_since_last_late": _number(
        "days_since_last_late", "the last late bill was {x:.0f} days ago"
    ),
    "open_balance": _number("open_balance", "{x:.2f} is still unpaid from earlier bills"),
    "amount_ratio": _number("amount_ratio", "this bill is {x:.1f} times the usual amount"),
    "amount_zscore": _number(
        "amount_zscore", "this bill is {x:+.1f} standard deviations from the usual amount"
    ),
    "amount_to_fee": _number("amount_to_fee", "this bill is {x:.1f} times the monthly fee"),
    "amount": _number("amount", "this bill is {x:.2f}"),
    "autopay": _flag("autopay", "pays by direct debit", "does not pay by direct debit"),
    "tenure_days": _number("tenure_days", "customer for {x:.0f} days"),
    "promises_broken": _count("promises_broken", "{n} promises to pay were broken"),
    "disputes_open": _count("disputes_open", "{n} bills are in dispute"),
    "hardship_90d": _flag(
        "hardship_90d",
        "reported financial hardship in the last 90 days",
        "reported no financial hardship recently",
    ),
    "partial_payment_share": _number(
        "partial_payment_share", "{x:.0%} of bills were first paid in part"
    ),
    "reminders_30d": _count("reminders_30d", "{n} reminders were sent in the last 30 days"),
}
"""Feature -> (the columns its sentence reads, the sentence)."""


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def sentence(feature: str, row: Row, contribution: float) -> str:
    """A plain-language reason: what the feature says and which way it pushes the risk."""
    direction = "raises" if contribution > 0 else "lowers"
    columns, phrase = SENTENCES.get(feature, ((feature,), None))  # type: ignore[arg-type]
    values = [row[column] for column in columns]
    if any(_missing(value) for value in values):
        text = f"unknown: {by_name()[feature].description}"
    elif phrase is not None:
        text = phrase(row)
    else:
        text = f"{by_name()[feature].description}: {_display(values[0])}"
    return f"{text[0].upper()}{text[1:]} ({direction} the late-payment risk)."


def _display(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        return f"{value:.3g}"
    return str(value)


def _plain(value: object) -> float | int | bool | str | None:
    """A JSON-friendly feature value."""
    if _missing(value):
        return None
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        return float(value)
    return str(value)


def top_reasons(
    model: CalibratedLightGBM, features: pd.DataFrame | FeatureRows, top: int = TOP_REASONS
) -> list[list[dict[str, object]]]:
    """Per row, the ``top`` features by |SHAP value| with value, contribution and sentence
    (``features``: a frame or the decision path's feature rows)."""
    contributions = model.contributions(features)
    values = contributions.drop(columns="bias").to_numpy()
    names = np.array(model.feature_names_, dtype=object)
    order = np.argsort(-np.abs(values), axis=1, kind="stable")[:, :top]
    reasons = []
    # Plain dicts: a Series per row costs more than the SHAP values.
    if isinstance(features, pd.DataFrame):
        rows = features.to_dict("records")
    else:
        rows = feature_records(features)
    for i, columns in enumerate(order):
        row = rows[i]
        reasons.append(
            [
                {
                    "feature": names[j],
                    "value": _plain(row[names[j]]),
                    "contribution": float(values[i, j]),
                    "sentence": sentence(names[j], row, float(values[i, j])),
                }
                for j in columns
            ]
        )
    return reasons
