"""The policy's context: what the bandit sees of a decision, as one float matrix.

Built from the catalogue features of the invoice at the decision time (the same code as the
training datasets and the online profiles), the model scores (late-payment and churn
probabilities) when given, the dunning stage and the days left to the due date. Booleans become
0/1, categoricals one-hot over their vocabulary, and a missing number becomes 0 plus a
``<name>_missing`` indicator, so every column is finite and the column list depends only on the
catalogue and on which scores are present: serving builds the very same matrix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from features.catalog import ALL_FEATURES, Feature
from paynudge.errors import DataError
from paynudge.vocabulary import LANGUAGES, PLANS
from reminder_policy.local_time import DAY_NS

VOCABULARIES = {"plan": PLANS, "language": LANGUAGES}


@dataclass(frozen=True)
class _CatalogueLayout:
    """Where each catalogue feature lands in the context (the part before the stages)."""

    numeric: tuple[Feature, ...]
    value_columns: np.ndarray
    """Column of each numeric feature's value."""
    missing_columns: np.ndarray
    """Column of each ``<name>_missing`` indicator ..."""
    missing_of: np.ndarray
    """... and the position in ``numeric`` of the feature it flags."""
    categories: tuple[tuple[str, int, np.ndarray], ...]
    """(feature, first column, vocabulary as an object array) of each categorical feature: its
    one-hot columns are the next ``len(vocabulary)``, in vocabulary order."""
    width: int


def _catalogue_layout() -> _CatalogueLayout:
    numeric: list[Feature] = []
    values: list[int] = []
    missing: list[int] = []
    missing_of: list[int] = []
    categories: list[tuple[str, int, np.ndarray]] = []
    j = 0
    for feature in ALL_FEATURES:
        if feature.kind == "category":
            vocabulary = VOCABULARIES[feature.name]
            categories.append((feature.name, j, np.array(vocabulary, dtype=object)))
            j += len(vocabulary)
            continue
        numeric.append(feature)
        values.append(j)
        j += 1
        if feature.kind == "float" and feature.default is None:
            missing.append(j)
            missing_of.append(len(numeric) - 1)
            j += 1
    as_array = partial(np.array, dtype=np.int64)
    return _CatalogueLayout(
        tuple(numeric), as_array(values), as_array(missing), as_array(missing_of),
        tuple(categories), j,
    )  # fmt: skip


_LAYOUT = _catalogue_layout()
_FEATURE_NAMES = frozenset(f.name for f in ALL_FEATURES)


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
    score_columns = None if scores is None else {name: scores[name] for name in scores.columns}
    matrix = context_matrix(features, stage, days_left, stages, score_columns)
    names = list(context_columns(stages, list(score_columns or {})))
    return pd.DataFrame(matrix, columns=names, index=features.index)


def context_matrix(
    features: pd.DataFrame | Mapping[str, np.ndarray],
    stage: pd.Series | np.ndarray,
    days_left: np.ndarray,
    stages: Sequence[str],
    scores: Mapping[str, object] | None = None,
) -> np.ndarray:
    """:func:`policy_contexts` as a bare array, from a frame or feature rows (name -> array):
    what serving scores with, without a frame around it."""
    present = set(features.columns) if isinstance(features, pd.DataFrame) else features.keys()
    if not present >= _FEATURE_NAMES:
        missing = [f.name for f in ALL_FEATURES if f.name not in present]
        raise DataError(f"features lack column(s) {', '.join(missing[:5])} for the policy context")
    score_names = list(scores or {})
    width = _LAYOUT.width + len(stages) + 1 + len(score_names)  # len(context_columns(...))
    out = np.empty((len(days_left), width), dtype=np.float64)
    # The catalogue's numbers as one block: one NaN test and fill for all of them (numeric
    # arrays, the decision path's, in one step; other columns converted one by one).
    block = np.array([features[f.name] for f in _LAYOUT.numeric])
    if block.dtype.kind not in "biuf":
        block = np.array([_numbers(features[f.name]) for f in _LAYOUT.numeric])
    block = block.astype(np.float64, copy=False).T.reshape(len(out), len(_LAYOUT.numeric))
    missing = ~np.isfinite(block)
    out[:, _LAYOUT.value_columns] = np.where(missing, 0.0, block)
    out[:, _LAYOUT.missing_columns] = missing[:, _LAYOUT.missing_of]
    for name, first, vocabulary in _LAYOUT.categories:
        out[:, first : first + len(vocabulary)] = _one_hot(features[name], vocabulary)
    j = _LAYOUT.width
    out[:, j : j + len(stages)] = _one_hot(stage, np.array(stages, dtype=object))
    j += len(stages)
    out[:, j] = np.asarray(days_left, dtype=np.float64)
    for name in score_names:
        j += 1
        out[:, j] = np.asarray(scores[name], dtype=np.float64)  # type: ignore[index]
    finite = np.isfinite(out[:, width - len(score_names) :]).all(axis=0)
    if not finite.all():
        raise DataError(
            f"score {score_names[int(np.argmin(finite))]!r}: expected finite probabilities"
        )
    return out


def _one_hot(values: pd.Series | np.ndarray, vocabulary: np.ndarray) -> np.ndarray:
    """(n, len(vocabulary)) booleans: each value's column in ``vocabulary`` (none when missing or
    outside it), in one broadcast comparison."""
    if isinstance(values, pd.Series):
        values = values.to_numpy(dtype=object, na_value=None)
    return np.asarray(values, dtype=object)[:, None] == vocabulary


def _numbers(values: pd.Series | np.ndarray) -> np.ndarray:
    """A feature as float64, NaN where missing or not a number (infinities left to the caller)."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        return values if values.dtype == np.float64 else values.astype(np.float64)
    if isinstance(values, pd.Series) and values.dtype.kind in "biuf":
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(pd.Series(values), errors="coerce").astype("float64").to_numpy()
