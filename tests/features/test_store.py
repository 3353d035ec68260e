"""The Feast store round trip: profiles in, each customer's latest profile out (SQLite, Redis)."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest

from features.catalog import ALL_FEATURES, Feature, names
from features.feature_repo.definitions import profile_path
from features.online import ONLINE_DTYPES, online_features
from features.store import materialize, open_store, redis_connection_string
from paynudge.config import Settings
from paynudge.errors import ConfigError, DataError
from paynudge.vocabulary import LANGUAGES, PLANS

REDIS_URL = "redis://127.0.0.1:6379/15"
CUSTOMERS = ("c-001", "c-002", "c-003", "c-004")
EARLIER = datetime(2025, 5, 1, tzinfo=UTC)
LATEST = datetime(2025, 6, 1, tzinfo=UTC)
CATEGORIES = {"plan": PLANS, "language": LANGUAGES}
FEATURE_NAMES = names(ALL_FEATURES)


def _column(feature: Feature, rng: np.random.Generator, n: int) -> np.ndarray:
    """Plausible values of one feature; floats include nulls (always in the first row)."""
    if feature.kind == "int":
        return rng.integers(0, 40, n, dtype=np.int64)
    if feature.kind == "bool":
        return rng.random(n) < 0.5
    if feature.kind == "category":
        return rng.choice(np.array(CATEGORIES[feature.name], dtype=object), n)
    rate = "rate" in feature.name or "share" in feature.name
    values = rng.random(n) if rate else rng.gamma(2.0, 40.0, n)
    values[(rng.random(n) < 0.2) | (np.arange(n) == 0)] = np.nan
    return values


def profiles_as_of(
    as_of: datetime, seed: int, customers: tuple[str, ...] = CUSTOMERS
) -> pd.DataFrame:
    """One profile row per customer at ``as_of``, every catalogue column filled."""
    rng = np.random.default_rng(seed)
    n = len(customers)
    columns: dict[str, object] = {
        "customer_id": np.array(customers, dtype=object),
        "event_timestamp": pd.to_datetime([as_of] * n, utc=True),
    }
    columns.update({feature.name: _column(feature, rng, n) for feature in ALL_FEATURES})
    return pd.DataFrame(columns)


def write_profiles(settings: Settings, table: pd.DataFrame) -> Path:
    """Write ``table`` where the feature pipeline writes the profile table."""
    path = profile_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(path, index=False)
    return path


@pytest.fixture
def history() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Earlier and latest profiles of every customer."""
    return profiles_as_of(EARLIER, seed=1), profiles_as_of(LATEST, seed=2)


