"""Tune a model's LightGBM parameters with an Optuna study tracked in MLflow.

``tune`` loads the model's dataset, splits it out of time (train on the earlier months, validate
on the next), and runs an Optuna study: a seeded TPE sampler proposes parameters from
:class:`experiments.search_space.SearchSpace`, each trial trains ``CalibratedLightGBM`` with
early stopping on the validation months, and a median pruner stops trials whose validation log
loss trails the median of earlier trials at the same iteration.

**Objective: validation log loss (minimised)** of the booster's probabilities before
calibration, at its early-stopping iteration: the value early stopping and pruning watch, and a
proper score of probabilities. (Calibrated probabilities are fitted on the same validation months,
so their log loss there would flatter every trial.)

The study lives in ``storage`` (``settings.optuna_storage``: SQLite under HOME by default; a
PostgreSQL URL lets several processes share one study, each running its own ``trials``). Every
trial is a nested MLflow run under one parent run per process, in the model's experiment. The
best parameters are written to ``experiments/configs/<model>.yaml`` for ``paynudge train``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import optuna
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from scipy.special import expit
from sqlalchemy.exc import SQLAlchemyError

from experiments.pruning import PruningCallback
from experiments.search_space import FIXED_PARAMS, SearchSpace, suggest_params
from experiments.trial_runs import masked_storage, parent_run, trial_run
from experiments.tuned_config import TunedConfig, config_path, write_config
from paynudge.config import Settings
from paynudge.errors import ConfigError, PayNudgeError
from training import tracking
from training.evaluation import classification_metrics
from training.model import VALID_NAME, CalibratedLightGBM
from training.pipeline import load_spec_dataset
from training.specs import ModelSpec, binary_target, spec_for
from training.splits import out_of_time_split

OBJECTIVE = "valid_log_loss"
BEST_ITERATION = "best_iteration"  # trial user attribute: rounds the trial's booster kept
STORAGE_ERRORS = (ImportError, ValueError, SQLAlchemyError, optuna.exceptions.StorageInternalError)
FINISHED_STATES = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


@dataclass(frozen=True)
class TuningConfig:
    """How a study searches; the defaults suit datasets from thousands to millions of rows.

    - ``seed``: TPE sampler seed. Workers sharing a study should each get their own, or their
      first random trials repeat one another. (LightGBM keeps the trainer's fixed seed, so
      trials differ only by their parameters.)
    - ``n_startup_trials``: random trials before TPE models the space; also the trials the
      median pruner waits for before it prunes anything.
    - ``n_warmup_steps``: iterations every trial runs before it can be pruned.
    - ``max_boost_round``, ``early_stopping_rounds``: each trial's round cap and patience.
    - ``num_threads``: LightGBM threads per trial, 0 for OpenMP's default (every core). Workers
      sharing one machine should split its cores; small datasets train faster on one thread.
    - ``report_every``: iterations between reports to the pruner. Each report is a write and a
      read of the study storage (~15 ms on SQLite), small next to an iteration on a million rows
      but not on a few thousand.
    """

    seed: int = 0
    n_startup_trials: int = 5
    n_warmup_steps: int = 20
    max_boost_round: int = 2000
    early_stopping_rounds: int = 50
    num_threads: int = 0
    report_every: int = 1
    space: SearchSpace = field(default_factory=SearchSpace)


@dataclass(frozen=True)
class TuningResult:
    """What a tuning process found; counts are over the whole (possibly shared) study."""

    study_name: str
    storage: str  # password masked
    objective: str
    best_value: float
    best_params: dict[str, Any]
    num_boost_round: int
    finished: int
    pruned: int
    parent_run_id: str
    config_path: Path


@dataclass(frozen=True)
class TrialData:
    """Training and validation months of a model's dataset, built once per study."""

    spec: ModelSpec
    X_train: pd.DataFrame
    y_train: np.ndarray
    X_valid: pd.DataFrame
    y_valid: np.ndarray


def tune(
    model_name: str,
    settings: Settings,
    *,
    trials: int,
    timeout: float | None,
    storage: str | None = None,
    study_name: str | None = None,
    output: Path | None = None,
    config: TuningConfig | None = None,
) -> TuningResult:
    """Run ``trials`` trials (or until ``timeout`` seconds) of the study for ``model_name``.

    ``storage`` overrides ``settings.optuna_storage``; ``study_name`` defaults to
    ``<model>-lightgbm`` and is created or joined; ``output`` is the folder for the YAML
    (default ``experiments/configs/``).
    """
    config = config if config is not None else TuningConfig()
    spec = spec_for(model_name)
    data = trial_data(spec, settings)
    url = prepared_storage(storage if storage is not None else settings.optuna_storage)
    name = study_name if study_name is not None else f"{spec.name}-lightgbm"
    study = open_study(url, name, config)
    client = tracking.connect(settings)
    experiment_id = model_experiment(client, spec, settings)
    requested = {"trials": trials, "timeout": timeout, "seed": config.seed}
    with parent_run(client, experiment_id, name, url, requested) as run:
        objective = objective_for(data, config, client, run)
        study.optimize(objective, n_trials=trials, timeout=timeout)
        tuned = best_config(study)
        path = write_config(tuned, config_path(spec.name, output))
        mlflow.log_metrics({f"best_{OBJECTIVE}": tuned.best_value})
        mlflow.log_dict(tuned.model_dump(), "tuned_config.yaml")
    return tuning_result(study, tuned, url, run.info.run_id, path)


