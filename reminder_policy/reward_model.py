"""A cross-fitted LightGBM reward model: q_hat(x_i, a) for every round and action, for DM and DR.

:meth:`CrossFittedRewardModel.fit_predict` splits the rounds into K folds and estimates each
round's rewards with a model trained on the other folds, so the DR correction
``w_i (r_i - q_hat(x_i, a_i))`` never uses a q_hat that saw r_i (cross-fitting, as in double ML).
The booster regresses the reward on the context features plus the action's features (or its id as
a categorical). Rewards all in {0, 1} use the binary objective and give probabilities; any other
rewards use l2 regression. Contexts may be an array or a DataFrame with categorical, text or
boolean columns; missing values are left to LightGBM.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Self

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_is_fitted

from paynudge.errors import ConfigError, DataError
from reminder_policy.ope import as_actions, as_pscore, as_rounds


@dataclass(frozen=True)
class BoosterDefaults:
    """LightGBM parameters unless ``params`` overrides them (by their main names).

    Moderate trees, a floor on leaf size and L2 on leaf values: bandit rewards are noisy (clicks
    of a few per mille), so the model must not chase noise. Early stopping sets the length; the
    fairly high learning rate keeps the ensemble short, since scoring every action of every round
    costs n_rounds x n_actions x n_trees tree walks.
    """

    learning_rate: float = 0.1
    num_leaves: int = 15
    min_data_in_leaf: int = 30
    lambda_l2: float = 5.0
    feature_fraction: float = 0.9
    cat_smooth: float = 10.0
    min_data_per_group: int = 30


DEFAULTS = BoosterDefaults()
LEAF_SHARE = 0.05
"""On small logs a leaf needs at most this share of the training rows (so trees can split)."""
VALID_SHARE = 0.2
"""Share of a model's training rows held out to stop boosting early."""
ACTION_ID = "action_id"
"""Feature name of the action id (a categorical) when no action features are given."""


