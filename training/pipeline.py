"""Train, track, register and promote: the library functions behind ``paynudge train``.

:func:`train_model` trains one of the three PayNudge models on its dataset (built by
``paynudge features build``) with the tuned parameters of ``experiments/configs/<name>.yaml``
when present; :func:`train_tabular` does the same for any CSV/Parquet table. Both log the
LightGBM run and the baseline runs, register the model as the new ``challenger`` and, unless
asked not to, apply the promotion rule of :mod:`training.registry`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from paynudge.config import Settings
from paynudge.errors import ConfigError, DataError
from simulation.truth import GroundTruth
from simulation.world import TRUTH_FOLDER
from training import registry, tracking
from training.artifacts import table_manifest
from training.registry import PromotionDecision
from training.send_time_value import send_time_value
from training.specs import SPECS, ModelSpec, require_columns, spec_for
from training.splits import holdout_split, out_of_time_split
from training.tabular import Evaluation, fit_and_evaluate, read_table, tabular_spec

MODEL_NAME = re.compile(r"[\w.-]+")
TUNED_CONFIGS = Path(__file__).resolve().parents[1] / "experiments" / "configs"
SEND_TIME = "send_time"


@dataclass(frozen=True)
class TrainResult:
    """What one training produced: the run, the registered version and the promotion."""

    name: str
    run_id: str
    model_uri: str
    version: str | None
    metrics: dict[str, float]
    promoted: bool
    decision: PromotionDecision | None
    baselines: dict[str, dict[str, float]]
    baseline_run_ids: dict[str, str]


def tuned_params(name: str, directory: Path = TUNED_CONFIGS) -> dict[str, Any] | None:
    """LightGBM params (with ``num_boost_round``) from ``<directory>/<name>.yaml``, if present."""
    path = directory / f"{name}.yaml"
    if not path.exists():
        return None
    try:
        config = yaml.safe_load(path.read_text())
        return {**config["params"], "num_boost_round": int(config["num_boost_round"])}
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as error:
        raise ConfigError(
            f"{path}: expected a tuned config with params and num_boost_round ({error})"
        ) from None


def load_spec_dataset(spec: ModelSpec, path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The dataset of ``spec`` at ``path`` and its manifest; clear errors when missing."""
    if not path.exists():
        raise DataError(
            f"{path}: no {spec.name} dataset; build it first with `paynudge features build`"
        )
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: not a readable Parquet dataset ({error})") from None
    require_columns(frame, spec, str(path))
    manifest_path = path.with_name(f"{path.stem}.manifest.json")
    if manifest_path.exists():
        return frame, json.loads(manifest_path.read_text())
    return frame, table_manifest(path, frame, None)


def send_time_metrics(
    evaluation: Evaluation, truth_dir: Path | None, settings: Settings
) -> dict[str, float]:
    """True open rates of the recommended hours, when the simulation's ground truth is there."""
    folder = truth_dir if truth_dir is not None else settings.default_data_dir
    if evaluation.spec.name != SEND_TIME or not (folder / TRUTH_FOLDER).is_dir():
        return {}
    value = send_time_value(
        evaluation.model,
        evaluation.split,
        evaluation.spec.label,
        GroundTruth.load(folder),
        settings.send_hours,
    )
    return {**value.metrics(), "global_best_hour": float(value.global_best_hour)}


def track(
    evaluation: Evaluation,
    manifest: dict[str, Any],
    extra_metrics: dict[str, float],
    settings: Settings,
    *,
    register: bool = True,
    promote: bool = True,
) -> TrainResult:
    """Log the model and baseline runs; register the model as challenger; maybe promote it."""
    client = tracking.connect(settings)
    project_run = tracking.project_run_id()
    tags = {tracking.PROJECT_RUN_TAG: project_run} if project_run else {}
    name = settings.registered_model_name(evaluation.spec.name)
    experiment = tracking.experiment_id(client, name, settings)
    record = tracking.log_model_run(evaluation, experiment, manifest, extra_metrics, client, tags)
    baselines = tracking.log_baseline_runs(evaluation, experiment, record.run_id, client, tags)
    if not register:
        return TrainResult(name, record.run_id, record.model_uri, None, record.metrics, False,
                           None, evaluation.baselines, baselines)  # fmt: skip
    version = str(registry.register(client, name, record.model_uri).version)
    model_uri = f"models:/{name}/{version}"
    tracking.link_project_run(client, project_run, record, model_uri)
    decision = registry.promote(name, settings) if promote else None
    promoted = decision is not None and decision.promoted
    return TrainResult(name, record.run_id, model_uri, version, record.metrics, promoted,
                       decision, evaluation.baselines, baselines)  # fmt: skip


def train_model(
    spec_name_or_spec: str | ModelSpec,
    settings: Settings,
    *,
    data: Path | None = None,
    params: dict[str, Any] | None = None,
    register: bool = True,
    promote: bool = True,
    truth: Path | None = None,
) -> TrainResult:
    """Train, evaluate out of time, log, register and (by the rule) promote one PayNudge model.

    ``data`` is the dataset file (default: ``<features directory>/<dataset>.parquet``);
    ``params`` override the tuned config; ``truth`` is the simulated data set whose ``truth/``
    folder values the send-time model (default: the settings' data folder).
    """
    spec = spec_for(spec_name_or_spec) if isinstance(spec_name_or_spec, str) else spec_name_or_spec
    if spec.dataset is None or spec.time_column is None:
        raise ConfigError(f"model {spec.name!r} has no dataset; use `paynudge train tabular`")
    path = data if data is not None else settings.features_directory / f"{spec.dataset}.parquet"
    frame, manifest = load_spec_dataset(spec, path)
    split = out_of_time_split(frame, spec.time_column)
    evaluation = fit_and_evaluate(
        spec, split, params if params is not None else tuned_params(spec.name)
    )
    extra = send_time_metrics(evaluation, truth, settings)
    return track(evaluation, manifest, extra, settings, register=register, promote=promote)


def tabular_model_name(name: str | None, path: Path) -> str:
    """``name``, or the file name made safe; never the name of a PayNudge model."""
    chosen = name if name is not None else re.sub(r"[^\w.-]+", "_", path.stem)
    if not MODEL_NAME.fullmatch(chosen):
        raise ConfigError(f"--name: expected letters, digits, '_', '.' or '-', found {chosen!r}")
    if chosen in SPECS:
        raise ConfigError(
            f"--name: {chosen!r} is a PayNudge model trained by `paynudge train {chosen}`; "
            "choose another name for a table"
        )
    return chosen


def train_tabular(
    path: Path,
    label: str,
    positive: object | None,
    test_path: Path | None,
    name: str | None,
    settings: Settings,
    *,
    promote: bool = True,
) -> TrainResult:
    """Train, evaluate, log and register a model on any CSV/Parquet table.

    Metrics are on ``test_path`` when given, else on a stratified 25% holdout of ``path``.
    """
    model_name = tabular_model_name(name, path)
    frame = read_table(path)
    test = read_table(test_path) if test_path is not None else None
    spec = tabular_spec(frame, label, positive, model_name)
    if test is not None:
        require_columns(test, spec, str(test_path))
    split = holdout_split(frame, spec.label, test=test)
    evaluation = fit_and_evaluate(spec, split)
    manifest = table_manifest(path, frame, test_path)
    return track(evaluation, manifest, {}, settings, promote=promote)
