"""The one estimator: LightGBM with early stopping and a calibrated probability.

:class:`CalibratedLightGBM` follows the scikit-learn contract (hyper-parameters stored as given in
``__init__``, ``fit`` returns ``self``, learned state ends with ``_``). Categoricals are handled
natively by LightGBM: their categories are learned at fit and a value unseen then becomes
missing; missing values are allowed everywhere. Boosting stops early on the validation log loss,
and the same validation rows fit the calibrator (see :mod:`training.calibration`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Self

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from paynudge.errors import ConfigError, DataError
from training.calibration import CALIBRATORS, choose_calibration, fit_calibrator
from training.forest import PackedForest

VALID_NAME = "valid"
"""Name of the validation set in LightGBM's evaluation log (Optuna's pruning callback needs it)."""
ROUND_ALIASES = ("num_boost_round", "num_iterations", "num_iteration", "n_iter", "num_tree",
                 "num_trees", "num_round", "num_rounds", "n_estimators")  # fmt: skip
"""Keys in ``params`` that set the number of boosting rounds (as tuned configs may write)."""
SINGLE_THREAD_ROWS = 500
"""Below this many rows, predict on one thread: starting LightGBM's OpenMP team costs more than
the work (a single row: ~7 ms on the default threads against ~0.6 ms on one, on 2 busy cores);
a served batch of 1,000 decisions is ~10% faster on all threads. The packed forest walks fewer
rows on one thread, more split over the cores."""
_PACKED, _LAYOUT, _SHARED = "_packed_forest", "_matrix_layout", "_shared_columns"
_CACHES = (_PACKED, _LAYOUT, _SHARED)
"""Where a fitted model caches its :class:`PackedForest` and :class:`_MatrixLayout` (derived
from the booster and the categories, rebuilt after loading or refitting)."""
JSON_SPECIAL = re.compile(r'[\[\]{}":,]')
"""Characters LightGBM refuses in feature names; the booster sees them as ``_``."""


@dataclass(frozen=True)
class LightGBMDefaults:
    """Booster parameters used unless ``params`` overrides them: robust on tables never seen.

    A small learning rate with moderately small trees, a floor on leaf size, L2 on leaf values,
    and row/column subsampling: slower to fit than LightGBM's own defaults, but they overfit
    less on a few thousand rows and lose nothing on a million.
    """

    learning_rate: float = 0.03
    num_leaves: int = 15
    min_child_samples: int = 40
    lambda_l2: float = 5.0
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    cat_smooth: float = 10.0
    min_data_per_group: int = 100
    metric: str = "binary_logloss"


@dataclass(frozen=True)
class SmallDataRule:
    """On small tables the leaf minima shrink, or no tree could split (nor use a categorical).

    ``min_child_samples`` and ``min_data_per_group``, unless given in ``params``, become
    ``share`` of the training rows when that is less, but never below ``floor``.
    """

    share: float = 0.2
    floor: int = 5


DEFAULTS = LightGBMDefaults()
SMALL_DATA = SmallDataRule()
ALIASES = {
    "learning_rate": ("shrinkage_rate", "eta"),
    "num_leaves": ("num_leaf", "max_leaves", "max_leaf", "max_leaf_nodes"),
    "min_child_samples": ("min_data_in_leaf", "min_data_per_leaf", "min_data", "min_samples_leaf"),
    "lambda_l2": ("reg_lambda", "lambda", "l2_regularization"),
    "feature_fraction": ("sub_feature", "colsample_bytree"),
    "bagging_fraction": ("sub_row", "subsample", "bagging"),
    "bagging_freq": ("subsample_freq",),
    "min_data_per_group": ("min_data_per_category",),
    "metric": ("metrics", "metric_types"),
}
"""LightGBM's other names for the defaulted parameters: ``params`` may use any of them."""


def canonical_params(params: dict) -> dict:
    """``params`` with LightGBM aliases of the defaulted parameters renamed to their main name."""
    renamed = {alias: main for main, aliases in ALIASES.items() for alias in aliases}
    return {renamed.get(key, key): value for key, value in params.items()}