def trial_data(spec: ModelSpec, settings: Settings) -> TrialData:
    """The out-of-time training and validation matrices of ``spec``'s dataset."""
    if spec.dataset is None or spec.time_column is None:
        raise PayNudgeError(f"tuning needs a model with a dated dataset; {spec.name!r} has none")
    frame, _ = load_spec_dataset(spec, settings.features_directory / f"{spec.dataset}.parquet")
    split = out_of_time_split(frame, spec.time_column)
    columns = list(spec.features)
    return TrialData(
        spec=spec,
        X_train=split.train[columns],
        y_train=binary_target(split.train, spec),
        X_valid=split.valid[columns],
        y_valid=binary_target(split.valid, spec),
    )


def prepared_storage(url: str | None) -> str:
    """The study storage URL, with the folder of a local SQLite file created."""
    if url is None:  # pragma: no cover - the settings validator fills it
        raise ConfigError("optuna_storage is not set")
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return url


def open_study(storage: str, study_name: str, config: TuningConfig) -> optuna.Study:
    """Create the study, or join it when another process already did."""
    try:
        study = optuna.create_study(
            storage=storage,
            study_name=study_name,
            direction="minimize",
            load_if_exists=True,
            sampler=optuna.samplers.TPESampler(
                seed=config.seed, n_startup_trials=config.n_startup_trials
            ),
            pruner=optuna.pruners.MedianPruner(
                n_startup_trials=config.n_startup_trials, n_warmup_steps=config.n_warmup_steps
            ),
        )
    except STORAGE_ERRORS as error:
        raise ConfigError(f"optuna storage {masked_storage(storage)}: {error}") from None
    if study.direction != optuna.study.StudyDirection.MINIMIZE:
        raise ConfigError(f"study {study_name!r} maximises; {OBJECTIVE} must be minimised")
    return study


def model_experiment(client: MlflowClient, spec: ModelSpec, settings: Settings) -> str:
    """The id of the model's MLflow experiment, where ``paynudge train`` logs it too."""
    name = settings.registered_model_name(spec.name)
    try:
        return tracking.experiment_id(client, name, settings)
    except MlflowException:  # another worker created it between the lookup and the creation
        return tracking.experiment_id(client, name, settings)


def objective_for(
    data: TrialData, config: TuningConfig, client: MlflowClient, parent: mlflow.ActiveRun
) -> Callable[[optuna.Trial], float]:
    """The study objective: train one trial's model, log it, return its validation log loss."""

    def objective(trial: optuna.Trial) -> float:
        params = suggest_params(trial, config.space)
        with trial_run(client, parent, trial, params):
            model = CalibratedLightGBM(
                params={**params, "num_threads": config.num_threads},
                num_boost_round=config.max_boost_round,
                early_stopping_rounds=config.early_stopping_rounds,
            )
            model.fit(
                data.X_train,
                data.y_train,
                data.X_valid,
                data.y_valid,
                categorical=data.spec.categorical,
                callbacks=[
                    PruningCallback(trial, valid_name=VALID_NAME, report_every=config.report_every)
                ],
            )
            raw = classification_metrics(data.y_valid, expit(model.predict_raw(data.X_valid)))
            metrics = {f"valid_{key}": value for key, value in raw.items()}
            mlflow.log_metrics({**metrics, BEST_ITERATION: model.best_iteration_})
            trial.set_user_attr(BEST_ITERATION, int(model.best_iteration_))
        return metrics[OBJECTIVE]

    return objective


def best_config(study: optuna.Study) -> TunedConfig:
    """The study's best trial as a tuned config: fixed plus tuned parameters and its rounds."""
    finished = study.get_trials(deepcopy=False, states=FINISHED_STATES)
    if not any(trial.state == optuna.trial.TrialState.COMPLETE for trial in finished):
        raise PayNudgeError(
            f"study {study.study_name!r} has no finished trial yet (all pruned or out of time); "
            "ask for more trials or a longer timeout"
        )
    best = study.best_trial
    assert best.value is not None  # a completed single-objective trial has its value
    return TunedConfig(
        params={**FIXED_PARAMS, **best.params},
        num_boost_round=int(best.user_attrs[BEST_ITERATION]),
        study=study.study_name,
        objective=OBJECTIVE,
        best_value=float(best.value),
        trials=len(finished),
    )


def tuning_result(
    study: optuna.Study, tuned: TunedConfig, storage: str, run_id: str, path: Path
) -> TuningResult:
    """The result of a tuning process, with trial counts over the whole study."""
    states = [trial.state for trial in study.get_trials(deepcopy=False, states=FINISHED_STATES)]
    pruned = states.count(optuna.trial.TrialState.PRUNED)
    return TuningResult(
        study_name=study.study_name,
        storage=masked_storage(storage),
        objective=OBJECTIVE,
        best_value=tuned.best_value,
        best_params=tuned.params,
        num_boost_round=tuned.num_boost_round,
        finished=len(states) - pruned,
        pruned=pruned,
        parent_run_id=run_id,
        config_path=path,
    )
