"""The calibrated LightGBM estimator keeps the scikit-learn contract; calibrators behave."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn.exceptions import NotFittedError

from paynudge.errors import DataError
from training.calibration import (
    CalibrationSettings,
    IsotonicCalibrator,
    SigmoidCalibrator,
    choose_calibration,
)
from training.model import CalibratedLightGBM, numeric_column

CATEGORIES = ("basic", "plus", "premium")


def make_rows(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """A numeric, a categorical and a boolean feature, some values missing; a logistic label."""
    rng = np.random.default_rng(seed)
    balance = rng.normal(size=n)
    balance[rng.random(n) < 0.1] = np.nan
    plan = pd.Series(rng.choice(CATEGORIES, size=n)).where(rng.random(n) > 0.05)
    autopay = rng.random(n) < 0.4
    effect = plan.map({"basic": 0.8, "plus": 0.0, "premium": -0.8}).fillna(0.0).to_numpy()
    logit = 1.5 * np.nan_to_num(balance) + effect - 1.0 * autopay - 0.5
    y = (rng.random(n) < expit(logit)).astype(int)
    return pd.DataFrame({"balance": balance, "plan": plan, "autopay": autopay}), y


@pytest.fixture(scope="module")
def data() -> dict[str, tuple[pd.DataFrame, np.ndarray]]:
    return {"train": make_rows(3000, 1), "valid": make_rows(1000, 2), "test": make_rows(1000, 3)}


def fit(data, **kwargs) -> CalibratedLightGBM:
    (X, y), (X_valid, y_valid) = data["train"], data["valid"]
    return CalibratedLightGBM(**kwargs).fit(X, y, X_valid, y_valid, categorical=["plan"])


@pytest.fixture(scope="module")
def model(data) -> CalibratedLightGBM:
    return fit(data)


def test_fit_returns_self_with_learned_attributes(data) -> None:
    estimator = CalibratedLightGBM(random_state=3)
    (X, y), (X_valid, y_valid) = data["train"], data["valid"]
    assert estimator.fit(X, y, X_valid, y_valid, categorical=["plan"]) is estimator
    learned = ("booster_", "calibrator_", "calibration_", "feature_names_", "categories_",
               "best_iteration_", "classes_")  # fmt: skip
    assert all(hasattr(estimator, name) for name in learned)
    assert not any(name.endswith("_") for name in vars(CalibratedLightGBM()))
    assert estimator.categories_ == {"plan": list(CATEGORIES)}
    assert estimator.calibration_ in {"isotonic", "sigmoid"}
    assert list(estimator.classes_) == [0, 1]
    assert estimator.get_params()["random_state"] == 3


def test_predict_before_fit_raises_not_fitted(data) -> None:
    X, _ = data["test"]
    for method in ("predict_proba", "predict_raw", "contributions"):
        with pytest.raises(NotFittedError):
            getattr(CalibratedLightGBM(), method)(X)


def test_probabilities_two_columns_in_unit_interval_and_informative(model, data) -> None:
    X, y = data["test"]
    probability = model.predict_proba(X)
    assert probability.shape == (len(X), 2)
    assert np.all((probability >= 0) & (probability <= 1))
    np.testing.assert_allclose(probability.sum(axis=1), 1.0)
    assert abs(probability[:, 1].mean() - y.mean()) < 0.05
    assert set(model.predict(X)) <= {0, 1}


def test_contributions_sum_to_the_raw_margin(model, data) -> None:
    X, _ = data["test"]
    contributions = model.contributions(X)
    assert list(contributions.columns) == ["balance", "plan", "autopay", "bias"]
    np.testing.assert_allclose(contributions.sum(axis=1), model.predict_raw(X), atol=1e-9)


def test_unseen_category_and_missing_values_score_like_missing(model) -> None:
    rows = pd.DataFrame(
        {"balance": [0.3, 0.3, np.nan], "plan": ["gold", None, "gold"], "autopay": [True] * 3}
    )
    probability = model.predict_proba(rows)[:, 1]
    assert np.all(np.isfinite(probability))
    assert probability[0] == probability[1]  # unseen "gold" is treated as missing


def test_extra_and_reordered_columns_are_ignored(model, data) -> None:
    X, _ = data["test"]
    shuffled = X[["autopay", "plan", "balance"]].assign(customer="c")
    np.testing.assert_array_equal(model.predict_proba(shuffled), model.predict_proba(X))


def test_models_reading_the_same_rows_share_a_matrix_key(model, data) -> None:
    """Equal keys promise equal matrices; other columns or categories change the key, and a
    refit forgets the layout of its previous fit."""
    (X, y), (X_valid, y_valid), (X_test, _) = data["train"], data["valid"], data["test"]
    other = fit(data, params={"num_iterations": 5})
    assert other.matrix_key() == model.matrix_key()
    np.testing.assert_array_equal(other.feature_matrix(X_test), model.feature_matrix(X_test))
    fewer = CalibratedLightGBM(num_boost_round=5).fit(
        X.assign(plan=X["plan"].where(X["plan"] != "premium")), y, X_valid, y_valid, ["plan"]
    )
    assert fewer.matrix_key() != model.matrix_key()
    reordered = CalibratedLightGBM(num_boost_round=5)
    reordered.fit(X[["plan", "balance", "autopay"]], y, X_valid, y_valid, ["plan"])
    assert reordered.matrix_key() != model.matrix_key()
    refit = fit(data, num_boost_round=5)
    refit.feature_matrix(X_test)  # caches the layout of the first fit
    refit.fit(X[["balance", "autopay"]], y, X_valid[["balance", "autopay"]], y_valid)
    assert refit.matrix_key()[0] == ("balance", "autopay")
    with pytest.raises(DataError, match="lack feature column"):
        refit.feature_matrix({"balance": np.zeros(2)})


def test_a_matrix_built_from_another_models_matrix_equals_one_built_from_the_rows(
    data,
) -> None:
    """Columns read alike are copied; a categorical with other categories, a column read as a
    number by one model and as a category by the other, and columns of its own are built."""
    (X, y), (X_valid, y_valid), (X_test, _) = data["train"], data["valid"], data["test"]

    def extended(frame: pd.DataFrame) -> pd.DataFrame:
        hour = np.arange(len(frame)) % 24
        return frame.assign(code=hour % 3, hour=hour, tier=frame["plan"])

    narrow = CalibratedLightGBM(num_boost_round=5)
    narrow.fit(extended(X)[["balance", "plan", "code", "autopay"]], y,
               extended(X_valid), y_valid, ["plan"])  # fmt: skip
    cases = {  # the wider model's categoricals, and what it copies from the narrow one
        "same categories": (["plan", "tier"], {"balance", "plan", "code", "autopay"}),
        "plan with other categories": (["plan", "tier"], {"balance", "code", "autopay"}),
        "code a category here": (["plan", "tier", "code"], {"balance", "plan", "autopay"}),
    }
    test = extended(X_test)
    source = narrow.feature_matrix(test)
    for case, (categorical, expected) in cases.items():
        rows = extended(X)
        if case == "plan with other categories":
            rows = rows.assign(plan=rows["plan"].where(rows["plan"] != "premium"))
        wider = CalibratedLightGBM(num_boost_round=5)
        wider.fit(rows, y, extended(X_valid), y_valid, categorical)
        built = wider.feature_matrix(test)
        np.testing.assert_array_equal(wider.feature_matrix_from(narrow, source, test), built)
        copied = {wider.feature_names_[j] for j in wider._shared_with(narrow).own}
        assert copied == expected, case
    with pytest.raises(DataError, match="feature columns"):
        wider.feature_matrix_from(narrow, source[:, :2], test)


def test_same_random_state_same_model(data, model) -> None:
    X, _ = data["test"]
    np.testing.assert_array_equal(fit(data).predict_proba(X), model.predict_proba(X))


def test_params_override_defaults_and_rounds(data) -> None:
    model = fit(data, params={"num_iterations": 7, "min_data_in_leaf": 100}, calibration="sigmoid")
    params, rounds = model.booster_params(3000)
    assert rounds == 7 and model.best_iteration_ <= 7
    assert params["min_child_samples"] == 100 and "min_data_in_leaf" not in params
    assert model.calibration_ == "sigmoid"


def test_small_tables_get_smaller_leaves() -> None:
    params, _ = CalibratedLightGBM().booster_params(100)
    assert params["min_child_samples"] == 20 and params["min_data_per_group"] == 20


def test_json_special_characters_in_feature_names(data) -> None:
    (X, y), (X_valid, y_valid) = data["train"], data["valid"]
    renamed = {"balance": "balance [EUR]", "plan": 'plan: "tier"'}
    model = CalibratedLightGBM().fit(
        X.rename(columns=renamed), y, X_valid.rename(columns=renamed), y_valid,
        categorical=['plan: "tier"'],
    )  # fmt: skip
    assert list(model.contributions(X_valid.rename(columns=renamed)).columns)[:2] == [
        "balance [EUR]",
        'plan: "tier"',
    ]


def test_sigmoid_recovers_a_known_platt_mapping() -> None:
    rng = np.random.default_rng(0)
    raw = rng.normal(scale=2.0, size=20000)
    y = (rng.random(raw.size) < expit(0.5 * raw - 1.0)).astype(int)
    calibrator = SigmoidCalibrator().fit(raw, y)
    assert calibrator.a_ == pytest.approx(0.5, abs=0.05)
    assert calibrator.b_ == pytest.approx(-1.0, abs=0.05)


def test_isotonic_is_monotone_keeps_ranking_and_avoids_certainty() -> None:
    rng = np.random.default_rng(1)
    raw = rng.normal(size=2000)
    y = (rng.random(raw.size) < np.where(raw > 0, 0.8, 0.1)).astype(int)
    calibrator = IsotonicCalibrator().fit(raw, y)
    grid = np.linspace(-2, 2, 401)
    p = calibrator.predict(grid)
    assert np.all(np.diff(p) >= 0)
    inside = (grid > calibrator.centres_[0]) & (grid < calibrator.centres_[-1])
    assert np.all(np.diff(p[inside]) > 0)  # strictly increasing between the outer centres
    assert (
        0 < calibrator.predict(np.array([-50.0]))[0] < calibrator.predict(np.array([50.0]))[0] < 1
    )


def test_choice_prefers_isotonic_for_a_step_and_sigmoid_when_data_are_few() -> None:
    rng = np.random.default_rng(2)
    raw = rng.normal(size=4000)
    step = (rng.random(raw.size) < np.where(raw > 0.5, 0.9, 0.05)).astype(int)
    logistic = (rng.random(raw.size) < expit(raw)).astype(int)
    assert choose_calibration(raw, step) == "isotonic"
    assert choose_calibration(raw, logistic) == "sigmoid"
    few = CalibrationSettings(min_class_rows_for_isotonic=10_000)
    assert choose_calibration(raw, step, settings=few) == "sigmoid"


def test_feature_matrix_scores_exactly_as_the_booster_reads_pandas(model, data) -> None:
    X, _ = data["test"]
    rows = pd.concat(
        [X, pd.DataFrame({"balance": [np.nan], "plan": ["gold"], "autopay": [pd.NA]})],
        ignore_index=True,
    )
    booster = model.booster_.predict(
        model._matrix(rows), raw_score=True, num_iteration=model.best_iteration_
    )
    np.testing.assert_array_equal(model.predict_raw(rows), booster)
    matrix = model.feature_matrix(rows)
    assert matrix.shape == (len(rows), 3) and matrix.dtype == np.float64
    assert np.isnan(matrix[-1, model.feature_index("plan")])
    np.testing.assert_array_equal(model.predict_proba_matrix(matrix), model.predict_proba(rows))
    np.testing.assert_array_equal(
        model.positive_proba_matrix(matrix), model.predict_proba(rows)[:, 1]
    )
    with pytest.raises(DataError, match="no feature 'customer'"):
        model.feature_index("customer")


def test_feature_matrix_reads_every_numeric_kind_as_the_stacked_path_does(data) -> None:
    """Times, durations, nullable counts and flags (column by column) give the same matrix as
    the same values as float64 arrays (stacked in one step)."""
    X, y = data["train"]
    n = len(X)
    rng = np.random.default_rng(4)
    frame = X.assign(
        opened=pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 900, n), "D"),
        waited=pd.to_timedelta(rng.integers(0, 40, n), "h"),
        tenure=pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(0, 60, n)), "Int64"),
        calls=rng.integers(0, 5, n),
    )
    model = CalibratedLightGBM(num_boost_round=20).fit(
        frame[:2000], y[:2000], frame[2000:], y[2000:], categorical=["plan"]
    )
    arrays = {name: numeric_column(frame[name], name) for name in frame.columns if name != "plan"}
    arrays["plan"] = frame["plan"].to_numpy(dtype=object)
    by_column = model.feature_matrix(frame)
    np.testing.assert_array_equal(by_column, model.feature_matrix(arrays))
    days = (frame["opened"] - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(days=1)
    opened = by_column[:, model.feature_index("opened")]
    np.testing.assert_array_equal(opened, days.to_numpy().astype(np.float32))
