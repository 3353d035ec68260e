"""The Feast store of customer profiles: open it and load the latest profiles into it.

The store is configured in code from the settings (no ``feature_store.yaml`` is read): a file
registry and a SQLite online store under ``HOME/feast``, or Redis when ``online_store_url`` is
``redis://host:port/db``. Profiles are loaded with ``FeatureStore.write_to_online_store`` after
we pick the latest row per customer ourselves. ``FeatureStore.materialize`` writes through the
same code but re-reads and sorts the whole table with Dask, and from its second run on it marks
the view ``MATERIALIZING`` in the registry while it runs; Feast refuses online reads of a view in
that state (for good if the run is killed).

Reading them online is :mod:`features.online`.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from feast import FeatureStore, RepoConfig
from feast.infra.offline_stores.dask import DaskOfflineStoreConfig
from feast.infra.online_stores import sqlite as feast_sqlite
from feast.infra.online_stores.redis import RedisOnlineStoreConfig
from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig
from feast.repo_config import RegistryConfig

from features.catalog import ALL_FEATURES, TIMESTAMP_COLUMN, Kind
from features.feature_repo.definitions import (
    ENTITY_KEY,
    VIEW_NAME,
    profile_path,
    repo_objects,
)
from paynudge.config import Settings, get_settings
from paynudge.errors import ConfigError, DataError

PROJECT = "paynudge"
FEAST_DIR = "feast"
REPO_PATH = Path(__file__).parent / "feature_repo"
ENTITY_KEY_SERIALIZATION_VERSION = 3
"""Feast 0.67's current scheme; versions below 3 are deprecated."""

WRITE_BATCH_ROWS = 10_000
"""Profiles converted to Feast protobufs and written per call: bounds memory, not speed."""

_ARROW_TYPES: dict[Kind, tuple[pa.DataType, ...]] = {
    "int": (pa.int64(),),
    "float": (pa.float64(),),
    "bool": (pa.bool_(),),
    "category": (pa.string(), pa.large_string()),
}
_FEATURES = {feature.name: feature for feature in ALL_FEATURES}


@dataclass(frozen=True)
class MaterializeResult:
    """What one load of the online store did."""

    profile_path: Path
    rows_read: int  # profile rows at or before ``end`` (every as-of time)
    rows_written: int  # one per customer: its latest profile
    customers: int
    features: int
    as_of_min: datetime  # oldest of the written (latest) profiles
    as_of_max: datetime  # newest of the written profiles
    online_store: str
    seconds: float


def redis_connection_string(url: str) -> str:
    """Feast's Redis ``host:port,db=N[,password=...]`` from ``redis://[:password@]host:port/db``."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ConfigError(f"online_store_url: expected redis://host:port/db, got {url!r}")
    db = parts.path.strip("/") or "0"
    if not db.isdigit():
        raise ConfigError(f"online_store_url: the database must be a number, got {db!r} in {url!r}")
    options = [f"{parts.hostname}:{parts.port or 6379}", f"db={db}"]
    if parts.username:
        options.append(f"username={unquote(parts.username)}")
    if parts.password:
        options.append(f"password={unquote(parts.password)}")
    if parts.scheme == "rediss":
        options.append("ssl=true")
    if any("," in option for option in options):
        raise ConfigError("online_store_url: Feast cannot pass a ',' in a Redis user or password")
    return ",".join(options)


def repo_config(settings: Settings) -> RepoConfig:
    """The Feast configuration for ``settings``: file registry, file offline store, online store."""
    feast_dir = (settings.home / FEAST_DIR).absolute()
    url = settings.online_store_url
    online: SqliteOnlineStoreConfig | RedisOnlineStoreConfig
    if url is None:
        online = SqliteOnlineStoreConfig(path=str(feast_dir / "online.db"))
    elif url.startswith(("redis://", "rediss://")):
        # We write only the latest profile per customer, so overwrite: Feast's default check
        # skips rows not newer than the stored one, and would keep values a rebuild corrected.
        online = RedisOnlineStoreConfig(
            connection_string=redis_connection_string(url), skip_dedup=True
        )
    else:
        raise ConfigError(f"online_store_url: expected redis://host:port/db or unset, got {url!r}")
    return RepoConfig(
        project=PROJECT,
        provider="local",
        registry=RegistryConfig(path=str(feast_dir / "registry.db")),
        offline_store=DaskOfflineStoreConfig(type="file"),
        online_store=online,
        entity_key_serialization_version=ENTITY_KEY_SERIALIZATION_VERSION,
        repo_path=REPO_PATH,
    )


def open_store(settings: Settings | None = None) -> FeatureStore:
    """The feature store for ``settings``, with the repo's definitions applied (idempotent)."""
    settings = settings or get_settings()
    config = repo_config(settings)
    (settings.home / FEAST_DIR).mkdir(parents=True, exist_ok=True)
    store = FeatureStore(repo_path=str(REPO_PATH), config=config)
    store.apply(repo_objects(settings))
    return store


