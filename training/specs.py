"""Model specs: which dataset, label, features and categoricals each model trains on.

The three PayNudge models read the datasets that ``paynudge features build`` writes; their
features come from the catalogue, so a new catalogue feature reaches every model. A table the
user brings gets a spec from :func:`training.tabular.tabular_spec`. The trainer is the same for
all of them: a spec is the only thing that differs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.catalog import ALL_FEATURES, SEND_CONTEXT, Feature, names
from paynudge.errors import DataError, PayNudgeError

SHOWN_COLUMNS = 10
"""At most this many missing columns are named in an error message."""


@dataclass(frozen=True)
class ModelSpec:
    """What one model learns: label, features, categoricals, and how its data is split."""

    name: str
    """``late_payment``, ``churn``, ``send_time``, or a user's name for a tabular model."""
    dataset: str | None
    """File stem of the dataset in the features directory; None for tabular."""
    label: str
    features: tuple[str, ...]
    categorical: tuple[str, ...]
    """Subset of ``features`` that LightGBM treats as categorical."""
    positive: object = True
    """Label value of the positive class."""
    time_column: str | None = "cutoff"
    """Column of the out-of-time split; None means a stratified holdout split."""


def _categorical(features: tuple[Feature, ...]) -> tuple[str, ...]:
    return tuple(feature.name for feature in features if feature.kind == "category")


def _catalogue_spec(name: str, label: str, features: tuple[Feature, ...]) -> ModelSpec:
    return ModelSpec(
        name=name,
        dataset=name,
        label=label,
        features=tuple(names(features)),
        categorical=_categorical(features),
    )


SPECS: dict[str, ModelSpec] = {
    "late_payment": _catalogue_spec("late_payment", "late", ALL_FEATURES),
    "churn": _catalogue_spec("churn", "churned_90d", ALL_FEATURES),
    "send_time": _catalogue_spec("send_time", "opened_24h", ALL_FEATURES + SEND_CONTEXT),
}
"""The three PayNudge models, keyed by name."""


def spec_for(name: str) -> ModelSpec:
    """The spec called ``name``; a :class:`PayNudgeError` listing the known names otherwise."""
    try:
        return SPECS[name]
    except KeyError:
        raise PayNudgeError(
            f"unknown model {name!r}; expected one of {', '.join(sorted(SPECS))}"
        ) from None


def require_columns(frame: pd.DataFrame, spec: ModelSpec, source: str) -> None:
    """Raise :class:`DataError` naming ``source`` when it lacks the label or a feature."""
    wanted = [spec.label, *spec.features]
    missing = [column for column in wanted if column not in frame.columns]
    if missing:
        shown = ", ".join(missing[:SHOWN_COLUMNS])
        more = f", ... ({len(missing)} in all)" if len(missing) > SHOWN_COLUMNS else ""
        raise DataError(f"{source} lacks column(s) {shown}{more} that model {spec.name!r} needs")


def binary_target(frame: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
    """The label of ``frame`` as 0/1: 1 where it equals ``spec.positive``."""
    return (frame[spec.label] == spec.positive).to_numpy(dtype=np.int64)
