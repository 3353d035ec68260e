"""Shared fixtures: small simulated worlds, built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulation.world import World, make_config, simulate_world, write_world


@pytest.fixture(scope="session")
def small_world() -> World:
    """4,000 customers over 12 months: big enough for marginals, a few seconds to build."""
    return simulate_world(make_config(n_customers=4000, n_months=12, seed=11))


@pytest.fixture(scope="session")
def small_world_dir(small_world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small world written to disk as Parquet (raw tables plus ``truth/``)."""
    return write_world(small_world, tmp_path_factory.mktemp("world"))