_FEAST_TURN = threading.RLock()
"""Held while Feast reads or writes with our sqlite3 registrations (and the collector paused)."""


@contextmanager
def feast_sqlite_times(read_cache: bool = False) -> Iterator[None]:
    """Feast's own sqlite3 time adapter and converter while Feast reads or writes, then the
    previous ones again.

    Feast's SQLite online store writes event times through sqlite3's process-wide ``datetime``
    adapter (Unix seconds) and reads them through its ``timestamp`` converter (``int(...)``).
    Other libraries re-register both for ISO text (pandas' ``read_sql`` on a sqlite3
    connection, ``nbformat``): profiles written after that cannot be read by another process
    (the decision service failed with ``invalid literal for int()``).

    ``read_cache``: convert each distinct stamp once per read (see :class:`_EventTimes`).
    Reads and writes of a process take turns (a lock): registrations are process-wide, so two
    overlapping ones would restore each other's converter.
    """
    with _FEAST_TURN:
        key = (datetime, sqlite3.PrepareProtocol)
        adapter, converter = sqlite3.adapters.get(key), sqlite3.converters.get("TIMESTAMP")
        sqlite3.register_adapter(datetime, feast_sqlite.adapt_datetime_epoch)
        converter_now = _EventTimes().__getitem__ if read_cache else feast_sqlite.convert_timestamp
        sqlite3.register_converter("timestamp", converter_now)
        try:
            yield
        finally:
            _restore_sqlite_times(key, adapter, converter)


def _restore_sqlite_times(key: tuple, adapter: object, converter: object) -> None:
    """Put back the adapter and converter that were registered before."""
    if adapter is None:
        sqlite3.adapters.pop(key, None)
    else:
        sqlite3.register_adapter(datetime, adapter)  # type: ignore[arg-type]
    if converter is None:
        sqlite3.converters.pop("TIMESTAMP", None)
    else:
        sqlite3.register_converter("timestamp", converter)  # type: ignore[arg-type]


class _EventTimes(dict[bytes, datetime]):
    """Feast's ``timestamp`` converter, memoised, its naive result labelled UTC as Feast's SQLite
    ``online_read`` then labels it: that read converts one stamp per feature and customer, most
    of them equal (profiles share their as-of time), and takes a UTC one as it is."""

    def __missing__(self, raw: bytes) -> datetime:
        stamp = self[raw] = feast_sqlite.convert_timestamp(raw).replace(tzinfo=UTC)
        return stamp


