"""MLflow tracking: what a training run logs, and the model the registry serves back."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from paynudge.config import Settings
from paynudge.errors import ConfigError
from training import tracking
from training.artifacts import TARGET_COLUMN, TEST_SET
from training.pipeline import (
    TrainResult,
    load_spec_dataset,
    send_time_metrics,
    track,
    train_model,
    tuned_params,
)
from training.send_time_value import local_send_times
from training.specs import spec_for
from training.splits import out_of_time_split
from training.tabular import Evaluation, fit_and_evaluate

METRICS = ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_top_decile")
PLOTS = ("roc_curve", "pr_curve", "calibration", "shap_beeswarm", "shap_importance")


@pytest.fixture(scope="module")
def settings(tiny_world_dir: Path, tiny_features_dir: Path, tmp_path_factory) -> Settings:
    home = tmp_path_factory.mktemp("home")
    return Settings(home=home, features_dir=tiny_features_dir, data_dir=tiny_world_dir)


@pytest.fixture(scope="module")
def evaluation(settings: Settings) -> Evaluation:
    spec = spec_for("late_payment")
    frame, _ = load_spec_dataset(spec, settings.features_directory / "late_payment.parquet")
    return fit_and_evaluate(spec, out_of_time_split(frame, "cutoff"))


@pytest.fixture(scope="module")
def tracked(evaluation: Evaluation, settings: Settings) -> TrainResult:
    manifest = json.loads((settings.features_directory / "late_payment.manifest.json").read_text())
    return track(evaluation, manifest, {}, settings)


def test_model_run_logs_params_metrics_and_artifacts(
    tracked: TrainResult, settings: Settings
) -> None:
    client = tracking.connect(settings)
    run = client.get_run(tracked.run_id)
    for metric in METRICS:
        assert run.data.metrics[metric] == pytest.approx(tracked.metrics[metric])
        assert f"valid_{metric}" in run.data.metrics
    assert run.data.metrics["best_iteration"] >= 1
    assert run.data.params["calibration_method"] in ("isotonic", "sigmoid")
    assert run.data.params["dataset"] == "late_payment"
    assert {"lgbm_learning_rate", "num_boost_round", "split"} <= set(run.data.params)
    folder = Path(mlflow.artifacts.download_artifacts(run_id=tracked.run_id))
    for plot in PLOTS:
        assert (folder / "plots" / f"{plot}.png").stat().st_size > 1000
    manifest = json.loads((folder / "dataset_manifest.json").read_text())
    source = settings.features_directory / "late_payment.manifest.json"
    assert manifest == json.loads(source.read_text())
    features = json.loads((folder / "features.json").read_text())
    assert features["features"] == list(spec_for("late_payment").features)
    test = pd.read_parquet(folder / TEST_SET)
    assert set(test[TARGET_COLUMN].unique()) <= {0, 1}


def test_artifacts_live_under_home(tracked: TrainResult, settings: Settings) -> None:
    run = tracking.connect(settings).get_run(tracked.run_id)
    assert run.info.artifact_uri.startswith((settings.home / "mlartifacts").absolute().as_uri())


def test_baselines_are_runs_in_the_same_experiment(
    tracked: TrainResult, settings: Settings
) -> None:
    client = tracking.connect(settings)
    experiment = client.get_experiment_by_name("late_payment")
    runs = client.search_runs([experiment.experiment_id])
    names = {run.info.run_name: run for run in runs}
    assert {"late_payment", "late_payment-logistic", "late_payment-rule"} <= set(names)
    logistic = names["late_payment-logistic"]
    assert logistic.data.metrics["roc_auc"] == pytest.approx(
        tracked.baselines["logistic"]["roc_auc"]
    )
    assert logistic.data.tags[tracking.MODEL_RUN_TAG] == tracked.run_id


def test_champion_through_pyfunc_gives_the_calibrated_probabilities(
    tracked: TrainResult, evaluation: Evaluation, settings: Settings
) -> None:
    assert tracked.promoted and tracked.model_uri == "models:/late_payment/1"
    tracking.connect(settings)
    model = mlflow.pyfunc.load_model("models:/late_payment@champion")
    test = evaluation.split.test
    probability = np.asarray(model.predict(test[list(evaluation.spec.features)]))
    assert probability.shape == (len(test),)
    assert ((probability >= 0) & (probability <= 1)).all()
    expected = evaluation.model.predict_proba(test)[:, 1]
    np.testing.assert_allclose(probability, expected, rtol=1e-12)


def test_signature_rejects_rows_without_a_feature(
    tracked: TrainResult, evaluation: Evaluation, settings: Settings
) -> None:
    tracking.connect(settings)
    model = mlflow.pyfunc.load_model("models:/late_payment@champion")
    assert model.metadata.get_input_schema().input_names() == list(evaluation.spec.features)
    rows = evaluation.split.test[list(evaluation.spec.features)].head(3)
    with pytest.raises(MlflowException, match="last_days_late"):
        model.predict(rows.drop(columns="last_days_late"))


def test_send_time_logs_the_true_open_rate_of_recommended_hours(settings: Settings) -> None:
    result = train_model("send_time", settings, params={"learning_rate": 0.1})
    rates = {key: value for key, value in result.metrics.items() if key.startswith("true_open")}
    assert set(rates) == {
        "true_open_rate_model_hour",
        "true_open_rate_global_best_hour",
        "true_open_rate_rule_hour",
        "true_open_rate_logged_hour",
    }
    assert all(0 < value < 1 for value in rates.values())
    assert settings.send_hours[0] <= result.metrics["global_best_hour"] <= settings.send_hours[1]


def test_without_ground_truth_send_time_skips_the_open_rates(
    evaluation: Evaluation, settings: Settings, tmp_path: Path
) -> None:
    send_time = SimpleNamespace(spec=spec_for("send_time"))
    assert send_time_metrics(send_time, tmp_path, settings) == {}  # no truth/ folder there
    assert send_time_metrics(evaluation, None, settings) == {}  # not the send-time model


def test_an_unregistered_run_keeps_its_logged_model_uri(
    evaluation: Evaluation, settings: Settings
) -> None:
    result = track(evaluation, {}, {}, settings, register=False)
    assert result.version is None and result.decision is None
    assert result.model_uri.startswith("models:/m-")
    assert len(mlflow.pyfunc.load_model(result.model_uri).predict(evaluation.split.test)) > 0


@pytest.mark.parametrize(
    ("zone", "sent", "hour", "expected"),
    [
        ("Europe/Amsterdam", "2024-03-31T05:00:00Z", 9, "2024-03-31T07:30:00Z"),  # DST day
        ("Europe/Amsterdam", "2024-01-10T23:30:00Z", 8, "2024-01-11T07:30:00Z"),  # local day
        ("America/New_York", "2024-07-01T03:00:00Z", 20, "2024-07-01T00:30:00Z"),
    ],
)
def test_local_send_times_keep_the_local_day(
    zone: str, sent: str, hour: int, expected: str
) -> None:
    times = local_send_times(pd.Series(pd.to_datetime([sent], utc=True)), pd.Series([zone]), hour)
    assert times.iloc[0] == pd.Timestamp(expected)


def test_tuned_params_are_read_and_checked(tmp_path: Path) -> None:
    assert tuned_params("late_payment", tmp_path) is None
    (tmp_path / "late_payment.yaml").write_text(
        "params: {learning_rate: 0.05, num_leaves: 31}\nnum_boost_round: 123\nstudy: s\n"
    )
    assert tuned_params("late_payment", tmp_path) == {
        "learning_rate": 0.05,
        "num_leaves": 31,
        "num_boost_round": 123,
    }
    (tmp_path / "churn.yaml").write_text("learning_rate: 0.05\n")
    with pytest.raises(ConfigError, match=r"churn.yaml: expected a tuned config"):
        tuned_params("churn", tmp_path)


class LookupBeforeAnotherProcess:
    """A client whose lookups miss until ``misses`` run out, as when another process creates the
    experiment between our lookup and our create."""

    def __init__(self, client: mlflow.MlflowClient, misses: int) -> None:
        self.client, self.misses = client, misses

    def get_experiment_by_name(self, name: str):
        self.misses -= 1
        return None if self.misses >= 0 else self.client.get_experiment_by_name(name)

    def create_experiment(self, name: str, artifact_location: str | None = None) -> str:
        return self.client.create_experiment(name, artifact_location=artifact_location)


def test_an_experiment_created_meanwhile_by_another_process_is_joined(settings: Settings) -> None:
    client = tracking.connect(settings)
    existing = tracking.experiment_id(client, "created-meanwhile", settings)  # the other process
    racing = LookupBeforeAnotherProcess(client, misses=1)
    assert tracking.experiment_id(racing, "created-meanwhile", settings) == existing
    blind = LookupBeforeAnotherProcess(client, misses=2)  # nothing to join: the error stands
    with pytest.raises(MlflowException, match="already exists"):
        tracking.experiment_id(blind, "created-meanwhile", settings)
