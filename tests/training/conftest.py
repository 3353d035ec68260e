"""Fixtures shared by the training tests: a tiny simulated world and its three datasets.

1,000 customers over 6 months: enough months for an out-of-time split (train, validation and
test month) and a few thousand rows per dataset, so a model trains in seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from features.datasets import build_datasets
from paynudge.validation import load_dataset
from simulation.world import make_config, simulate_world, write_world


@pytest.fixture(scope="session")
def tiny_world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The raw tables of a tiny world, with its ground truth in ``truth/``."""
    world = simulate_world(make_config(n_customers=1000, n_months=6, seed=5))
    return write_world(world, tmp_path_factory.mktemp("tiny_world"))


@pytest.fixture(scope="session")
def tiny_features_dir(tiny_world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The late_payment, churn and send_time datasets (with manifests) of the tiny world."""
    target = tmp_path_factory.mktemp("tiny_features")
    build_datasets(load_dataset(tiny_world_dir), target)
    return target