def materialize(settings: Settings | None = None, end: datetime | None = None) -> MaterializeResult:
    """Load each customer's latest profile (as of ``end``, default: all) into the online store.

    A naive ``end`` is read as UTC. Every customer in the table is overwritten; customers no
    longer in the table keep their last profile.
    """
    started = time.perf_counter()
    settings = settings or get_settings()
    path = profile_path(settings)
    profiles = _read_profiles(path, end)
    latest = profiles.sort_values([ENTITY_KEY, TIMESTAMP_COLUMN], kind="stable")
    latest = latest.drop_duplicates(ENTITY_KEY, keep="last").reset_index(drop=True)
    store = open_store(settings)
    with feast_sqlite_times():
        for start in range(0, len(latest), WRITE_BATCH_ROWS):
            batch = latest.iloc[start : start + WRITE_BATCH_ROWS]
            store.write_to_online_store(VIEW_NAME, df=batch)
    as_of = latest[TIMESTAMP_COLUMN]
    return MaterializeResult(
        profile_path=path,
        rows_read=len(profiles),
        rows_written=len(latest),
        customers=len(latest),
        features=len(ALL_FEATURES),
        as_of_min=as_of.min().to_pydatetime(),
        as_of_max=as_of.max().to_pydatetime(),
        online_store=store.config.online_store.type,
        seconds=time.perf_counter() - started,
    )


def _read_profiles(path: Path, end: datetime | None) -> pd.DataFrame:
    """The profile rows at or before ``end``, checked against the data contract."""
    if not path.is_file():
        raise DataError(
            f"no customer profiles at {path}: run `paynudge features build` first "
            "to write the profile table"
        )
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as error:
        raise DataError(f"cannot read the customer profiles at {path}: {error}") from None
    _check_schema(schema, path)
    columns = [ENTITY_KEY, TIMESTAMP_COLUMN, *_FEATURES]
    filters = None
    if end is not None:
        end_utc = end.replace(tzinfo=UTC) if end.tzinfo is None else end.astimezone(UTC)
        filters = [(TIMESTAMP_COLUMN, "<=", pd.Timestamp(end_utc))]
    frame = pq.read_table(path, columns=columns, filters=filters).to_pandas()
    frame[TIMESTAMP_COLUMN] = pd.to_datetime(frame[TIMESTAMP_COLUMN], utc=True)
    _check_rows(frame, path, end)
    return frame


def _check_schema(schema: pa.Schema, path: Path) -> None:
    """Every catalogue column present with an Arrow type of its kind."""
    expected: dict[str, Kind] = {ENTITY_KEY: "category"}
    expected.update({name: feature.kind for name, feature in _FEATURES.items()})
    missing = [name for name in [TIMESTAMP_COLUMN, *expected] if name not in schema.names]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    if not pa.types.is_timestamp(schema.field(TIMESTAMP_COLUMN).type):
        raise DataError(f"{path}: column {TIMESTAMP_COLUMN} must be a timestamp")
    wrong = [
        f"{name} is {schema.field(name).type}, expected {' or '.join(map(str, _ARROW_TYPES[kind]))}"
        for name, kind in expected.items()
        if schema.field(name).type not in _ARROW_TYPES[kind]
    ]
    if wrong:
        raise DataError(f"{path}: column(s) of the wrong type: {', '.join(wrong)}")


def _check_rows(frame: pd.DataFrame, path: Path, end: datetime | None) -> None:
    """At least one row; no null key or time; one row per (customer, as-of time)."""
    if frame.empty:
        where = "" if end is None else f" at or before {end.isoformat()}"
        raise DataError(f"{path}: no customer profile{where}")
    keys = frame[[ENTITY_KEY, TIMESTAMP_COLUMN]]
    if keys.isna().to_numpy().any():
        raise DataError(f"{path}: null {ENTITY_KEY} or {TIMESTAMP_COLUMN} in some rows")
    duplicated = keys.duplicated()
    if duplicated.any():
        row = keys[duplicated].iloc[0]
        raise DataError(
            f"{path}: {int(duplicated.sum())} duplicate profile(s), e.g. customer "
            f"{row[ENTITY_KEY]} at {row[TIMESTAMP_COLUMN].isoformat()}"
        )
