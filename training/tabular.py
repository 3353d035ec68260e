"""Bring your own table, and the fit-and-evaluate step every model goes through.

:func:`read_table` and :func:`tabular_spec` turn any CSV or Parquet table into a
:class:`~training.specs.ModelSpec`: every column but the label is a feature, text, category and
boolean columns are categorical, missing values are allowed. Identifier columns (text whose values
are all distinct, or integers that just number the rows, such as an exported index) are left out:
they cannot generalise. :func:`fit_and_evaluate` is the one training step: the calibrated booster
and its baselines, scored on the test rows of a split.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from paynudge.errors import DataError
from training.baselines import RULES, logistic_baseline, rule_baseline
from training.evaluation import classification_metrics
from training.model import CalibratedLightGBM
from training.specs import ModelSpec, binary_target, require_columns
from training.splits import Split

READERS = {
    ".csv": pd.read_csv,
    ".txt": pd.read_csv,
    ".tsv": partial(pd.read_csv, sep="\t"),
    ".parquet": pd.read_parquet,
    ".pq": pd.read_parquet,
}
"""Readers by file suffix."""
OTHER_SEPARATORS = ";\t|"
"""Separators tried when a ``.csv`` file reads as a single column."""
SNIFF_BYTES = 64 * 1024
"""How much of such a file the separator sniffer looks at."""
POSITIVE_WORDS = ("yes", "true", "y", "t", "1", "positive", "pos")
"""Label values taken as the positive class of a two-valued text label, when not given."""
SHOWN_VALUES = 10
"""At most this many distinct values are quoted in an error message."""


def _quote(values: Sequence) -> str:
    shown = ", ".join(repr(value) for value in list(values)[:SHOWN_VALUES])
    return shown + (f", ... ({len(values)} in all)" if len(values) > SHOWN_VALUES else "")


def read_table(path: Path) -> pd.DataFrame:
    """A CSV (``.csv``/``.txt``, ``.tsv``) or Parquet (``.parquet``/``.pq``) table."""
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"cannot read {path}: expected a file ending in {', '.join(READERS)}")
    if not path.is_file():
        raise DataError(f"cannot read {path}: no such file")
    try:
        frame = reader(path)
    except (OSError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"cannot read {path}: {reason}") from error
    if reader is pd.read_csv and frame.shape[1] == 1:
        frame = _sniffed(path, frame)
    if frame.empty:
        raise DataError(f"{path} holds no rows")
    return _parse_dates(frame)


def _sniffed(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    """A one-column CSV read again if its separator is one of :data:`OTHER_SEPARATORS`."""
    with path.open(newline="", errors="replace") as handle:
        sample = handle.read(SNIFF_BYTES)
    try:
        separator = csv.Sniffer().sniff(sample, delimiters=OTHER_SEPARATORS).delimiter
        return pd.read_csv(path, sep=separator)
    except (csv.Error, ValueError):
        return frame


def _parse_dates(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns whose every value is an ISO 8601 date or time become timestamps (UTC)."""
    for column in frame.select_dtypes(include="object").columns:
        try:
            frame[column] = pd.to_datetime(frame[column], format="ISO8601", utc=True)
        except (TypeError, ValueError, OverflowError):
            continue
    return frame


def _default_positive(values: pd.Series, classes: list) -> object:
    """True, the larger number, a yes-like word, else the rarer value."""
    if pd.api.types.is_bool_dtype(values):
        return True
    if pd.api.types.is_numeric_dtype(values):
        return max(classes)
    yes_like = [value for value in classes if str(value).strip().lower() in POSITIVE_WORDS]
    if len(yes_like) == 1:
        return yes_like[0]
    return values.value_counts(sort=True, ascending=True).index[0]


