"""The profile cache returns what the store would, in order, and only re-reads stale rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from serving.feature_rows import FeatureRows, rows_of_frame
from serving.profile_cache import MAX_CHUNKS, ProfileCache


class Store:
    """A fake online store: a profile per known id, ``known`` False otherwise; counts reads."""

    def __init__(self) -> None:
        self.version = 0
        self.reads: list[list[str]] = []

    def __call__(self, ids: list[str]) -> pd.DataFrame:
        self.reads.append(list(ids))
        known = np.array([not i.startswith("new") for i in ids])
        value = [
            float(i[1:]) + self.version if k else np.nan for i, k in zip(ids, known, strict=True)
        ]
        return pd.DataFrame(
            {"customer_id": ids, "balance": pd.array(value, dtype="Float64"), "known": known}
        )


def assert_rows_equal(rows: FeatureRows, frame: pd.DataFrame) -> None:
    """The cache's rows hold exactly the store's frame, column by column."""
    expected = rows_of_frame(frame)
    assert list(rows) == list(expected)
    for name, values in expected.items():
        np.testing.assert_array_equal(rows[name], values, err_msg=name)
    assert rows["balance"].dtype == np.float64 and rows["known"].dtype == bool


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store() -> Store:
    return Store()


def test_rows_equal_the_stores_in_request_order_with_repeats(store: Store) -> None:
    cache = ProfileCache(store, ttl_seconds=60, max_customers=100)
    first = cache(["c1", "c2", "new1"])
    ids = ["c3", "c1", "new1", "c3", "c2", "c4"]
    rows = cache(ids)
    assert_rows_equal(rows, Store()(ids))
    assert store.reads == [["c1", "c2", "new1"], ["c3", "c4"]]
    assert list(first["customer_id"]) == ["c1", "c2", "new1"]
    assert (cache.hits, cache.misses) == (4, 5)


def test_stale_rows_are_read_again_and_replace_the_old(store: Store) -> None:
    clock = Clock()
    cache = ProfileCache(store, ttl_seconds=10, max_customers=100, clock=clock)
    cache(["c1", "c2"])
    store.version = 100  # a new materialisation
    clock.now = 5
    assert list(cache(["c1"])["balance"]) == [1.0]  # within the time to live: the cached row
    clock.now = 11
    assert list(cache(["c2", "c1"])["balance"]) == [102.0, 101.0]
    assert store.reads[-1] == ["c2", "c1"]


def test_zero_ttl_reads_every_time(store: Store) -> None:
    cache = ProfileCache(store, ttl_seconds=0, max_customers=100)
    cache(["c1"])
    cache(["c1"])
    assert store.reads == [["c1"], ["c1"]]


def test_limit_evicts_least_recently_read_and_many_chunks_compact(store: Store) -> None:
    clock = Clock()
    cache = ProfileCache(store, ttl_seconds=1_000, max_customers=10, clock=clock)
    for i in range(MAX_CHUNKS + 5):
        clock.now = i
        ids = [f"c{i}", f"c{i + 1000}"]
        assert_rows_equal(cache(ids), Store()(ids))
    assert len(cache._where) <= 10 and len(cache._chunks) <= MAX_CHUNKS
    latest = [f"c{MAX_CHUNKS + 4}", f"c{MAX_CHUNKS + 3}"]
    reads = len(store.reads)
    assert_rows_equal(cache(latest), Store()(latest))
    assert len(store.reads) == reads  # the newest stayed cached
    cache(["c0"])
    assert store.reads[-1] == ["c0"]  # the oldest was evicted
