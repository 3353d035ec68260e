"""The customer-profile read as it was through Feast's public API: ``get_online_features`` then
``OnlineResponse.to_dict()``, Feast's own sqlite3 time converter, a frame built from the lists.

:func:`features.online.online_features` must return the same frame; the tests compare the two on
the same store and ``bench_profiles.py`` times both in one run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from features.catalog import ALL_FEATURES
from features.feature_repo.definitions import ENTITY_KEY, VIEW_NAME
from features.online import ONLINE_DTYPES
from features.store import FeatureStore, feast_sqlite_times


def public_online_features(
    store: FeatureStore, customer_ids: Sequence[str], features: Sequence[str] | None = None
) -> pd.DataFrame:
    """Profiles of ``customer_ids`` in ``store`` by ``get_online_features(...).to_dict()``."""
    ids = list(customer_ids)
    kinds = {feature.name: feature.kind for feature in ALL_FEATURES}
    names = list(dict.fromkeys(features)) if features is not None else list(kinds)
    with feast_sqlite_times():
        response = store.get_online_features(
            features=[f"{VIEW_NAME}:{name}" for name in names], entity_rows={ENTITY_KEY: ids}
        )
    values = response.to_dict()
    columns: dict[str, object] = {ENTITY_KEY: pd.array(ids, dtype=object)}
    for name in names:
        columns[name] = pd.array(values[name], dtype=ONLINE_DTYPES[kinds[name]])
    feature_names = list(response.proto.metadata.feature_names.val)
    stamps = response.proto.results[feature_names.index(names[0])].event_timestamps
    columns["known"] = np.array([stamp.seconds != 0 for stamp in stamps], dtype=bool)
    return pd.DataFrame(columns)
