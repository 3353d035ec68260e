"""The LightGBM hyper-parameters a study searches, with their ranges and why.

Ranges are data (a frozen dataclass with documented defaults), not code: a study reads one
:class:`SearchSpace` and asks the trial for each parameter with :func:`suggest_params`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any

import optuna


@dataclass(frozen=True)
class FloatRange:
    """A float parameter searched in ``[low, high]``, on a log scale when ``log``."""

    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class IntRange:
    """An integer parameter searched in ``[low, high]``, on a log scale when ``log``."""

    low: int
    high: int
    log: bool = False


@dataclass(frozen=True)
class SearchSpace:
    """LightGBM parameters a trial chooses, named as ``training.model.LightGBMDefaults`` names them.

    - ``learning_rate`` 0.01-0.2 (log): below, 2,000 rounds rarely converge; above, the early
      stopping point is noisy.
    - ``num_leaves`` 8-256 (log): tree complexity, the main capacity knob.
    - ``min_child_samples`` 10-500 (log): rows in the smallest leaf; large values regularise on
      ~1M-row datasets, small ones let small datasets fit at all.
    - ``feature_fraction`` 0.5-1.0: column subsampling per tree (decorrelates trees).
    - ``bagging_fraction`` 0.5-1.0: row subsampling, applied every iteration (``bagging_freq``
      is fixed in :data:`FIXED_PARAMS`).
    - ``lambda_l1``, ``lambda_l2`` 1e-8-10 (log): L1/L2 penalties on leaf values; the log scale
      spans "off" to "strong".
    - ``min_gain_to_split`` 0-1: minimum loss reduction to split.
    """

    learning_rate: FloatRange = FloatRange(0.01, 0.2, log=True)
    num_leaves: IntRange = IntRange(8, 256, log=True)
    min_child_samples: IntRange = IntRange(10, 500, log=True)
    feature_fraction: FloatRange = FloatRange(0.5, 1.0)
    bagging_fraction: FloatRange = FloatRange(0.5, 1.0)
    lambda_l1: FloatRange = FloatRange(1e-8, 10.0, log=True)
    lambda_l2: FloatRange = FloatRange(1e-8, 10.0, log=True)
    min_gain_to_split: FloatRange = FloatRange(0.0, 1.0)


# Parameters every trial shares (the trainer fixes the binary objective, seed and verbosity):
# validation log loss is what early stopping and pruning watch, and bagging runs every iteration
# so that ``bagging_fraction`` takes effect.
FIXED_PARAMS: Mapping[str, Any] = MappingProxyType({"metric": "binary_logloss", "bagging_freq": 1})


def suggest_params(trial: optuna.Trial, space: SearchSpace | None = None) -> dict[str, Any]:
    """The parameters of ``trial``: one suggestion per field of ``space`` plus the fixed ones."""
    space = space if space is not None else SearchSpace()
    params: dict[str, Any] = dict(FIXED_PARAMS)
    for spec in fields(space):
        bounds = getattr(space, spec.name)
        if isinstance(bounds, IntRange):
            params[spec.name] = trial.suggest_int(
                spec.name, bounds.low, bounds.high, log=bounds.log
            )
        else:
            params[spec.name] = trial.suggest_float(
                spec.name, bounds.low, bounds.high, log=bounds.log
            )
    return params