class CrossFittedRewardModel(BaseEstimator):
    """LightGBM reward model: cross-fitted (:meth:`fit_predict`) or one model (:meth:`fit`).

    ``weight_by_pscore`` weighs training rows by 1 / pscore, so the model fits the whole action
    space evenly rather than where the logging policy played most. ``n_jobs`` is LightGBM's thread
    count: one by default, since OpenMP threads on a busy machine (parallel tests, other jobs)
    slow boosting down many times over; raise it for large logs on idle cores.
    """

    def __init__(
        self,
        n_folds: int = 3,
        params: dict | None = None,
        num_boost_round: int = 200,
        early_stopping_rounds: int | None = 20,
        weight_by_pscore: bool = False,
        n_jobs: int = 1,
        seed: int = 0,
    ) -> None:
        self.n_folds = n_folds
        self.params = params
        self.num_boost_round = num_boost_round
        self.early_stopping_rounds = early_stopping_rounds
        self.weight_by_pscore = weight_by_pscore
        self.n_jobs = n_jobs
        self.seed = seed

    def fit(
        self,
        contexts: pd.DataFrame | ArrayLike,
        action: ArrayLike,
        reward: ArrayLike,
        *,
        pscore: ArrayLike | None = None,
        action_features: ArrayLike | None = None,
        n_actions: int | None = None,
    ) -> Self:
        """One model on all rounds, to score new contexts with :meth:`predict`."""
        frame, action, reward, weight = self._learn_inputs(
            contexts, action, reward, pscore, action_features, n_actions
        )
        self.models_ = [self._boost(self._design(frame, action), reward, weight)]
        return self

    def fit_predict(
        self,
        contexts: pd.DataFrame | ArrayLike,
        action: ArrayLike,
        reward: ArrayLike,
        *,
        pscore: ArrayLike | None = None,
        action_features: ArrayLike | None = None,
        n_actions: int | None = None,
    ) -> np.ndarray:
        """Cross-fitted q_hat, shape (n, n_actions): row i from the model of the folds without i.

        The fold models are kept: :meth:`predict` then averages them on new contexts.
        """
        if not (isinstance(self.n_folds, int) and self.n_folds >= 2):
            raise ConfigError(f"n_folds: expected an integer >= 2, found {self.n_folds!r}")
        frame, action, reward, weight = self._learn_inputs(
            contexts, action, reward, pscore, action_features, n_actions
        )
        if len(frame) < 2 * self.n_folds:
            raise DataError(
                f"contexts: expected at least {2 * self.n_folds} rounds for {self.n_folds} "
                f"folds, found {len(frame)}"
            )
        estimates = np.empty((len(frame), self.n_actions_))
        self.models_ = []
        self.fold_ = np.empty(len(frame), dtype=np.int64)
        folds = KFold(self.n_folds, shuffle=True, random_state=self.seed)
        for fold, (train, held_out) in enumerate(folds.split(frame)):
            design = self._design(frame.iloc[train], action[train])
            booster = self._boost(design, reward[train], weight[train])
            estimates[held_out] = self._predict_all(booster, frame.iloc[held_out])
            self.models_.append(booster)
            self.fold_[held_out] = fold
        return estimates

    def predict(self, contexts: pd.DataFrame | ArrayLike) -> np.ndarray:
        """q_hat for every action of each context, shape (n, n_actions)."""
        check_is_fitted(self, "models_")
        frame = self._context_frame(contexts)
        return np.mean([self._predict_all(booster, frame) for booster in self.models_], axis=0)

    def booster_params(self, n_rows: int) -> dict:
        """LightGBM parameters for ``n_rows`` rows: defaults, small-log rule, then ``params``."""
        defaults = asdict(DEFAULTS)
        for key in ("min_data_in_leaf", "min_data_per_group"):
            defaults[key] = max(1, min(defaults[key], int(LEAF_SHARE * n_rows)))
        objective, metric = ("binary", "binary_logloss") if self.binary_ else ("regression", "l2")
        fixed = {"objective": objective, "metric": metric, "seed": self.seed}
        run = {"num_threads": self.n_jobs, "verbosity": -1, "deterministic": True}
        return {**defaults, **fixed, **run, "force_col_wise": True, **(self.params or {})}

    def _learn_inputs(
        self,
        contexts: pd.DataFrame | ArrayLike,
        action: ArrayLike,
        reward: ArrayLike,
        pscore: ArrayLike | None,
        action_features: ArrayLike | None,
        n_actions: int | None,
    ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
        """Checked (contexts, action, reward, row weight); learns the context columns, the
        action space and the objective."""
        self._learn_contexts(contexts)
        frame = self._context_frame(contexts)
        n = len(frame)
        reward = as_rounds(reward, "reward", n)
        self.action_features_ = None
        if action_features is not None:
            self.action_features_ = np.asarray(action_features, dtype=np.float64)
            if self.action_features_.ndim != 2:
                raise DataError(
                    "action_features: expected shape (n_actions, n_features), "
                    f"found {self.action_features_.shape}"
                )
            n_actions = len(self.action_features_) if n_actions is None else n_actions
            if len(self.action_features_) != n_actions:
                raise DataError(
                    f"action_features: expected {n_actions} rows (one per action), "
                    f"found {len(self.action_features_)}"
                )
        action = as_actions(action, n, np.inf if n_actions is None else n_actions)
        self.n_actions_ = int(action.max()) + 1 if n_actions is None else int(n_actions)
        self.binary_ = bool(np.isin(reward, (0.0, 1.0)).all())
        weight = np.ones(n)
        if self.weight_by_pscore:
            if pscore is None:
                raise DataError("pscore: expected the logging propensities (weight_by_pscore)")
            weight = 1.0 / as_pscore(pscore, n)
        return frame, action, reward, weight

    def _learn_contexts(self, contexts: pd.DataFrame | ArrayLike) -> None:
        """The context columns and, for text or categorical ones, their categories."""
        self.categories_: dict[object, pd.Index] = {}
        if not isinstance(contexts, pd.DataFrame):
            shape = np.shape(contexts)
            if len(shape) != 2:
                raise DataError(
                    "contexts: expected a DataFrame or an array of shape (n_rounds, n_features), "
                    f"found shape {shape}"
                )
            self.context_columns_ = None
            self.n_features_in_ = shape[1]
            return
        self.context_columns_ = list(contexts.columns)
        self.n_features_in_ = contexts.shape[1]
        kinds = pd.api.types
        for name in contexts.columns:
            values = contexts[name]
            if kinds.is_datetime64_any_dtype(values) or kinds.is_timedelta64_dtype(values):
                raise DataError(
                    f"contexts: column {name} holds times; expected numbers, booleans, text or "
                    "categories (convert times to numbers, such as days since an event)"
                )
            if not (kinds.is_numeric_dtype(values) or kinds.is_bool_dtype(values)):
                self.categories_[name] = values.astype("category").cat.categories

    def _context_frame(self, contexts: pd.DataFrame | ArrayLike) -> pd.DataFrame:
        """Contexts as at fit: columns ``context_j``, numbers as float32, the rest categories."""
        if self.context_columns_ is None:
            try:
                array = np.asarray(contexts, dtype=np.float32)
            except (TypeError, ValueError):
                raise DataError("contexts: expected numbers (or a DataFrame)") from None
            if array.ndim != 2 or array.shape[1] != self.n_features_in_:
                raise DataError(
                    f"contexts: expected shape (n_rounds, {self.n_features_in_}), "
                    f"found {array.shape}"
                )
            return pd.DataFrame(array, columns=[f"context_{j}" for j in range(array.shape[1])])
        if not isinstance(contexts, pd.DataFrame):
            raise DataError("contexts: expected a DataFrame, as at fit")
        missing = [str(name) for name in self.context_columns_ if name not in contexts.columns]
        if missing:
            raise DataError(f"contexts: expected column(s) {', '.join(missing)}")
        columns = {}
        for j, name in enumerate(self.context_columns_):
            values = contexts[name]
            columns[f"context_{j}"] = (
                pd.Categorical(values, categories=self.categories_[name])
                if name in self.categories_
                else values.to_numpy(dtype=np.float32, na_value=np.nan)
            )
        return pd.DataFrame(columns)

    def _design(self, frame: pd.DataFrame, action: np.ndarray) -> pd.DataFrame:
        """Context columns plus the action's features (or its id as a categorical)."""
        if self.action_features_ is None:
            ids = pd.Categorical.from_codes(action, categories=np.arange(self.n_actions_))
            return frame.assign(**{ACTION_ID: ids})
        features = self.action_features_[action]
        extra = {f"action_feature_{k}": features[:, k] for k in range(features.shape[1])}
        return frame.assign(**extra)

    def _boost(self, design: pd.DataFrame, reward: np.ndarray, weight: np.ndarray) -> lgb.Booster:
        """A booster on the rows; with early stopping, VALID_SHARE of them decide its length."""
        params = self.booster_params(len(design))
        if self.early_stopping_rounds is None:
            data = lgb.Dataset(design, reward, weight=weight)
            return lgb.train(params, data, self.num_boost_round)
        order = np.random.default_rng(self.seed).permutation(len(design))
        n_valid = max(1, int(VALID_SHARE * len(design)))
        valid, train = order[:n_valid], order[n_valid:]
        train_set = lgb.Dataset(design.iloc[train], reward[train], weight=weight[train])
        valid_set = lgb.Dataset(
            design.iloc[valid], reward[valid], weight=weight[valid], reference=train_set
        )
        stop = lgb.early_stopping(self.early_stopping_rounds, verbose=False)
        return lgb.train(
            params, train_set, self.num_boost_round, valid_sets=[valid_set], callbacks=[stop]
        )

    def _predict_all(self, booster: lgb.Booster, frame: pd.DataFrame) -> np.ndarray:
        """q_hat of every action for the rows of ``frame``: one vectorised call per action."""
        columns = [
            booster.predict(self._design(frame, np.full(len(frame), a)))
            for a in range(self.n_actions_)
        ]
        return np.column_stack(columns)
