"""Prune hopeless Optuna trials from inside LightGBM training.

Optuna 5 moved its LightGBM integration to the separate ``optuna-integration`` package; this is
the small part of it we need: a LightGBM callback that reports the validation metric to the trial
after every iteration and stops training with :class:`optuna.TrialPruned` when the study's pruner
says the trial is worse than its peers at the same iteration.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm
import optuna

from paynudge.errors import PayNudgeError

TRAIN_SET_NAME = "training"  # LightGBM's name for the training set when it is also evaluated


@dataclass(eq=False)  # LightGBM keeps callbacks in a set: hash by identity
class PruningCallback:
    """LightGBM callback: report ``metric`` on the validation set each iteration, prune if told.

    ``valid_name`` picks the validation set by name; by default the first evaluated set that is
    not the training set. ``report_every`` reports (and asks the pruner) every that many
    iterations: each report is a round trip to the study's storage. ``order`` runs it after
    LightGBM's own evaluation-based callbacks.
    """

    trial: optuna.trial.BaseTrial
    metric: str = "binary_logloss"
    valid_name: str | None = None
    report_every: int = 1
    order: int = 40
    before_iteration: bool = False

    def __call__(self, env: lightgbm.callback.CallbackEnv) -> None:
        if env.iteration % self.report_every:
            return
        value = self._validation_value(env)
        self.trial.report(value, step=env.iteration)
        if self.trial.should_prune():
            raise optuna.TrialPruned(
                f"pruned at iteration {env.iteration} with validation {self.metric} {value:.5f}"
            )

    def _validation_value(self, env: lightgbm.callback.CallbackEnv) -> float:
        train_name = getattr(env.model, "_train_data_name", TRAIN_SET_NAME)
        for data_name, metric_name, value, *_ in env.evaluation_result_list or []:
            if self.valid_name is None:
                wanted = data_name != train_name
            else:
                wanted = data_name == self.valid_name
            if metric_name == self.metric and wanted:
                return float(value)
        raise PayNudgeError(
            f"pruning needs the validation {self.metric!r} each iteration; LightGBM evaluated "
            f"{[(d, m) for d, m, *_ in env.evaluation_result_list or []]} "
            "(set params['metric'] and pass a validation set)"
        )
