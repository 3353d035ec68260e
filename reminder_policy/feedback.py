"""Logged bandit feedback as the contextual bandit takes it: validated once, at the edge.

Every check names what was expected and the first row (and column) that breaks it, so a bad log
fails with a :class:`~paynudge.errors.DataError` before Vowpal Wabbit sees any of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from paynudge.errors import DataError

Contexts: TypeAlias = ArrayLike | pd.DataFrame
"""Contexts as given: a 2-D array of numbers, or a DataFrame of numeric columns."""


@dataclass(frozen=True)
class LoggedFeedback:
    """A validated batch of logged bandit feedback (obp's names, one row per decision)."""

    contexts: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    pscore: np.ndarray
    mask: np.ndarray


def logged_feedback(
    contexts: Contexts,
    actions: ArrayLike,
    rewards: ArrayLike,
    propensities: ArrayLike,
    mask: ArrayLike | None,
    n_features: int,
    n_actions: int,
) -> LoggedFeedback:
    """Validate a log once, at the edge: shapes, ranges, finiteness, the mask."""
    values = context_array(contexts, n_features)
    n = len(values)
    action = _vector(actions, "actions", n)
    if not np.all(action == np.round(action)):
        raise DataError(
            f"actions: expected integers, found {action[action != np.round(action)][0]}"
        )
    action = action.astype(np.int64)
    _first_bad(
        "actions", (action < 0) | (action >= n_actions), action, f"values in [0, {n_actions})"
    )
    pscore = _vector(propensities, "propensities", n)
    _first_bad("propensities", (pscore <= 0) | (pscore > 1), pscore, "values in (0, 1]")
    allowed = allowed_actions(mask, n, n_actions)
    barred = ~allowed[np.arange(n), action]
    if barred.any():
        row = int(np.flatnonzero(barred)[0])
        raise DataError(f"mask: the logged action {action[row]} is not allowed in row {row}")
    reward = _vector(rewards, "rewards", n)
    return LoggedFeedback(
        contexts=values, action=action, reward=reward, pscore=pscore, mask=allowed
    )


def _first_bad(name: str, bad: np.ndarray, values: np.ndarray, expected: str) -> None:
    """A DataError naming the first row where ``bad`` holds."""
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{name}: expected {expected}, found {values[row]} (row {row})")


def n_context_features(contexts: Contexts) -> int:
    """Number of context columns (checked in full by :func:`context_array`)."""
    shape = np.shape(contexts)
    if len(shape) != 2:
        raise DataError(f"contexts: expected a 2-D array (n, n_features), found shape {shape}")
    return shape[1]


def context_array(contexts: Contexts, n_features: int) -> np.ndarray:
    """Contexts as a finite float array (n, n_features); a DataFrame's columns in order."""
    names = list(contexts.columns) if isinstance(contexts, pd.DataFrame) else None
    try:
        values = np.asarray(contexts, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise DataError(f"contexts: expected numbers only ({error})") from None
    if values.ndim != 2 or values.shape[1] != n_features or len(values) == 0:
        raise DataError(f"contexts: expected shape (n >= 1, {n_features}), found {values.shape}")
    bad = ~np.isfinite(values)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        name = f" ({names[column]!r})" if names else ""
        raise DataError(
            f"contexts: expected finite values, found {values[row, column]} "
            f"at row {row}, column {column}{name}"
        )
    return values


def _vector(values: ArrayLike, name: str, n: int) -> np.ndarray:
    """A finite float vector of length ``n``."""
    try:
        vector = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise DataError(f"{name}: expected numbers only ({error})") from None
    if vector.shape != (n,):
        raise DataError(f"{name}: expected shape ({n},) like contexts, found {vector.shape}")
    _first_bad(name, ~np.isfinite(vector), vector, "finite values")
    return vector


def allowed_actions(mask: ArrayLike | None, n: int, n_actions: int) -> np.ndarray:
    """The allowed actions (n, n_actions) as booleans; at least one per row."""
    if mask is None:
        return np.ones((n, n_actions), dtype=bool)
    values = np.asarray(mask)
    if values.shape != (n, n_actions):
        raise DataError(f"mask: expected shape ({n}, {n_actions}), found {values.shape}")
    if values.dtype != bool:
        raise DataError(f"mask: expected booleans, found dtype {values.dtype}")
    empty = ~values.any(axis=1)
    if empty.any():
        raise DataError(f"mask: row {int(np.flatnonzero(empty)[0])} allows no action")
    return values
