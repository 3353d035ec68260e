"""Two independent implementations agree: the Ibis/DuckDB pipeline and the pandas reference.

The reference (``benchmarks/pandas_reference.py``) was written separately from the catalogue's
definitions; agreement on a simulated world checks both, feature by feature.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.catalog import ALL_FEATURES
from features.datasets import late_payment_features
from paynudge.validation import load_dataset
from simulation.world import make_config, simulate_world, write_world

REFERENCE = Path(__file__).parents[2] / "benchmarks" / "pandas_reference.py"


def load_reference():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("pandas_reference", REFERENCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    world = simulate_world(make_config(n_customers=400, n_months=8, seed=4))
    return load_dataset(write_world(world, tmp_path_factory.mktemp("agree")))


@pytest.mark.parametrize("grace_days", [0.0, 2.5])
def test_pipeline_matches_the_pandas_reference(
    tables: dict[str, pd.DataFrame], grace_days: float
) -> None:
    ours = late_payment_features(tables, grace_days=grace_days)
    theirs = load_reference().late_payment_features(tables, grace_days=grace_days)
    assert list(ours["invoice_id"]) == list(theirs["invoice_id"])
    mismatched = {}
    for feature in ALL_FEATURES:
        a, b = ours[feature.name], theirs[feature.name]
        if feature.kind == "float":
            x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
            if feature.name == "open_hour_mean":  # circular: 23.9999 and 0.0 are the same hour
                x, y = np.cos(x * np.pi / 12), np.cos(y * np.pi / 12)
            same = np.isclose(x, y, rtol=1e-6, atol=1e-6) | (np.isnan(x) & np.isnan(y))
        else:
            same = (a.astype(str) == b.astype(str)).to_numpy()
        if not same.all():
            mismatched[feature.name] = int((~same).sum())
    assert not mismatched, f"features that disagree (rows): {mismatched}"
