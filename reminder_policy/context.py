"""The policy's context: what the bandit sees of a decision, as one float matrix.

Built from the catalogue features of the invoice at the decision time (the same code as the
training datasets and the online profiles), the model scores (late-payment and churn
probabilities) when given, the dunning stage and the days left to the due date. Booleans become
0/1, categoricals one-hot over their vocabulary, and a missing number becomes 0 plus a
``<name>_missing`` indicator, so every column is finite and the column list depends only on the
catalogue and on which scores are present: serving builds the very same matrix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from features.catalog import ALL_FEATURES
from paynudge.errors import DataError
from paynudge.vocabulary import LANGUAGES, PLANS

VOCABULARIES = {"plan": PLANS, "language": LANGUAGES}
DAY_NS = 86_400 * 10**9


def context_columns(stages: Sequence[str], scores: Sequence[str] = ()) -> tuple[str, ...]:
    """The context's columns, in order, for the given stage vocabulary and score names."""
    columns: list[str] = []
    for feature in ALL_FEATURES:
        if feature.kind == "category":
            columns += [f"{feature.name}={value}" for value in VOCABULARIES[feature.name]]
        elif feature.kind == "float" and feature.default is None:
            columns += [feature.name, f"{feature.name}_missing"]
        else:
            columns.append(feature.name)
    columns += [f"stage={stage}" for stage in stages]
    columns += ["days_to_due", *scores]
    return tuple(columns)


def days_to_due(decided_at: pd.Series, due_at: pd.Series) -> np.ndarray:
    """Days from the decision to the due moment (the end of the due date, UTC); negative once
    overdue."""
    decided = pd.DatetimeIndex(pd.to_datetime(decided_at, utc=True))
    due = pd.DatetimeIndex(pd.to_datetime(due_at, utc=True))
    return (due.as_unit("ns").asi8 - decided.as_unit("ns").asi8) / DAY_NS


def policy_contexts(
    features: pd.DataFrame,
    stage: pd.Series | np.ndarray,
    days_left: np.ndarray,
    stages: Sequence[str],
    scores: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The context matrix (float64, finite) of each decision, columns :func:`context_columns`."""
    missing = [f.name for f in ALL_FEATURES if f.name not in features.columns]
    if missing:
        raise DataError(f"features lack column(s) {', '.join(missing[:5])} for the policy context")
    out: dict[str, np.ndarray] = {}
    for feature in ALL_FEATURES:
        values = features[feature.name]
        if feature.kind == "category":
            for value in VOCABULARIES[feature.name]:
                out[f"{feature.name}={value}"] = (values == value).to_numpy(dtype=np.float64)
            continue
        numbers = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
        numbers = np.where(np.isfinite(numbers), numbers, np.nan)
        if feature.kind == "float" and feature.default is None:
            out[f"{feature.name}_missing"] = np.isnan(numbers).astype(np.float64)
        out[feature.name] = np.nan_to_num(numbers, nan=0.0)
    stage_values = np.asarray(stage, dtype=object)
    for name in stages:
        out[f"stage={name}"] = (stage_values == name).astype(np.float64)
    out["days_to_due"] = np.asarray(days_left, dtype=np.float64)
    score_names: list[str] = []
    if scores is not None:
        for name in scores.columns:
            value = scores[name].to_numpy(dtype=np.float64)
            if not np.isfinite(value).all():
                raise DataError(f"score {name!r}: expected finite probabilities")
            out[name] = value
            score_names.append(name)
    columns = context_columns(stages, score_names)
    return pd.DataFrame({column: out[column] for column in columns}, index=features.index)
