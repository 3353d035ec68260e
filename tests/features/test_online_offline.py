"""Online features served by Feast equal the offline features of the same customer and time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.catalog import ALL_FEATURES
from features.online import online_features
from features.profiles import build_profiles, profile_frame
from features.store import materialize
from paynudge.config import Settings
from paynudge.validation import load_dataset
from simulation.world import World


def test_online_features_equal_offline_ones(small_world_dir: Path, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    tables = load_dataset(small_world_dir)
    tables["customers"] = tables["customers"].head(300)  # keep the Feast write quick
    for name in ("invoices", "payments", "messages", "responses", "churn"):
        kept = tables[name]["customer_id"].isin(tables["customers"]["customer_id"])
        tables[name] = tables[name][kept]
    profiles = build_profiles(tables, settings.features_directory)
    materialize(settings)
    offline = profile_frame(tables, profiles.as_of).set_index("customer_id")
    ids = [*offline.index[::7], "NOT-A-CUSTOMER"]
    online = online_features(ids, settings).set_index("customer_id")
    assert not online.loc["NOT-A-CUSTOMER", "known"]
    online = online.drop(index="NOT-A-CUSTOMER")
    assert online["known"].all()
    for feature in ALL_FEATURES:
        left = offline.loc[online.index, feature.name]
        right = online[feature.name]
        if feature.kind == "float":
            assert np.allclose(
                left.to_numpy(float), right.to_numpy(float), equal_nan=True, rtol=1e-12
            ), feature.name
        else:
            assert (left.astype(str).to_numpy() == right.astype(str).to_numpy()).all(), feature.name


def test_profiles_come_from_the_training_definitions(
    small_world: World, small_world_dir: Path
) -> None:
    """A customer's profile equals their late-payment row when cut at the same time."""
    from features.datasets import late_payment_features

    tables = load_dataset(small_world_dir)
    rows = late_payment_features(tables)
    row = rows.iloc[len(rows) // 2]
    profile = profile_frame(tables, pd.Timestamp(row["cutoff"])).set_index("customer_id")
    ours = profile.loc[row["customer_id"]]
    customer_level = [f for f in ALL_FEATURES if f.family != "bill"]
    for feature in customer_level:
        a, b = row[feature.name], ours[feature.name]
        assert (pd.isna(a) and pd.isna(b)) or a == b or np.isclose(a, b), feature.name
