"""A monitored world: a champion trained on one population, and two windows of decisions.

The champion learns from a 1,200-customer, 6-month world. The decision windows come from
another population (its own seed) over the champion's training months: once as the world was
(same distribution), once with a market shift from the first month (an economic shock and a
30% price rise). The shift draws no random numbers, so the two windows differ only by it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from features.datasets import build_datasets
from monitoring.reference import load_monitored
from monitoring.replay import log_shadow_decisions
from paynudge.config import Settings, get_settings
from simulation.parameters import MarketShift, WorldParameters
from simulation.world import World, make_config, simulate_world
from training.pipeline import train_model

CUSTOMERS, MONTHS = 1200, 6
SHIFT = MarketShift(from_month=0, capacity_drop=1.0, price_rise=0.3)
SINCE = pd.Timestamp("2023-12-31", tz="UTC")  # first issue dates, 00:00 local, in UTC
UNTIL = pd.Timestamp("2024-05-01", tz="UTC")  # the champion's training months end here


def world(seed: int, shift: MarketShift = MarketShift()) -> World:
    parameters = WorldParameters(shift=shift)
    return simulate_world(
        make_config(n_customers=CUSTOMERS, n_months=MONTHS, seed=seed, parameters=parameters)
    )


@dataclass(frozen=True)
class Monitored:
    """A home with a late-payment champion, and decision logs of both windows."""

    settings: Settings
    same_log: Path
    shifted_log: Path
    shifted_dataset: Path
    features_dir: Path


def train_champion(root: Path) -> Settings:
    """A home whose late-payment champion learnt from the base world (seed 5)."""
    settings = Settings(home=root / "home", features_dir=root / "features")
    build_datasets(world(5).tables, root / "features", which=["late_payment"])
    train_model("late_payment", settings)
    return settings


def log_window(w: World, settings: Settings, root: Path, name: str) -> tuple[Path, Path]:
    """The world's late-payment rows logged as decisions of the champion; (log, dataset)."""
    folder = root / f"features_{name}"
    build_datasets(w.tables, folder, which=["late_payment"])
    dataset = folder / "late_payment.parquet"
    log = root / f"{name}.db"
    model = load_monitored("late_payment", settings)
    log_shadow_decisions(pd.read_parquet(dataset), w.tables, model, log)
    return log, dataset


def monitored_home(root: Path) -> Monitored:
    settings = train_champion(root)
    same_log, _ = log_window(world(6), settings, root, "same")
    shifted_log, shifted_dataset = log_window(world(6, SHIFT), settings, root, "shifted")
    return Monitored(settings, same_log, shifted_log, shifted_dataset, root / "features")


@pytest.fixture(scope="session")
def monitored_world(tmp_path_factory: pytest.TempPathFactory) -> Monitored:
    """The shared monitored home (built once per session)."""
    return monitored_home(tmp_path_factory.mktemp("monitored"))


@pytest.fixture
def monitored(monitored_world: Monitored, monkeypatch: pytest.MonkeyPatch) -> Iterator[Monitored]:
    """The shared monitored home, with PAYNUDGE_HOME pointing at it for the CLI during one test
    only (a session-wide variable leaked into every later test module)."""
    monkeypatch.setenv("PAYNUDGE_HOME", str(monitored_world.settings.home))
    monkeypatch.setenv("PAYNUDGE_FEATURES_DIR", str(monitored_world.features_dir))
    get_settings.cache_clear()
    yield monitored_world
    get_settings.cache_clear()