def _positive_value(values: pd.Series, positive: object | None, label: str) -> object:
    """The label value of the positive class, matching ``positive`` given as text if needed."""
    classes = sorted(pd.unique(values).tolist(), key=str)
    if positive is None:
        if len(classes) > 2:
            raise DataError(
                f"label column {label!r} has {len(classes)} values ({_quote(classes)}); "
                "say which one is positive"
            )
        chosen = _default_positive(values, classes)
    else:
        matches = [v for v in classes if v == positive] or [
            v for v in classes if str(v) == str(positive)
        ]
        if len(matches) != 1:
            raise DataError(
                f"positive value {positive!r} is not among the values of label column "
                f"{label!r}: {_quote(classes)}"
            )
        chosen = matches[0]
    return chosen.item() if isinstance(chosen, np.generic) else chosen


def _is_identifier(values: pd.Series) -> bool:
    """All values present and distinct, and either text or the integers ``k .. k + n - 1``."""
    if values.isna().any() or not values.is_unique or len(values) < 2:
        return False
    if pd.api.types.is_integer_dtype(values):
        return int(values.max()) - int(values.min()) == len(values) - 1
    return pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)


def _is_categorical(values: pd.Series) -> bool:
    return (
        pd.api.types.is_object_dtype(values)
        or pd.api.types.is_string_dtype(values)
        or isinstance(values.dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(values)
    )


def tabular_spec(frame: pd.DataFrame, label: str, positive: object | None, name: str) -> ModelSpec:
    """The spec of a model predicting ``label == positive`` from every other useful column."""
    if label not in frame.columns:
        raise DataError(
            f"label column {label!r} is not in the table; its columns are "
            f"{_quote([str(column) for column in frame.columns])}"
        )
    values = frame[label]
    if values.isna().any():
        rows = np.flatnonzero(values.isna().to_numpy())
        raise DataError(
            f"label column {label!r} has {len(rows)} missing value(s), first in row {rows[0]}; "
            "fill or drop those rows"
        )
    if values.nunique() < 2:
        raise DataError(
            f"label column {label!r} has the single value {values.iloc[0]!r} in all "
            f"{len(values)} rows; a classifier needs two classes"
        )
    chosen = _positive_value(values, positive, label)
    features = tuple(
        column for column in frame.columns if column != label and not _is_identifier(frame[column])
    )
    if not features:
        raise DataError(f"the table has no feature columns besides label {label!r}")
    categorical = tuple(column for column in features if _is_categorical(frame[column]))
    return ModelSpec(name, None, label, features, categorical, chosen, time_column=None)


@dataclass(frozen=True, eq=False)
class Evaluation:
    """A fitted model, its split, and metrics on the test rows of the model and its baselines."""

    spec: ModelSpec
    model: CalibratedLightGBM
    split: Split
    metrics: dict[str, float]
    baselines: dict[str, dict[str, float]]
    """``logistic`` and, for the three PayNudge models, ``rule``: their test metrics."""
    test_probability: np.ndarray
    baseline_probability: dict[str, np.ndarray] = field(default_factory=dict)
    """The baselines' test probabilities, keyed like ``baselines``."""


def fit_and_evaluate(
    spec: ModelSpec, split: Split, params: dict | None = None, callbacks: Sequence = ()
) -> Evaluation:
    """Fit the calibrated booster and the baselines on ``split``; score all on its test rows."""
    for part in ("train", "valid", "test"):
        require_columns(getattr(split, part), spec, f"the {part} split")
    features = list(spec.features)
    model = CalibratedLightGBM(params=params).fit(
        split.train[features],
        binary_target(split.train, spec),
        split.valid[features],
        binary_target(split.valid, spec),
        categorical=spec.categorical,
        callbacks=callbacks,
    )
    y_test = binary_target(split.test, spec)
    probability = model.predict_proba(split.test)[:, 1]
    fitted = {"logistic": logistic_baseline(split.train, split.valid, spec)}
    if spec.name in RULES:
        fitted["rule"] = rule_baseline(spec, split.train)
    baseline_probability = {
        name: baseline.predict_proba(split.test)[:, 1] for name, baseline in fitted.items()
    }
    return Evaluation(
        spec=spec,
        model=model,
        split=split,
        metrics=classification_metrics(y_test, probability),
        baselines={
            name: classification_metrics(y_test, p) for name, p in baseline_probability.items()
        },
        test_probability=probability,
        baseline_probability=baseline_probability,
    )
