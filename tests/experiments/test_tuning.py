"""Optuna tuning: best parameters to YAML, trials as nested MLflow runs, pruning, shared studies."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import lightgbm
import mlflow
import numpy as np
import optuna
import pytest
from typer.testing import CliRunner

from experiments.pruning import PruningCallback
from experiments.tuned_config import read_config
from experiments.tuning import OBJECTIVE, TuningConfig, tune
from features.datasets import build_datasets
from paynudge.cli import app
from paynudge.config import Settings, get_settings
from paynudge.errors import PayNudgeError
from paynudge.validation import load_dataset
from simulation.world import make_config, simulate_world, write_world
from training.pipeline import tuned_params
from training.tracking import experiment_id

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
FAST = TuningConfig(n_startup_trials=2, n_warmup_steps=5, max_boost_round=300, num_threads=1)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def features_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small simulated late-payment dataset (1,500 customers x 8 months), built once."""
    world = write_world(
        simulate_world(make_config(n_customers=1500, n_months=8, seed=3)),
        tmp_path_factory.mktemp("world"),
    )
    out = tmp_path_factory.mktemp("features")
    build_datasets(load_dataset(world), out, which=("late_payment",))
    return out


@pytest.fixture
def settings(tmp_path: Path, features_dir: Path) -> Settings:
    return Settings(home=tmp_path / "home", features_dir=features_dir)


def test_study_writes_best_params_and_logs_trials_as_nested_runs(
    settings: Settings, tmp_path: Path
) -> None:
    result = tune(
        "late_payment", settings, trials=4, timeout=None, output=tmp_path / "configs", config=FAST
    )
    tuned = read_config(tmp_path / "configs" / "late_payment.yaml")
    assert tuned.params == result.best_params and tuned.best_value == result.best_value
    assert {"learning_rate", "num_leaves", "min_child_samples"} <= tuned.params.keys()
    assert tuned.params["metric"] == "binary_logloss" and 0 < tuned.num_boost_round <= 300
    assert result.finished + result.pruned == tuned.trials == 4
    assert (settings.home / "optuna.db").exists()  # the default SQLite storage
    read_by_training = tuned_params("late_payment", tmp_path / "configs")
    assert read_by_training == {**tuned.params, "num_boost_round": tuned.num_boost_round}

    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    parent = client.get_run(result.parent_run_id)
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{result.parent_run_id}'"
    )
    assert len(children) == 4
    finished = [run for run in children if run.info.status == "FINISHED"]
    assert len(finished) == result.finished
    assert min(run.data.metrics[OBJECTIVE] for run in finished) == pytest.approx(result.best_value)
    assert all("valid_roc_auc" in run.data.metrics for run in finished)
    assert all("learning_rate" in run.data.params for run in children)
    assert parent.data.metrics[f"best_{OBJECTIVE}"] == pytest.approx(result.best_value)


def binary_problem(seed: int = 0) -> tuple[lightgbm.Dataset, lightgbm.Dataset]:
    """A learnable two-feature problem, split into training and validation sets."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(2000, 2))
    labels = (features[:, 0] + 0.5 * rng.normal(size=2000) > 0).astype(int)
    train = lightgbm.Dataset(features[:1500], labels[:1500])
    return train, lightgbm.Dataset(features[1500:], labels[1500:], reference=train)


def train_trial(trial: optuna.Trial) -> float:
    """Train with the trial's learning rate, pruning through the callback."""
    train, valid = binary_problem()
    params = {"objective": "binary", "metric": "binary_logloss", "verbosity": -1, "num_threads": 1}
    booster = lightgbm.train(
        {**params, "learning_rate": trial.suggest_float("learning_rate", 1e-5, 1.0, log=True)},
        train,
        num_boost_round=30,
        valid_sets=[train, valid],
        callbacks=[PruningCallback(trial)],
    )
    return float(booster.best_score["valid_1"]["binary_logloss"])


def test_a_clearly_bad_trial_is_pruned_by_the_lightgbm_callback() -> None:
    study = optuna.create_study(
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=5)
    )
    for rate in (0.3, 0.2, 1e-5):  # two good trials, then one that barely learns
        study.enqueue_trial({"learning_rate": rate})
    study.optimize(train_trial, n_trials=3)
    states = [trial.state for trial in study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE] * 2 + [optuna.trial.TrialState.PRUNED]
    bad = study.trials[2]
    assert max(bad.intermediate_values) < 29  # stopped early, validation-set values reported
    assert bad.intermediate_values[0] > study.trials[0].intermediate_values[0] - 1e-3


def test_the_callback_needs_the_validation_metric() -> None:
    train, valid = binary_problem()
    study = optuna.create_study()
    trial = study.ask()
    with pytest.raises(PayNudgeError, match="validation 'binary_logloss'"):
        lightgbm.train(
            {"objective": "binary", "metric": "auc", "verbosity": -1, "num_threads": 1},
            train,
            num_boost_round=3,
            valid_sets=[valid],
            callbacks=[PruningCallback(trial)],
        )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["fraud"], "fraud"),
        (["late_payment", "--storage", "nosuchdb://x"], "optuna storage"),
        (["late_payment", "--timeout", "0"], "no finished trial"),
    ],
)
def test_cli_errors_are_one_clear_line(
    arguments: list[str], message: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYNUDGE_HOME", str(settings.home))
    monkeypatch.setenv("PAYNUDGE_FEATURES_DIR", str(settings.features_directory))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["tune", *arguments, "--trials", "1"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1, result.output
    assert message in result.output


def test_cli_says_to_build_features_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYNUDGE_HOME", str(tmp_path / "empty"))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["tune", "late_payment", "--trials", "1"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "paynudge features build" in result.output


def postgres_reachable() -> bool:
    try:
        import psycopg

        psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", connect_timeout=2).close()
    except Exception:
        return False
    return True


@pytest.mark.skipif(
    not postgres_reachable(), reason="PostgreSQL at 127.0.0.1:5432 (database test) is unreachable"
)
def test_two_processes_share_one_postgres_study(
    settings: Settings, tmp_path: Path, features_dir: Path
) -> None:
    name, per_worker = f"test-shared-{uuid.uuid4().hex[:12]}", 3
    # Create the study, the MLflow store and the experiment once, as one sets up a shared study;
    # the workers then join them (two processes creating one SQLite MLflow schema would race).
    optuna.create_study(storage=POSTGRES_URL, study_name=name, direction="minimize")
    experiment_id(mlflow.MlflowClient(settings.mlflow_tracking_uri), "late_payment", settings)
    env = {
        **os.environ,
        "PAYNUDGE_HOME": str(settings.home),
        "PAYNUDGE_FEATURES_DIR": str(features_dir),
    }
    command = [sys.executable, "-m", "paynudge.cli", "tune", "late_payment", "--threads", "1"]
    options = ["--trials", str(per_worker), "--storage", POSTGRES_URL, "--study", name]
    try:
        workers = [
            subprocess.Popen(
                [*command, *options, "--seed", str(seed), "--output", str(tmp_path / "out")],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for seed in (1, 2)
        ]
        outputs = [worker.communicate(timeout=300)[0] for worker in workers]
        assert [worker.returncode for worker in workers] == [0, 0], outputs
        trials = optuna.load_study(study_name=name, storage=POSTGRES_URL).trials
        done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        assert len(trials) == 2 * per_worker
        assert all(trial.state in done for trial in trials)
        assert sorted(trial.number for trial in trials) == list(range(2 * per_worker))
        assert read_config(tmp_path / "out" / "late_payment.yaml").study == name
    finally:
        optuna.delete_study(study_name=name, storage=POSTGRES_URL)