def numeric_column(values: pd.Series | np.ndarray, name: str) -> np.ndarray:
    """A feature as floats: booleans as 0/1, times as days since 1970, missing as NaN."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind in "biuf":  # feature rows of the decision path: already numbers
            return values.astype(float, copy=False)
        values = pd.Series(values)
    if values.dtype.kind in "biuf":  # the common case first: numbers and booleans
        return values.to_numpy(dtype=float, na_value=np.nan)
    if pd.api.types.is_datetime64_any_dtype(values):
        epoch = pd.Timestamp(0, tz=values.dt.tz)
        return ((values - epoch) / pd.Timedelta(days=1)).to_numpy(dtype=float)
    if pd.api.types.is_timedelta64_dtype(values):
        return (values / pd.Timedelta(days=1)).to_numpy(dtype=float)
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(dtype=float, na_value=np.nan)
    try:
        return pd.to_numeric(values).to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):
        raise DataError(
            f"feature {name!r} (dtype {values.dtype}) is neither numeric nor declared categorical"
        ) from None


def _positions(categories: list) -> dict[object, float]:
    return {category: float(i) for i, category in enumerate(categories)}


def _codes(values: pd.Series | np.ndarray, positions: dict[object, float]) -> np.ndarray:
    """Positions of ``values`` among the categories (``positions``: category -> code) as floats,
    NaN when missing or unseen (what LightGBM reads from a pandas categorical). Arrays go
    through the dict: a categorical per call costs more than scoring a few rows."""
    if isinstance(values, np.ndarray):
        return np.array([positions.get(value, np.nan) for value in values.tolist()], dtype=float)
    codes = pd.Categorical(values, categories=list(positions)).codes
    return np.where(codes < 0, np.nan, codes)


@dataclass(frozen=True)
class _BuiltColumns:
    """Columns of a feature matrix built from the rows: numbers and categorical codes."""

    numeric: np.ndarray
    """Columns of the numeric features ..."""
    numeric_names: list[str]
    """... and their names."""
    categorical: list[tuple[int, str, dict[object, float]]]
    """(column, name, category -> code) of each categorical feature."""

    def fill(self, out: np.ndarray, X: pd.DataFrame | Mapping[str, np.ndarray]) -> None:
        """Write these columns of ``out`` from the rows ``X`` (see
        :meth:`CalibratedLightGBM.feature_matrix`). Numbers and flags are stacked in one step;
        other columns (times, nullable types) go one by one through :func:`numeric_column`."""
        columns = [X[name] for name in self.numeric_names]
        try:  # one (k, n) array in one step (np.stack costs microseconds per column)
            block = np.array(columns) if columns else np.empty((0, len(out)))
        except (TypeError, ValueError):  # times among numbers, say: column by column
            block = np.empty(0, dtype=object)
        if block.dtype.kind in "biuf":
            out[:, self.numeric] = block.T.astype(np.float32)
        else:
            for j, name, values in zip(self.numeric, self.numeric_names, columns, strict=True):
                out[:, j] = numeric_column(values, name).astype(np.float32)
        for j, name, position in self.categorical:
            out[:, j] = _codes(X[name], position)


@dataclass(frozen=True)
class _SharedColumns:
    """The columns one model's matrix takes from another's, and the rest it builds."""

    own: np.ndarray
    source: np.ndarray
    """``own[i]`` of this model's matrix is ``source[i]`` of the other's."""
    rest: _BuiltColumns


@dataclass(frozen=True)
class _MatrixLayout:
    """Where :meth:`CalibratedLightGBM.feature_matrix` puts each feature."""

    built: _BuiltColumns
    """Every column, built from the rows."""
    columns: dict[str, int]
    """Every feature name (the columns a caller must give) and its column."""
    key: tuple
    """Equal for models whose :meth:`CalibratedLightGBM.feature_matrix` is the same for the
    same rows: feature names in order and the categories of each categorical."""


def prediction_threads(rows: int) -> int:
    """LightGBM's ``num_threads`` for predicting ``rows`` rows: one for small batches, else
    LightGBM's default (0: OpenMP's choice)."""
    return 1 if rows < SINGLE_THREAD_ROWS else 0


def walker_threads(rows: int) -> int:
    """Threads the packed forest splits ``rows`` rows over: one for small batches, else one
    per core."""
    return 1 if rows < SINGLE_THREAD_ROWS else os.cpu_count() or 1


def booster_names(names: Sequence[str]) -> list[str]:
    """Feature names LightGBM accepts: JSON special characters replaced, kept unique."""
    safe = [JSON_SPECIAL.sub("_", name) for name in names]
    if len(set(safe)) < len(safe):
        safe = [f"{name}__{index}" for index, name in enumerate(safe)]
    return safe


def learn_categories(X: pd.DataFrame, categorical: Iterable[str]) -> dict[str, list]:
    """The categories of each categorical column of ``X`` (declared ones kept, sorted if able)."""
    unknown = [column for column in categorical if column not in X.columns]
    if unknown:
        raise DataError(f"categorical column(s) {', '.join(unknown)} are not among the features")
    return {column: list(X[column].astype("category").cat.categories) for column in categorical}


def binary_labels(y, name: str) -> np.ndarray:
    """``y`` as an int array of 0/1; a :class:`DataError` for any other value."""
    values = np.asarray(y)
    if values.dtype == bool:
        return values.astype(np.int64)
    found = pd.unique(values)
    if not set(found.tolist()) <= {0, 1}:
        raise DataError(
            f"{name} must hold 0/1 labels (map the positive class first); found {found[:5]}"
        )
    return values.astype(np.int64)


class CalibratedLightGBM(ClassifierMixin, BaseEstimator):
    """Binary LightGBM, early-stopped on validation log loss, calibrated on the same rows."""

    def __init__(
        self,
        params: dict | None = None,
        num_boost_round: int = 2000,
        early_stopping_rounds: int = 50,
        calibration: str = "auto",
        random_state: int = 0,
    ) -> None:
        self.params = params
        self.num_boost_round = num_boost_round
        self.early_stopping_rounds = early_stopping_rounds
        self.calibration = calibration
        self.random_state = random_state

    def booster_params(self, n_rows: int | None = None) -> tuple[dict, int]:
        """LightGBM parameters (defaults, the small-data rule when ``n_rows`` training rows are
        given, then ``params``) and the number of boosting rounds."""
        defaults = asdict(DEFAULTS)
        if n_rows is not None:
            small = max(SMALL_DATA.floor, int(SMALL_DATA.share * n_rows))
            for key in ("min_child_samples", "min_data_per_group"):
                defaults[key] = min(defaults[key], small)
        params = {**defaults, **canonical_params(self.params or {})}
        rounds = self.num_boost_round
        for alias in ROUND_ALIASES:
            if alias in params:
                rounds = int(params.pop(alias))
        fixed = {"objective": "binary", "seed": self.random_state, "verbosity": -1}
        return {**params, **fixed, "deterministic": True, "force_col_wise": True}, rounds

    def fit(
        self,
        X: pd.DataFrame,
        y,
        X_valid: pd.DataFrame,
        y_valid,
        categorical: Sequence[str] = (),
        callbacks: Sequence = (),
    ) -> Self:
        """Boost on (X, y) until the log loss on (X_valid, y_valid) stops improving, calibrate."""
        if self.calibration != "auto" and self.calibration not in CALIBRATORS:
            raise ConfigError(
                f"calibration {self.calibration!r} is unknown; "
                f"expected auto, {', '.join(CALIBRATORS)}"
            )
        y, y_valid = binary_labels(y, "y"), binary_labels(y_valid, "y_valid")
        if len(np.unique(y)) < 2:
            raise DataError("the training rows hold a single class; a classifier needs both")
        for cache in _CACHES:
            self.__dict__.pop(cache, None)
        self.feature_names_ = list(X.columns)
        self.categories_ = learn_categories(X, categorical)
        valid_matrix = self._matrix(X_valid)
        categorical_positions = [self.feature_names_.index(name) for name in self.categories_]
        train = lgb.Dataset(self._matrix(X), y, categorical_feature=categorical_positions)
        valid = lgb.Dataset(valid_matrix, y_valid, reference=train)
        params, rounds = self.booster_params(len(X))
        self.evals_result_: dict = {}
        stop = lgb.early_stopping(self.early_stopping_rounds, first_metric_only=True, verbose=False)
        self.booster_ = lgb.train(
            params,
            train,
            rounds,
            valid_sets=[valid],
            valid_names=[VALID_NAME],
            callbacks=[stop, lgb.record_evaluation(self.evals_result_), *callbacks],
        )
        self.best_iteration_ = self.booster_.best_iteration or self.booster_.current_iteration()
        self._calibrate(self._raw(valid_matrix), y_valid)
        self.classes_ = np.array([0, 1])
        return self

    def _calibrate(self, raw_valid: np.ndarray, y_valid: np.ndarray) -> None:
        """Choose the method (unless given) and fit the calibrator on the validation margins."""
        self.calibration_ = (
            choose_calibration(raw_valid, y_valid, seed=self.random_state)
            if self.calibration == "auto"
            else self.calibration
        )
        self.calibrator_ = fit_calibrator(self.calibration_, raw_valid, y_valid)

    def predict_raw(self, X: pd.DataFrame | Mapping[str, np.ndarray]) -> np.ndarray:
        """The uncalibrated margin (log-odds) of the booster at its best iteration."""
        return self._raw(self.feature_matrix(X))

    def predict_proba(self, X: pd.DataFrame | Mapping[str, np.ndarray]) -> np.ndarray:
        """Calibrated probabilities, shape ``(n, 2)``: columns class 0 and class 1."""
        return self.predict_proba_matrix(self.feature_matrix(X))

    def predict_proba_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """:meth:`predict_proba` of rows already in :meth:`feature_matrix` form (callers that
        vary a few columns of many copies of the same rows skip rebuilding them)."""
        positive = self.positive_proba_matrix(matrix)
        return np.column_stack([1.0 - positive, positive])

    def positive_proba_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Column 1 of :meth:`predict_proba_matrix` alone (the class-1 probability)."""
        self._check_fitted()
        return self.calibrator_.predict(self._raw(matrix))

    def candidate_probabilities(
        self, matrix: np.ndarray, feature: str, values: np.ndarray, segments: np.ndarray
    ) -> np.ndarray:
        """Calibrated class-1 probabilities of candidate rows that differ from a base row only
        in ``feature``: candidates ``segments[i]:segments[i + 1]`` are row ``i`` of ``matrix``
        (in :meth:`feature_matrix` form) with ``feature`` set to each of their ``values``. The
        same numbers as :meth:`predict_proba_matrix` on every candidate row, without walking a
        tree once per candidate (see :meth:`PackedForest.candidate_raw_scores`)."""
        raw = self.packed_forest().candidate_raw_scores(
            matrix, self.feature_index(feature), values, segments, walker_threads(len(values))
        )
        return self.calibrator_.predict(raw)

    def feature_matrix(self, X: pd.DataFrame | Mapping[str, np.ndarray]) -> np.ndarray:
        """The rows as the booster reads them, float64 in fit order: categoricals as codes of
        the learned categories (NaN when missing or unseen, as LightGBM does for pandas input),
        the rest as float32 values (see :meth:`_matrix`). Built into one array with no
        intermediate frame, which dominates the cost of scoring a few rows. ``X`` is a frame or a
        mapping of column name to array (the decision path's feature rows). Numbers and flags
        are stacked in one step; other columns (times, nullable types) go one by one through
        :func:`numeric_column`."""
        self._check_fitted()
        self._check_columns(X)
        layout = self._layout()
        n = len(X) if isinstance(X, pd.DataFrame) else len(X[self.feature_names_[0]])
        out = np.empty((n, len(self.feature_names_)), dtype=np.float64)
        layout.built.fill(out, X)
        return out

    def feature_matrix_from(
        self,
        other: CalibratedLightGBM,
        matrix: np.ndarray,
        X: pd.DataFrame | Mapping[str, np.ndarray],
    ) -> np.ndarray:
        """:meth:`feature_matrix` of rows ``X`` whose matrix for the model ``other`` is
        ``matrix``: the columns both models read alike (a number in both, or a categorical with
        the same categories) are copied from ``matrix``, only the rest are built from ``X``
        (a send-time model reading the risk models' features plus a few of its own, say)."""
        self._check_fitted()
        self._check_columns(X)
        shared = self._shared_with(other)
        if matrix.shape[1] != len(other.feature_names_):
            raise DataError(
                f"expected a matrix of {len(other.feature_names_)} feature columns, "
                f"got shape {matrix.shape}"
            )
        out = np.empty((len(matrix), len(self.feature_names_)), dtype=np.float64)
        out[:, shared.own] = matrix[:, shared.source]
        shared.rest.fill(out, X)
        return out

    def _shared_with(self, other: CalibratedLightGBM) -> _SharedColumns:
        """Which columns of :meth:`feature_matrix` equal which of ``other``'s (cached per
        ``other`` layout)."""
        key = other.matrix_key()
        cache = self.__dict__.setdefault(_SHARED, {})
        shared = cache.get(key)
        if shared is None:
            built = self._layout().built
            theirs = {name: j for j, name in enumerate(other.feature_names_)}
            categories = other.categories_
            own, source = [], []
            for j, name in enumerate(self.feature_names_):
                mine = self.categories_.get(name)
                same = name in theirs and (
                    mine == categories[name] if name in categories else mine is None
                )
                if same:
                    own.append(j)
                    source.append(theirs[name])
            copied = set(own)
            numeric = [
                (j, name)
                for j, name in zip(built.numeric, built.numeric_names, strict=True)
                if j not in copied
            ]
            rest = _BuiltColumns(
                numeric=np.array([j for j, _ in numeric], dtype=np.int64),
                numeric_names=[name for _, name in numeric],
                categorical=[entry for entry in built.categorical if entry[0] not in copied],
            )
            shared = _SharedColumns(
                own=np.array(own, dtype=np.int64),
                source=np.array(source, dtype=np.int64),
                rest=rest,
            )
            cache[key] = shared
        return shared

    def _layout(self) -> _MatrixLayout:
        layout = self.__dict__.get(_LAYOUT)
        if layout is None:
            names = self.feature_names_
            numeric = [j for j, name in enumerate(names) if name not in self.categories_]
            layout = _MatrixLayout(
                built=_BuiltColumns(
                    numeric=np.array(numeric, dtype=np.int64),
                    numeric_names=[names[j] for j in numeric],
                    categorical=[
                        (names.index(name), name, _positions(categories))
                        for name, categories in self.categories_.items()
                    ],
                ),
                columns={name: j for j, name in enumerate(names)},
                key=(
                    tuple(names),
                    tuple((name, tuple(values)) for name, values in self.categories_.items()),
                ),
            )
            self.__dict__[_LAYOUT] = layout
        return layout

    def feature_index(self, name: str) -> int:
        """The column of feature ``name`` in :meth:`feature_matrix`."""
        self._check_fitted()
        column = self._layout().columns.get(name)
        if column is None:
            raise DataError(f"the model has no feature {name!r}")
        return column

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The more probable class (threshold 0.5 on the calibrated probability)."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)

    def contributions(self, X: pd.DataFrame | Mapping[str, np.ndarray]) -> pd.DataFrame:
        """SHAP values of the raw margin per feature, plus ``bias``; each row sums to the margin."""
        matrix = self.feature_matrix(X)
        values = self.booster_.predict(
            matrix,
            pred_contrib=True,
            num_iteration=self.best_iteration_,
            num_threads=prediction_threads(len(matrix)),
        )
        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(values, columns=[*self.feature_names_, "bias"], index=index)

    def _raw(self, matrix: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Raw margins. Matrices go through the packed forest (LightGBM's sums, without its
        per-call setup and cache misses), big ones split over the cores; a frame (fitting's
        validation rows) goes through LightGBM."""
        if isinstance(matrix, np.ndarray):
            return self.packed_forest().raw_scores(matrix, walker_threads(len(matrix)))
        raw = self.booster_.predict(
            matrix,
            raw_score=True,
            num_iteration=self.best_iteration_,
            num_threads=prediction_threads(len(matrix)),
        )
        return np.asarray(raw, dtype=float)

    def packed_forest(self) -> PackedForest:
        """The booster's trees up to the best iteration as a :class:`PackedForest` (built on
        first use, dropped from pickles: a cache of the booster)."""
        self._check_fitted()
        packed = self.__dict__.get(_PACKED)
        if packed is None:
            packed = PackedForest.from_booster(self.booster_, self.best_iteration_)
            self.__dict__[_PACKED] = packed
        return packed

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())
        for cache in _CACHES:
            state.pop(cache, None)
        return state

    def _check_fitted(self) -> None:
        """sklearn's NotFittedError unless fitted (a plain attribute test: sklearn's own check
        inspects every attribute, several microseconds per call on the decision path)."""
        if not hasattr(self, "booster_"):
            check_is_fitted(self, "booster_")

    def matrix_key(self) -> tuple:
        """Equal for two fitted models whose :meth:`feature_matrix` of the same rows is the
        same (the same features in the same order, the same categories): a caller scoring
        rows with both builds the matrix once."""
        self._check_fitted()
        return self._layout().key

    def _check_columns(self, X: pd.DataFrame | Mapping[str, np.ndarray]) -> None:
        columns = set(X.columns) if isinstance(X, pd.DataFrame) else X.keys()
        if columns >= self._layout().columns.keys():
            return
        missing = [name for name in self.feature_names_ if name not in columns]
        if missing:
            raise DataError(f"the rows lack feature column(s) {', '.join(missing)}")

    def _matrix(self, X: pd.DataFrame) -> pd.DataFrame:
        """The feature columns in fit order: categoricals with the learned categories, the rest
        as float32. LightGBM bins features anyway; float32 halves the memory and makes the model
        blind to last-digit noise (such as parallel sums in the feature pipeline)."""
        self._check_columns(X)
        names = zip(self.feature_names_, booster_names(self.feature_names_), strict=True)
        columns = {
            safe: (
                pd.Categorical(X[name], categories=self.categories_[name])
                if name in self.categories_
                else numeric_column(X[name], name).astype(np.float32)
            )
            for name, safe in names
        }
        return pd.DataFrame(columns, index=X.index)
