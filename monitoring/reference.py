"""The reference of a drift report: the training data of the model version being monitored.

The training rows are the out-of-time split's training months of the dataset the version was
trained on, found by the dataset's hash in the run's ``dataset_manifest.json``. Once read they
are scored by the version, sampled (``monitoring.max_rows``) and logged with its run as
``monitoring/reference.parquet``, so later reports need neither the dataset nor a rescoring,
and a rebuilt dataset cannot silently replace the reference.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from paynudge.config import Settings
from paynudge.errors import DataError, PayNudgeError
from training.artifacts import TARGET_COLUMN, file_hash
from training.model import CalibratedLightGBM
from training.registry import CHAMPION, version_by_alias
from training.specs import ModelSpec, binary_target, spec_for
from training.splits import out_of_time_split
from training.tracking import connect

REFERENCE_ARTIFACT = "monitoring/reference.parquet"
PROBABILITY_COLUMN = "__probability__"
MANIFEST_ARTIFACT = "dataset_manifest.json"


@dataclass(frozen=True)
class MonitoredModel:
    """One registered version of a PayNudge model, with its estimator and test metrics."""

    spec: ModelSpec
    name: str
    version: str
    run_id: str
    estimator: CalibratedLightGBM
    metrics: dict[str, float]

    @property
    def label(self) -> str:
        """``name/version``, as decisions log it."""
        return f"{self.name}/{self.version}"


@dataclass(frozen=True)
class Reference:
    """Training rows of a model version: features, 0/1 labels and the version's scores."""

    features: pd.DataFrame
    label: np.ndarray
    probability: np.ndarray
    source: str


def load_monitored(
    model: str, settings: Settings, alias: str = CHAMPION, version: str | None = None
) -> MonitoredModel:
    """The version of ``model`` holding ``alias`` (or the given ``version``) in our registry."""
    spec = spec_for(model)
    client = connect(settings)
    name = settings.registered_model_name(model)
    if version is None:
        found = version_by_alias(client, name, alias)
        if found is None:
            raise PayNudgeError(
                f"no {alias} version of model {name!r} in {settings.mlflow_tracking_uri}; "
                f"train one with `paynudge train {model}`"
            )
    else:
        try:
            found = client.get_model_version(name, version)
        except MlflowException:
            raise PayNudgeError(f"model {name!r} has no version {version}") from None
    uri = f"models:/{name}/{found.version}"
    estimator = mlflow.pyfunc.load_model(uri).unwrap_python_model().estimator_
    if not isinstance(estimator, CalibratedLightGBM):
        raise PayNudgeError(f"{uri} is not a PayNudge LightGBM model")
    run_id = found.run_id or ""
    metrics = client.get_run(run_id).data.metrics if run_id else {}
    return MonitoredModel(spec, name, str(found.version), run_id, estimator, dict(metrics))


def _download(client: MlflowClient, run_id: str, artifact: str, folder: str) -> Path | None:
    try:
        return Path(client.download_artifacts(run_id, artifact, folder))
    except (MlflowException, OSError):
        return None


def training_rows(model: MonitoredModel, settings: Settings, client: MlflowClient) -> pd.DataFrame:
    """The training months of the dataset ``model`` was trained on (checked by its hash)."""
    spec = model.spec
    assert spec.dataset is not None and spec.time_column is not None  # PayNudge specs
    path = settings.features_directory / f"{spec.dataset}.parquet"
    with tempfile.TemporaryDirectory() as folder:
        manifest_path = _download(client, model.run_id, MANIFEST_ARTIFACT, folder)
        manifest = json.loads(manifest_path.read_text()) if manifest_path else {}
    expected = manifest.get("data_hash")
    if not path.exists() or (expected is not None and file_hash(path) != expected):
        raise DataError(
            f"{path}: not the dataset {model.label} was trained on (hash {expected}) and no "
            f"reference was stored with its run; monitor right after training, or retrain"
        )
    frame = pd.read_parquet(path)
    return out_of_time_split(frame, spec.time_column).train


def build_reference(model: MonitoredModel, settings: Settings) -> Reference:
    """Score and sample the training rows of ``model``; store them with its run."""
    client = connect(settings)
    rows = training_rows(model, settings, client)
    limit = settings.monitoring.max_rows
    if len(rows) > limit:
        rows = rows.sample(n=limit, random_state=settings.monitoring.seed)
    features = rows[list(model.spec.features)].reset_index(drop=True)
    label = binary_target(rows, model.spec)
    probability = model.estimator.predict_proba(features)[:, 1]
    stored = features.assign(**{TARGET_COLUMN: label, PROBABILITY_COLUMN: probability})
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(REFERENCE_ARTIFACT).name
        stored.to_parquet(path, index=False)
        client.log_artifact(model.run_id, str(path), str(Path(REFERENCE_ARTIFACT).parent))
    return Reference(features, label, probability, _source(model, len(rows)))


def _source(model: MonitoredModel, rows: int) -> str:
    return f"training rows of {model.label} (run {model.run_id}), {rows:,} rows"


def load_reference(model: MonitoredModel, settings: Settings) -> Reference:
    """The stored reference of ``model``, built (and stored) on first use."""
    client = connect(settings)
    with tempfile.TemporaryDirectory() as folder:
        path = _download(client, model.run_id, REFERENCE_ARTIFACT, folder)
        if path is None:
            return build_reference(model, settings)
        stored = pd.read_parquet(path)
    label = stored.pop(TARGET_COLUMN).to_numpy(dtype=np.int64)
    probability = stored.pop(PROBABILITY_COLUMN).to_numpy(dtype=float)
    return Reference(stored, label, probability, _source(model, len(stored)))
