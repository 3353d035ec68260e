"""A served world: a tiny simulated world with profiles in Feast and champions in MLflow.

800 customers over 6 months; the three models are fitted with few boosting rounds and
registered directly (no plots or baselines), and the policy is fitted on the world's logged
decisions with the models' scores in its context: the real components, in seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from features.catalog import PROFILE_FILE
from features.datasets import build_datasets
from features.profiles import build_profiles
from features.store import materialize
from paynudge.config import Settings
from reminder_policy.dataset import decision_set
from reminder_policy.pipeline import fit_policy, policy_spec, split_by_time
from reminder_policy.policy_registry import log_policy_run
from reminder_policy.scores import champion_versions, registry_scorer
from serving.decision import Components
from serving.loading import load_components
from serving.schemas import DecisionRequest
from simulation.world import World, make_config, simulate_world
from training import registry
from training.model import CalibratedLightGBM
from training.pyfunc import log_probability_model
from training.specs import SPECS, binary_target
from training.splits import out_of_time_split
from training.tracking import connect, experiment_id

FAST_PARAMS = {"learning_rate": 0.1, "num_boost_round": 60}
STAGES = ("pre_due", "due", "overdue_3", "overdue_10", "overdue_30")
ZONES = ("Europe/Amsterdam", "America/New_York", "Asia/Tokyo", "UTC")


@dataclass(frozen=True)
class ServedWorld:
    world: World
    settings: Settings
    profiles: pd.DataFrame
    estimators: dict[str, CalibratedLightGBM]


def fit_estimator(features_dir: Path, name: str) -> CalibratedLightGBM:
    spec = SPECS[name]
    split = out_of_time_split(pd.read_parquet(features_dir / f"{name}.parquet"), "cutoff")
    columns = list(spec.features)
    model = CalibratedLightGBM(params=FAST_PARAMS, early_stopping_rounds=20)
    return model.fit(
        split.train[columns],
        binary_target(split.train, spec),
        split.valid[columns],
        binary_target(split.valid, spec),
        categorical=spec.categorical,
    )


def register_champion(
    estimator: CalibratedLightGBM, example: pd.DataFrame, name: str, settings: Settings
) -> str:
    """Log ``estimator`` as a new version of ``name`` and make it the champion."""
    client = connect(settings)
    with mlflow.start_run(experiment_id=experiment_id(client, name, settings)):
        info = log_probability_model(estimator, example)
    version = registry.register(client, name, info.model_uri)
    registry.move_champion(client, version, "test")
    return str(version.version)


def register_policy(world: World, settings: Settings, seed: int = 0) -> str:
    """Fit the policy on the world's logged decisions (scores in context); make it champion."""
    data = decision_set(world.tables, settings.policy, scorer=registry_scorer(settings))
    train, test = split_by_time(data, 0.25)
    bandit = fit_policy(train, settings.policy, seed)
    spec = policy_spec(data, train, settings.policy, champion_versions(settings) or {})
    empty = pd.DataFrame(columns=["policy", "estimator", "value"])
    logged = log_policy_run(bandit, spec, train, test, empty, settings, "test")
    client = connect(settings)
    version = client.get_model_version(settings.policy.registered_name, logged.version)
    registry.move_champion(client, version, "test")
    return logged.version


@pytest.fixture(scope="session")
def served_world(tmp_path_factory: pytest.TempPathFactory) -> ServedWorld:
    world = simulate_world(make_config(n_customers=800, n_months=6, seed=17))
    settings = Settings(home=tmp_path_factory.mktemp("serving_home"))
    features_dir = settings.features_directory
    build_datasets(world.tables, features_dir)
    build_profiles(world.tables, features_dir)
    materialize(settings)
    estimators = {}
    for name in ("late_payment", "churn", "send_time"):
        estimators[name] = fit_estimator(features_dir, name)
        example = pd.read_parquet(features_dir / f"{name}.parquet").head(5)
        register_champion(estimators[name], example[list(SPECS[name].features)], name, settings)
    register_policy(world, settings)
    profiles = pd.read_parquet(features_dir / PROFILE_FILE)
    return ServedWorld(world, settings, profiles, estimators)


@pytest.fixture(scope="session")
def components(served_world: ServedWorld) -> Components:
    return load_components(served_world.settings)


@pytest.fixture(scope="session")
def register_model() -> Callable[..., str]:
    """Registers an estimator as the new champion (see :func:`register_champion`)."""
    return register_champion


@pytest.fixture(scope="session")
def make_requests() -> Callable[..., list[DecisionRequest]]:
    """Builds varied decision requests (see :func:`varied_requests`)."""
    return varied_requests


def varied_requests(
    profiles: pd.DataFrame, n: int, seed: int = 0, unknown: int = 0
) -> list[DecisionRequest]:
    """``n`` varied requests for stored customers (and ``unknown`` customers the store lacks)."""
    rng = np.random.default_rng(seed)
    ids = list(rng.choice(profiles["customer_id"].to_numpy(), n)) + [
        f"new-{i}" for i in range(unknown)
    ]
    total = len(ids)
    base = pd.Timestamp("2025-07-01", tz="UTC")
    now = base + pd.to_timedelta(rng.integers(0, 30 * 24 * 60, total), unit="min")
    issue = (now - pd.to_timedelta(rng.integers(0, 20, total), unit="D")).date
    due_days = rng.integers(7, 21, total)
    return [
        DecisionRequest(
            customer_id=str(ids[i]),
            invoice_id=f"inv-{seed}-{i}",
            amount=float(rng.gamma(2.0, 40.0)),
            issue_date=issue[i],
            due_date=issue[i] + pd.Timedelta(days=int(due_days[i])),
            stage=STAGES[i % len(STAGES)],
            now=now[i].to_pydatetime(),
            timezone=ZONES[i % len(ZONES)],
            attempts=int(rng.integers(0, 3)),
            messages_invoice_7d=int(rng.integers(0, 4)),
            messages_customer_24h=int(rng.random() < 0.1),
            dispute_open=bool(rng.random() < 0.05),
            paid=bool(rng.random() < 0.05),
        )
        for i in range(total)
    ]