def _redis_reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(params=["sqlite", "redis"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings on a fresh home, with the SQLite or the Redis online store (db 15, flushed)."""
    if request.param == "sqlite":
        yield Settings(home=tmp_path, online_store_url=None)
        return
    if not _redis_reachable(REDIS_URL):
        pytest.skip(f"Redis not reachable at {REDIS_URL}: start redis-server to run this test")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    try:
        yield Settings(home=tmp_path, online_store_url=REDIS_URL)
    finally:
        client.flushdb()
        client.close()


def assert_matches_profiles(online: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Online rows equal ``expected`` for every feature (NaN equals NaN), with online dtypes."""
    assert online["known"].all()
    for feature in ALL_FEATURES:
        assert online[feature.name].dtype == ONLINE_DTYPES[feature.kind], feature.name
    actual = online[FEATURE_NAMES].astype(expected[FEATURE_NAMES].dtypes.to_dict())
    pd.testing.assert_frame_equal(
        actual.reset_index(drop=True), expected[FEATURE_NAMES].reset_index(drop=True)
    )


def test_online_store_holds_the_latest_profile_of_each_customer(
    settings: Settings, history: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    earlier, latest = history
    write_profiles(settings, pd.concat([latest, earlier], ignore_index=True))

    result = materialize(settings)

    assert (result.rows_read, result.rows_written, result.customers) == (8, 4, 4)
    assert result.as_of_min == result.as_of_max == LATEST
    online = online_features(list(CUSTOMERS), settings)
    assert list(online["customer_id"]) == list(CUSTOMERS)
    assert_matches_profiles(online, latest)


def test_end_loads_the_profiles_as_of_that_time(
    settings: Settings, history: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    earlier, latest = history
    write_profiles(settings, pd.concat([latest, earlier], ignore_index=True))

    result = materialize(settings, end=datetime(2025, 5, 15))  # naive: read as UTC

    assert result.rows_read == 4 and result.as_of_max == EARLIER
    assert_matches_profiles(online_features(list(CUSTOMERS), settings), earlier)


def test_a_rebuilt_profile_overwrites_the_stored_one(
    settings: Settings, history: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    _, latest = history
    write_profiles(settings, latest)
    materialize(settings)
    corrected = profiles_as_of(LATEST, seed=3)  # same as-of time, new values
    write_profiles(settings, corrected)

    materialize(settings)

    assert_matches_profiles(online_features(list(CUSTOMERS), settings), corrected)


def test_unknown_ids_are_null_and_request_order_is_kept(
    settings: Settings, history: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    _, latest = history
    write_profiles(settings, latest)
    materialize(settings)
    request = ["c-003", "ghost", "c-001", "c-003", "nobody"]

    online = online_features(request, settings)

    assert list(online["customer_id"]) == request
    assert list(online["known"]) == [True, False, True, True, False]
    assert online.loc[~online["known"], FEATURE_NAMES].isna().all().all()
    by_id = latest.set_index("customer_id").loc[["c-003", "c-001", "c-003"]]
    assert_matches_profiles(online[online["known"]], by_id.reset_index())


def test_before_any_load_every_id_is_unknown(tmp_path: Path) -> None:
    online = online_features(["c-001"], Settings(home=tmp_path, online_store_url=None))

    assert list(online["known"]) == [False]


def test_a_feature_subset_comes_back_in_the_order_asked(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, online_store_url=None)
    write_profiles(settings, profiles_as_of(LATEST, seed=2))
    materialize(settings)

    online = online_features(["c-002"], settings, features=["plan", "on_time_rate", "plan"])

    assert list(online.columns) == ["customer_id", "plan", "on_time_rate", "known"]


def test_no_ids_give_an_empty_typed_frame(tmp_path: Path) -> None:
    online = online_features([], Settings(home=tmp_path, online_store_url=None))

    assert online.empty
    assert list(online.columns) == ["customer_id", *FEATURE_NAMES, "known"]
    assert online["late_streak"].dtype == "Int64"


@pytest.mark.parametrize(
    ("ids", "features", "match"),
    [
        (["c-001"], ["no_such_feature"], "not in the catalogue: no_such_feature"),
        (["c-001"], [], "at least one feature"),
        ([1], None, "customer ids must be strings"),
    ],
)
def test_bad_requests_are_refused(
    tmp_path: Path, ids: list, features: list[str] | None, match: str
) -> None:
    with pytest.raises(DataError, match=match):
        online_features(ids, Settings(home=tmp_path, online_store_url=None), features=features)


def test_a_missing_profile_table_says_to_build_features_first(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, online_store_url=None)

    with pytest.raises(DataError, match="paynudge features build") as error:
        materialize(settings)

    assert str(profile_path(settings)) in str(error.value)


def _drop_plan(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns="plan")


def _text_tenure(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(tenure_days=table["tenure_days"].astype(str))


def _repeat_a_row(table: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([table, table.iloc[[1]]], ignore_index=True)


@pytest.mark.parametrize(
    ("spoil", "match"),
    [
        (_drop_plan, "missing column(s) plan"),
        (_text_tenure, "wrong type: tenure_days is string, expected double"),
        (_repeat_a_row, "1 duplicate profile(s), e.g. customer c-002"),
    ],
)
def test_profiles_breaking_the_contract_are_refused(
    tmp_path: Path, spoil: Callable[[pd.DataFrame], pd.DataFrame], match: str
) -> None:
    settings = Settings(home=tmp_path, online_store_url=None)
    write_profiles(settings, spoil(profiles_as_of(LATEST, seed=2)))

    with pytest.raises(DataError, match=re.escape(match)):
        materialize(settings)


def test_nothing_as_of_end_is_refused(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, online_store_url=None)
    write_profiles(settings, profiles_as_of(LATEST, seed=2))

    with pytest.raises(DataError, match="no customer profile at or before 2025-01-01"):
        materialize(settings, end=datetime(2025, 1, 1, tzinfo=UTC))


def test_opening_twice_is_idempotent(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, online_store_url=None)

    first = {view.name for view in open_store(settings).list_feature_views()}
    second = open_store(settings)

    assert {view.name for view in second.list_feature_views()} == first == {"customer_profile"}
    assert {service.name for service in second.list_feature_services()} == {
        "late_payment_v1",
        "churn_v1",
        "send_time_v1",
    }


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379/15", "127.0.0.1:6379,db=15"),
        ("redis://cache", "cache:6379,db=0"),
        ("redis://:s%40cret@cache:6380/2", "cache:6380,db=2,password=s@cret"),
        ("rediss://user:pw@cache:6380/1", "cache:6380,db=1,username=user,password=pw,ssl=true"),
    ],
)
def test_redis_urls_become_feast_connection_strings(url: str, expected: str) -> None:
    assert redis_connection_string(url) == expected


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("redis://cache:6379/cache", "the database must be a number"),
        ("postgresql://db/x", "expected redis://host:port/db"),
        ("redis://:a,b@cache/0", "cannot pass a ','"),
    ],
)
def test_bad_online_store_urls_are_refused(tmp_path: Path, url: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        open_store(Settings(home=tmp_path, online_store_url=url))


def test_profiles_written_after_other_libraries_reset_sqlite_adapters_read_elsewhere(
    settings: Settings, history: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    """pandas (read_sql on sqlite3) and nbformat register ISO-text datetime adapters process-wide;
    Feast's online store must still write times that a fresh process (the service) can read."""
    import sqlite3
    import subprocess
    import sys

    key = (datetime, sqlite3.PrepareProtocol)
    saved = sqlite3.adapters.get(key), sqlite3.converters.get("TIMESTAMP")
    sqlite3.register_adapter(datetime, lambda value: value.isoformat(" "))
    sqlite3.register_converter("timestamp", lambda value: datetime.fromisoformat(value.decode()))
    try:
        _, latest = history
        write_profiles(settings, latest)
        materialize(settings)
        assert sqlite3.adapters[key](datetime(2025, 1, 1)) == "2025-01-01 00:00:00"  # restored
    finally:
        sqlite3.adapters[key], sqlite3.converters["TIMESTAMP"] = saved
    script = (
        "from features.online import online_features; from paynudge.config import Settings; "
        f"s = Settings(home={str(settings.home)!r}, "
        f"online_store_url={settings.online_store_url!r}); "
        f"o = online_features({list(CUSTOMERS)!r}, s); "
        "print(int(o['known'].sum()))"
    )
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert found.returncode == 0, found.stderr[-2000:]
    assert found.stdout.strip().splitlines()[-1] == str(len(CUSTOMERS))
