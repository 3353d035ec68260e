"""The policy context is the same matrix from a training frame and from serving's feature rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.catalog import ALL_FEATURES
from paynudge.errors import DataError
from reminder_policy.context import VOCABULARIES, context_columns, context_matrix
from serving.feature_rows import rows_of_frame

STAGES = ("pre_due", "due", "overdue_3")


def feature_frame(n: int, seed: int) -> pd.DataFrame:
    """Every catalogue feature in its training dtype (nullable ints and flags), with gaps."""
    rng = np.random.default_rng(seed)
    gaps = rng.random((len(ALL_FEATURES), n)) < 0.3
    columns = {}
    for feature, gap in zip(ALL_FEATURES, gaps, strict=True):
        if feature.kind == "category":
            values = rng.choice([*VOCABULARIES[feature.name], "unheard-of"], n).astype(object)
            values[gap] = None
            columns[feature.name] = values
        elif feature.kind == "int":
            values = pd.array(rng.integers(0, 9, n), dtype="Int64")
            values[gap] = pd.NA
            columns[feature.name] = values
        elif feature.kind == "bool":
            values = pd.array(rng.random(n) < 0.5, dtype="boolean")
            values[gap] = pd.NA
            columns[feature.name] = values
        else:
            columns[feature.name] = np.where(gap, np.nan, rng.normal(size=n))
    return pd.DataFrame(columns)


def test_frames_and_feature_rows_give_the_same_context() -> None:
    frame = feature_frame(40, 3)
    stage = np.array([STAGES[i % 3] for i in range(40)], dtype=object)
    days = np.linspace(-5, 5, 40)
    scores = {"late_payment_probability": np.linspace(0, 1, 40)}
    from_frame = context_matrix(frame, stage, days, STAGES, scores)
    from_rows = context_matrix(rows_of_frame(frame), stage, days, STAGES, scores)
    np.testing.assert_array_equal(from_frame, from_rows)
    names = context_columns(STAGES, list(scores))
    assert from_frame.shape == (40, len(names)) and np.isfinite(from_frame).all()
    float_name = next(f.name for f in ALL_FEATURES if f.kind == "float" and f.default is None)
    column = names.index(float_name)
    gap = frame[float_name].isna().to_numpy()
    assert gap.any() and (from_frame[gap, column] == 0).all()
    assert (from_frame[:, names.index(f"{float_name}_missing")] == gap).all()
    flag = next(f.name for f in ALL_FEATURES if f.kind == "bool")
    expected = frame[flag].fillna(False).astype(float).to_numpy()
    np.testing.assert_array_equal(from_rows[:, names.index(flag)], expected)
    plan = names.index(f"plan={VOCABULARIES['plan'][0]}")
    np.testing.assert_array_equal(from_rows[:, plan], frame["plan"] == VOCABULARIES["plan"][0])
    plans = [names.index(f"plan={value}") for value in VOCABULARIES["plan"]]
    unplanned = ~frame["plan"].isin(VOCABULARIES["plan"]).to_numpy()  # missing or unheard-of
    assert unplanned.any() and (from_rows[unplanned][:, plans] == 0).all()
    assert (from_rows[~unplanned][:, plans].sum(axis=1) == 1).all()
    for name in STAGES:
        np.testing.assert_array_equal(from_rows[:, names.index(f"stage={name}")], stage == name)


def test_a_missing_feature_is_named() -> None:
    frame = feature_frame(3, 4).drop(columns=[ALL_FEATURES[0].name])
    with pytest.raises(DataError, match=ALL_FEATURES[0].name):
        context_matrix(frame, np.array(["due"] * 3, dtype=object), np.zeros(3), STAGES)


def test_a_score_that_is_not_finite_is_named() -> None:
    frame = feature_frame(3, 5)
    scores = {
        "late_payment_probability": np.zeros(3),
        "churn_probability": np.array([0, np.nan, 1]),
    }
    with pytest.raises(DataError, match="churn_probability"):
        context_matrix(frame, np.array(["due"] * 3, dtype=object), np.zeros(3), STAGES, scores)
