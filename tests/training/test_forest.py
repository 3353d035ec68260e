"""The packed forest scores exactly as LightGBM: bitwise-equal raw margins on awkward rows."""

from __future__ import annotations

import pickle

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from paynudge.errors import DataError
from training.forest import ZERO_THRESHOLD, PackedForest
from training.model import CalibratedLightGBM


def training_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Numbers with NaN and zeros, and two categorical columns (codes 0-11 and 0-39)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    X[:, 4] = rng.integers(0, 12, n)
    X[:, 5] = rng.integers(0, 40, n)
    X[rng.random(n) < 0.15, 0] = np.nan
    X[rng.random(n) < 0.3, 1] = 0.0
    logit = X[:, 2] + np.isin(X[:, 4], [1, 3, 7]) - 0.05 * X[:, 5] + np.nan_to_num(X[:, 0])
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def awkward_rows(n: int, seed: int) -> np.ndarray:
    """Rows LightGBM treats specially: NaN, zeros, values within 1e-35 of zero, negative and
    fractional categories, unseen and huge categories, infinities."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)) * 3
    X[:, 4] = rng.integers(-3, 20, n) + rng.choice([0.0, 0.5, -0.5], n)
    X[:, 5] = rng.integers(-2, 80, n)
    specials = np.array([np.nan, 0.0, -0.0, ZERO_THRESHOLD, -ZERO_THRESHOLD, 1e-36, 3e9, -3e9,
                         np.inf, -np.inf])  # fmt: skip
    mask = rng.random(X.shape) < 0.25
    X[mask] = rng.choice(specials, mask.sum())
    return X


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"zero_as_missing": True},
        {"use_missing": False},
        {"max_cat_to_onehot": 64},
        {"objective": "regression"},
    ],
    ids=["nan-missing", "zero-as-missing", "no-missing", "one-hot-categories", "regression"],
)
def test_raw_scores_equal_lightgbm_bitwise(params: dict) -> None:
    X, y = training_rows(1500, seed=1)
    base = {"objective": "binary", "num_leaves": 15, "min_data_in_leaf": 5, "verbosity": -1,
            "min_data_per_group": 5, "cat_smooth": 1.0}  # fmt: skip
    data = lgb.Dataset(X, y, categorical_feature=[4, 5])
    booster = lgb.train({**base, **params}, data, num_boost_round=60)
    dump = booster.dump_model()
    kinds = {"==" if "==" in str(tree) else "<=" for tree in dump["tree_info"]}
    assert "==" in kinds  # the categorical path is exercised
    forest = PackedForest.from_booster(booster)
    rows = np.vstack([awkward_rows(3000, seed=2), X[:500]])
    expected = booster.predict(rows, raw_score=True)
    np.testing.assert_array_equal(forest.raw_scores(rows), expected)
    np.testing.assert_array_equal(forest.raw_scores(rows, threads=3), expected)  # split rows


@pytest.mark.parametrize("column", [2, 4, 0], ids=["numerical", "categorical", "with-nan"])
def test_candidates_score_as_their_full_rows(column: int) -> None:
    """Candidate rows differing from a base row in one column score bitwise as the full rows,
    whatever the candidates' number (none included), values and order, on one or more
    threads."""
    X, y = training_rows(1500, seed=8)
    params = {"objective": "binary", "num_leaves": 15, "min_data_in_leaf": 5, "verbosity": -1,
              "min_data_per_group": 5, "cat_smooth": 1.0}  # fmt: skip
    booster = lgb.train(params, lgb.Dataset(X, y, categorical_feature=[4, 5]), 40)
    forest = PackedForest.from_booster(booster)
    rng = np.random.default_rng(9)
    base = awkward_rows(200, seed=10)
    counts = rng.integers(0, 15, len(base))
    counts[:3] = (0, 1, 0)
    segments = np.concatenate([[0], np.cumsum(counts)])
    values = awkward_rows(int(segments[-1]), seed=11)[:, column]
    full = base[np.repeat(np.arange(len(base)), counts)]
    full[:, column] = values
    expected = booster.predict(full, raw_score=True)
    for threads in (1, 3):
        scores = forest.candidate_raw_scores(base, column, values, segments, threads)
        np.testing.assert_array_equal(scores, expected)


def test_candidates_with_bad_segments_are_refused() -> None:
    X, y = training_rows(200, seed=5)
    forest = PackedForest.from_booster(lgb.train({"verbosity": -1}, lgb.Dataset(X, y), 3))
    base, values = np.zeros((2, 6)), np.zeros(4)
    for segments in ([0, 4], [0, 3, 4, 4], [1, 2, 4], [0, 3, 2], [0, 2, 3]):
        with pytest.raises(DataError, match="segments must rise from 0 to the 4 values"):
            forest.candidate_raw_scores(base, 2, values, np.array(segments))
    with pytest.raises(DataError, match="column 6 is not one of the 6 features"):
        forest.candidate_raw_scores(base, 6, values, np.array([0, 2, 4]))


def test_first_iterations() -> None:
    X, y = training_rows(300, seed=3)
    booster = lgb.train({"objective": "binary", "verbosity": -1}, lgb.Dataset(X, y), 20)
    rows = awkward_rows(500, seed=4)
    for iterations in (1, 5, None):
        forest = PackedForest.from_booster(booster, iterations)
        expected = booster.predict(rows, raw_score=True, num_iteration=iterations)
        np.testing.assert_array_equal(forest.raw_scores(rows), expected)


def test_a_tree_that_is_one_leaf() -> None:
    X, _ = training_rows(300, seed=3)
    params = {"objective": "regression", "verbosity": -1}
    booster = lgb.train(params, lgb.Dataset(X, np.full(300, 2.5)), 5)  # nothing to split on
    assert [tree["num_leaves"] for tree in booster.dump_model()["tree_info"]] == [1]
    rows = awkward_rows(50, seed=4)
    forest = PackedForest.from_booster(booster)
    np.testing.assert_array_equal(forest.raw_scores(rows), booster.predict(rows, raw_score=True))


def test_wrong_width_is_refused() -> None:
    X, y = training_rows(200, seed=5)
    forest = PackedForest.from_booster(lgb.train({"verbosity": -1}, lgb.Dataset(X, y), 3))
    with pytest.raises(DataError, match=r"6 feature columns, got shape \(2, 5\)"):
        forest.raw_scores(np.zeros((2, 5)))


def test_multiclass_is_refused() -> None:
    X, y = training_rows(300, seed=6)
    params = {"objective": "multiclass", "num_class": 3, "verbosity": -1}
    booster = lgb.train(params, lgb.Dataset(X, (y + (X[:, 2] > 1)) % 3), 3)
    with pytest.raises(DataError, match="one tree per iteration"):
        PackedForest.from_booster(booster)


def test_model_scores_few_and_many_rows_alike_and_pickles_without_the_pack() -> None:
    X, y = training_rows(2000, seed=7)
    frame = pd.DataFrame(X[:, :4], columns=["a", "b", "c", "d"])
    frame["plan"] = pd.Series(X[:, 4].astype(int).astype(str), dtype="category")
    model = CalibratedLightGBM(params={"num_leaves": 7}, num_boost_round=40)
    model.fit(frame[:1500], y[:1500], frame[1500:], y[1500:])
    matrix = model.feature_matrix(frame)
    few = np.concatenate([model._raw(matrix[i : i + 10]) for i in range(0, 2000, 10)])
    many = model._raw(matrix)  # 2,000 rows: split over the cores
    np.testing.assert_array_equal(few, many)
    booster = model.booster_.predict(matrix, raw_score=True, num_iteration=model.best_iteration_)
    np.testing.assert_array_equal(many, booster)
    assert "_packed_forest" in model.__dict__
    copy = pickle.loads(pickle.dumps(model))
    assert "_packed_forest" not in copy.__dict__
    np.testing.assert_array_equal(copy.predict_proba(frame[:5]), model.predict_proba(frame[:5]))
