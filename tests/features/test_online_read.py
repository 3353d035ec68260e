"""The online read equals Feast's public ``get_online_features(...).to_dict()`` on the same store.

``features.online.online_features`` reads with the online store's ``online_read`` and decodes the
protobufs itself; ``benchmarks/feast_reference.py`` keeps the public path it replaced. Both read
the same SQLite or Redis store here: known and unknown ids, repeats, order, nulls of every kind.
"""

from __future__ import annotations

import dataclasses
import gc
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from feast.protos.feast.types.Value_pb2 import Value

import features.online as online_module
from benchmarks.feast_reference import public_online_features
from features.catalog import ALL_FEATURES, Feature
from features.online import online_features
from features.store import materialize, open_store
from paynudge.config import Settings
from tests.features.test_store import (
    LATEST,
    REDIS_URL,
    _redis_reachable,
    profiles_as_of,
    write_profiles,
)

CUSTOMERS = tuple(f"c-{number:03d}" for number in range(40))
NULL_ROW = "c-000"
"""The customer whose profile is null in every feature that may be null."""


@pytest.fixture(params=["sqlite", "redis"])
def loaded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """A store (SQLite, or Redis db 15 flushed) holding the profiles of :data:`CUSTOMERS`."""
    url = None if request.param == "sqlite" else REDIS_URL
    if url is not None and not _redis_reachable(url):
        pytest.skip(f"Redis not reachable at {url}: start redis-server to run this test")
    client = None
    if url is not None:
        import redis

        client = redis.Redis.from_url(url)
        client.flushdb()
    settings = Settings(home=tmp_path, online_store_url=url)
    write_profiles(settings, with_nulls(profiles_as_of(LATEST, seed=5, customers=CUSTOMERS)))
    materialize(settings)
    try:
        yield settings
    finally:
        if client is not None:
            client.flushdb()
            client.close()


def with_nulls(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with :data:`NULL_ROW` null in every feature (floats also null elsewhere)."""
    table = table.copy()
    null = table["customer_id"] == NULL_ROW
    for feature in ALL_FEATURES:
        if feature.kind == "int":
            table[feature.name] = table[feature.name].astype("Int64")
        elif feature.kind == "bool":
            table[feature.name] = table[feature.name].astype("boolean")
        table.loc[null, feature.name] = None
    return table


def assert_same_as_public(settings: Settings, ids: list[str], **options: object) -> pd.DataFrame:
    online = online_features(ids, settings, **options)  # type: ignore[arg-type]
    public = public_online_features(open_store(settings), ids, **options)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(online, public)
    return online


def test_known_unknown_repeated_ids_in_request_order(loaded: Settings) -> None:
    ids = ["c-003", "ghost", "c-001", "c-003", NULL_ROW, "nobody", "c-039", "ghost"]

    online = assert_same_as_public(loaded, ids)

    assert list(online["customer_id"]) == ids
    assert list(online["known"]) == [True, False, True, True, True, False, True, False]


def test_nulls_of_every_kind_read_as_nulls(loaded: Settings) -> None:
    online = assert_same_as_public(loaded, [NULL_ROW, "c-001"])

    kinds = {feature.kind for feature in ALL_FEATURES}
    assert kinds == {"int", "float", "bool", "category"}
    assert online.loc[0, [feature.name for feature in ALL_FEATURES]].isna().all()
    assert bool(online.loc[0, "known"])


def test_every_customer_in_a_shuffled_request_with_repeats(loaded: Settings) -> None:
    rng = np.random.default_rng(11)
    pool = np.array([*CUSTOMERS, "ghost-1", "ghost-2"], dtype=object)
    ids = [str(customer_id) for customer_id in rng.choice(pool, 120)] + list(CUSTOMERS)

    assert_same_as_public(loaded, ids)


def test_a_single_customer_and_a_feature_subset(loaded: Settings) -> None:
    assert_same_as_public(loaded, ["c-007"])
    subset = assert_same_as_public(
        loaded, ["c-007", "ghost"], features=["plan", "on_time_rate", "plan", "autopay"]
    )

    assert list(subset.columns) == ["customer_id", "plan", "on_time_rate", "autopay", "known"]
    assert_same_as_public(loaded, ["ghost", "c-007", "c-007"], features=["late_streak"])


def test_without_an_online_store_the_public_path_gives_the_same_frame(
    loaded: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = ["c-002", "ghost", "c-002", NULL_ROW]
    fast = online_features(ids, loaded)
    serving = online_module._serving_store
    monkeypatch.setattr(
        online_module,
        "_serving_store",
        lambda key: dataclasses.replace(serving(key), online=None),
    )

    pd.testing.assert_frame_equal(online_features(ids, loaded), fast)


@pytest.mark.parametrize(
    ("feature", "protos", "expected"),
    [
        (Feature("n", "int", "t", ""), [Value(int32_val=3), Value()], [3, None]),
        (Feature("x", "float", "t", ""), [Value(float_val=0.5), Value()], [0.5, None]),
        (Feature("b", "bool", "t", ""), [Value(), Value(int64_val=1)], [None, True]),
        (Feature("c", "category", "t", ""), [Value(), Value(int64_val=4)], [None, 4]),
    ],
)
def test_other_value_encodings_go_through_feasts_converter(
    feature: Feature, protos: list[Value], expected: list
) -> None:
    decoded = pd.Series(online_module._decoded(protos, feature))

    dtype = online_module.ONLINE_DTYPES[feature.kind]
    pd.testing.assert_series_equal(decoded, pd.Series(pd.array(expected, dtype=dtype)))


def test_a_read_leaves_the_collector_and_sqlite_converter_as_they_were(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, online_store_url=None)
    write_profiles(settings, profiles_as_of(LATEST, seed=2, customers=CUSTOMERS[:4]))
    materialize(settings)
    iso = sqlite3.converters.get("TIMESTAMP")
    sqlite3.register_converter("timestamp", lambda value: datetime.fromisoformat(value.decode()))
    converter = sqlite3.converters["TIMESTAMP"]
    try:
        gc.disable()
        assert online_features(list(CUSTOMERS[:4]), settings)["known"].all()
        assert not gc.isenabled()
        gc.enable()
        assert online_features(list(CUSTOMERS[:4]), settings)["known"].all()
        assert gc.isenabled()
        assert sqlite3.converters["TIMESTAMP"] is converter
    finally:
        gc.enable()
        if iso is None:
            sqlite3.converters.pop("TIMESTAMP", None)
        else:
            sqlite3.converters["TIMESTAMP"] = iso


def test_concurrent_reads_take_turns_and_restore_the_collector_and_converter(
    tmp_path: Path,
) -> None:
    """Threads of the service may read at once: each read's registrations and collector pause
    must not be undone, or left behind, by another's."""
    settings = Settings(home=tmp_path, online_store_url=None)
    write_profiles(settings, profiles_as_of(LATEST, seed=3, customers=CUSTOMERS[:8]))
    materialize(settings)
    converter = sqlite3.converters.get("TIMESTAMP")

    def read(offset: int) -> bool:
        ids = [CUSTOMERS[(offset + k) % 8] for k in range(8)]
        return all(bool(online_features(ids, settings)["known"].all()) for _ in range(5))

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(pool.map(read, range(8)))
    assert gc.isenabled()
    assert sqlite3.converters.get("TIMESTAMP") is converter
