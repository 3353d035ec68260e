"""MLflow tracking: where runs go, and what the model and baseline runs of a training log.

The tracking URI comes from the settings (SQLite under HOME by default, a server URL by
setting). Each model name has one experiment; on a local store its artifacts live under
``settings.mlflow_artifact_root`` (a tracking server keeps its own). A training writes one
LightGBM run (params, test and validation metrics, artifacts, the pyfunc model) and one run per
baseline (``<name>-logistic``, ``<name>-rule``) in the same experiment, tagged with the model run.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from paynudge.config import Settings
from training.artifacts import ArtifactOptions, write_run_artifacts
from training.evaluation import classification_metrics
from training.pyfunc import log_probability_model
from training.specs import binary_target

if TYPE_CHECKING:
    from training.tabular import Evaluation

SERVER_SCHEMES = ("http", "https", "databricks")
PROJECT_RUN_ENV = "MLFLOW_RUN_ID"  # set by `mlflow run` for the command it launches
MODEL_RUN_TAG = "paynudge.model_run_id"
PROJECT_RUN_TAG = "paynudge.project_run_id"
KIND_TAG = "paynudge.kind"


@dataclass(frozen=True)
class RunRecord:
    """A logged model run: its id, experiment and the URI of the model it logged."""

    run_id: str
    experiment_id: str
    model_uri: str
    metrics: dict[str, float]


def connect(settings: Settings) -> MlflowClient:
    """Point MLflow (tracking and registry) at the settings' store; return a client for it."""
    uri = settings.mlflow_tracking_uri
    assert uri is not None  # filled by the settings validator
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(client: MlflowClient, name: str, settings: Settings) -> str:
    """The id of experiment ``name``, created (with a local artifact store if ours) when new."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if urlparse(settings.mlflow_tracking_uri or "").scheme not in SERVER_SCHEMES:
        assert settings.mlflow_artifact_root is not None  # filled by the settings validator
        location = (settings.mlflow_artifact_root / name).absolute().as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except MlflowException:  # created by another process since the lookup
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def run_params(evaluation: Evaluation) -> dict[str, Any]:
    """Hyper-parameters, spec and split sizes of a training, as MLflow params."""
    spec, model, split = evaluation.spec, evaluation.model, evaluation.split
    booster, rounds = model.booster_params()  # the defaults merged with any tuned values
    estimator = {k: v for k, v in model.get_params().items() if k != "params"}
    return {
        **{f"lgbm_{key}": value for key, value in booster.items()},
        **estimator,
        "num_boost_round": rounds,
        "calibration_method": model.calibration_,
        "dataset": spec.dataset or "tabular",
        "label": spec.label,
        "positive": spec.positive,
        "features": len(spec.features),
        "split": split.description,
        "train_rows": len(split.train),
        "valid_rows": len(split.valid),
        "test_rows": len(split.test),
    }


def run_metrics(evaluation: Evaluation) -> dict[str, float]:
    """Test metrics as they are, validation metrics prefixed ``valid_``, and the best iteration."""
    spec, model, valid = evaluation.spec, evaluation.model, evaluation.split.valid
    probability = model.predict_proba(valid[list(spec.features)])[:, 1]
    validation = classification_metrics(binary_target(valid, spec), probability)
    return {
        **evaluation.metrics,
        **{f"valid_{key}": value for key, value in validation.items()},
        "best_iteration": float(model.best_iteration_),
    }


def project_run_id() -> str | None:
    """The run `mlflow run` created for this process, if it launched us.

    Read it before starting any run: MLflow clears the variable when a run ends.
    """
    return os.environ.get(PROJECT_RUN_ENV) or None


def start_run(client: MlflowClient, experiment: str, name: str, tags: dict[str, str]) -> Any:
    """Start run ``name`` in ``experiment`` (never resuming the run `mlflow run` set up)."""
    run = client.create_run(experiment, run_name=name, tags=tags)
    return mlflow.start_run(run_id=run.info.run_id, nested=mlflow.active_run() is not None)


def log_model_run(
    evaluation: Evaluation,
    experiment: str,
    manifest: dict[str, Any],
    extra_metrics: dict[str, float],
    client: MlflowClient,
    tags: dict[str, str],
    options: ArtifactOptions | None = None,
) -> RunRecord:
    """Log the LightGBM run: params, metrics, artifacts and the pyfunc model."""
    options = options or ArtifactOptions()
    spec = evaluation.spec
    metrics = {**run_metrics(evaluation), **extra_metrics}
    with start_run(client, experiment, spec.name, {**tags, KIND_TAG: "lightgbm"}) as run:
        mlflow.log_params(run_params(evaluation))
        mlflow.log_metrics(metrics)
        with tempfile.TemporaryDirectory() as folder:
            write_run_artifacts(evaluation, manifest, Path(folder), options)
            mlflow.log_artifacts(folder)
        example = evaluation.split.test[list(spec.features)].head(options.input_example_rows)
        info = log_probability_model(evaluation.model, example)
    return RunRecord(run.info.run_id, experiment, info.model_uri, metrics)


def log_baseline_runs(
    evaluation: Evaluation,
    experiment: str,
    model_run_id: str,
    client: MlflowClient,
    tags: dict[str, str],
) -> dict[str, str]:
    """One run per baseline (``<name>-logistic``, ``<name>-rule``) with its test metrics."""
    run_ids = {}
    for baseline, metrics in evaluation.baselines.items():
        run_tags = {**tags, KIND_TAG: f"baseline-{baseline}", MODEL_RUN_TAG: model_run_id}
        name = f"{evaluation.spec.name}-{baseline}"
        with start_run(client, experiment, name, run_tags) as run:
            mlflow.log_params({"baseline": baseline, "test_rows": len(evaluation.split.test)})
            mlflow.log_metrics(metrics)
        run_ids[baseline] = run.info.run_id
    return run_ids


def link_project_run(
    client: MlflowClient, project_run: str | None, record: RunRecord, registered_uri: str
) -> None:
    """Tag the run `mlflow run` created (when it is in our store) with the model it produced."""
    if project_run is None:
        return
    try:
        client.set_tag(project_run, MODEL_RUN_TAG, record.run_id)
        client.set_tag(project_run, "paynudge.model_uri", registered_uri)
    except MlflowException:
        pass  # the project run lives in another tracking store: nothing to link
