"""The Feast store of customer profiles: open it, load the latest profiles, read them online.

The store is configured in code from the settings (no ``feature_store.yaml`` is read): a file
registry and a SQLite online store under ``HOME/feast``, or Redis when ``online_store_url`` is
``redis://host:port/db``. Profiles are loaded with ``FeatureStore.write_to_online_store`` after
we pick the latest row per customer ourselves. ``FeatureStore.materialize`` writes through the
same code but re-reads and sorts the whole table with Dask, and from its second run on it marks
the view ``MATERIALIZING`` in the registry while it runs; Feast refuses online reads of a view in
that state (for good if the run is killed).

Profiles are read with the configured online store's ``online_read`` (the ``OnlineStore``
interface under ``get_online_features``) and decoded to typed columns here: the same values as
``get_online_features(...).to_dict()`` (``benchmarks/feast_reference.py``) at ~3x the speed.
"""

from __future__ import annotations

import gc
import sqlite3
import threading
import time
from calendar import timegm
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from typing import TypeAlias
from urllib.parse import unquote, urlsplit

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from feast import FeatureStore, FeatureView, RepoConfig
from feast.infra.offline_stores.dask import DaskOfflineStoreConfig
from feast.infra.online_stores import sqlite as feast_sqlite
from feast.infra.online_stores.online_store import OnlineStore
from feast.infra.online_stores.redis import RedisOnlineStoreConfig
from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig
from feast.online_response import OnlineResponse
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.repo_config import RegistryConfig
from feast.type_map import feast_value_type_to_python_type
from pandas.api.extensions import ExtensionArray

from features.catalog import ALL_FEATURES, TIMESTAMP_COLUMN, Feature, Kind
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

ONLINE_DTYPES: dict[Kind, str] = {
    "int": "Int64",
    "float": "float64",
    "bool": "boolean",
    "category": "object",
}
"""Online dtype per kind: nullable, so ids missing from the store keep the same dtypes."""

_ARROW_TYPES: dict[Kind, tuple[pa.DataType, ...]] = {
    "int": (pa.int64(),),
    "float": (pa.float64(),),
    "bool": (pa.bool_(),),
    "category": (pa.string(), pa.large_string()),
}
_FEATURES = {feature.name: feature for feature in ALL_FEATURES}
_VALUE_FIELDS: dict[Kind, str] = {
    "int": "int64_val",
    "float": "double_val",
    "bool": "bool_val",
    "category": "string_val",
}
"""The ``Value`` protobuf field Feast writes each kind to."""
_NUMPY_TYPES: dict[Kind, type] = {
    "int": np.int64,
    "float": np.float64,
    "bool": np.bool_,
    "category": object,
}
_NULL = ValueProto()
Column: TypeAlias = np.ndarray | ExtensionArray
"""One typed result column."""


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


@dataclass(frozen=True)
class _StoreKey:
    """What identifies a store; the settings ride along for opening it."""

    home: Path
    features_dir: Path | None
    online_store_url: str | None
    settings: Settings = field(compare=False, hash=False)


@dataclass(frozen=True)
class _ServingStore:
    """An opened store, its profile view, and the online store behind it (None: read through
    ``get_online_features``, for providers that do not expose one)."""

    store: FeatureStore
    view: FeatureView
    online: OnlineStore | None


@lru_cache(maxsize=8)
def _serving_store(key: _StoreKey) -> _ServingStore:
    """One opened store per process and location: applying definitions is not per request."""
    store = open_store(key.settings)
    online = getattr(store.provider, "online_store", None)
    view = store.get_feature_view(VIEW_NAME)
    return _ServingStore(store, view, online if isinstance(online, OnlineStore) else None)


def online_features(
    customer_ids: Sequence[str],
    settings: Settings | None = None,
    features: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The stored profile of each id, in request order, with ``known`` False for unknown ids.

    Columns: ``customer_id``, the features (all of the catalogue by default) with the dtypes of
    :data:`ONLINE_DTYPES`, and ``known``. Unknown ids get null features. Each distinct id is
    read once with the online store's ``online_read`` (the documented ``OnlineStore``
    interface that ``get_online_features`` calls), decoded as ``OnlineResponse.to_dict`` does.
    """
    settings = settings or get_settings()
    selected = _select_features(features)
    ids = list(customer_ids)
    if not all(isinstance(customer_id, str) for customer_id in ids):
        raise DataError("online_features: customer ids must be strings")
    codes, distinct = pd.factorize(np.array(ids, dtype=object))
    if ids:
        key = _StoreKey(settings.home, settings.features_dir, settings.online_store_url, settings)
        with feast_sqlite_times(read_cache=True), _collector_paused():
            serving = _serving_store(key)  # opened once, in turn: Feast's registry is a file
            read = _read_online if serving.online is not None else _read_public
            columns, known = read(serving, list(distinct), selected)
    else:
        columns = {feature.name: _typed([], feature) for feature in selected}
        known = np.zeros(0, dtype=bool)
    frame: dict[str, Column] = {ENTITY_KEY: np.array(ids, dtype=object)}
    frame.update({name: column.take(codes) for name, column in columns.items()})
    frame["known"] = known.take(codes)
    return pd.DataFrame(frame)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused during a read, then as it was.

    A read allocates ~60 protobufs, dicts and tuples per customer, none in a cycle (reference
    counting frees them), and each few hundred allocations start a collection that re-scans the
    long-lived heap: about a third of a 1,000-customer read (``benchmarks/bench_profiles.py``).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _select_features(names: Sequence[str] | None) -> list[Feature]:
    """Catalogue features by name (all by default), each once, in the order asked."""
    if names is None:
        return list(ALL_FEATURES)
    unknown = [name for name in names if name not in _FEATURES]
    if unknown:
        raise DataError(f"online_features: not in the catalogue: {', '.join(unknown)}")
    if not names:
        raise DataError("online_features: ask for at least one feature, or None for all")
    return [_FEATURES[name] for name in dict.fromkeys(names)]


def _read_online(
    serving: _ServingStore, ids: list[str], selected: list[Feature]
) -> tuple[dict[str, Column], np.ndarray]:
    """Typed columns and ``known`` flags of distinct ``ids`` from the store's ``online_read``."""
    assert serving.online is not None
    keys = [
        EntityKeyProto(join_keys=[ENTITY_KEY], entity_values=[ValueProto(string_val=customer_id)])
        for customer_id in ids
    ]
    rows = serving.online.online_read(
        serving.store.config, serving.view, keys, [feature.name for feature in selected]
    )
    # As Feast's response: known when the row has an event time of whole seconds != 0 (its Redis
    # store returns lacking ids with the epoch and empty values).
    known = [stamp is not None and timegm(stamp.utctimetuple()) != 0 for stamp, _ in rows]
    by_feature = _transposed([values for _, values in rows], [feature.name for feature in selected])
    columns = {
        feature.name: _decoded(protos, feature)
        for feature, protos in zip(selected, by_feature, strict=True)
    }
    return columns, np.array(known, dtype=bool)


def _transposed(
    found: list[dict[str, ValueProto] | None], names: list[str]
) -> list[tuple[ValueProto, ...]]:
    """Per-customer values (None: not found) as one tuple per feature, null where missing."""
    nulls, pick = (_NULL,) * len(names), itemgetter(*names)

    def picked(values: dict[str, ValueProto] | None) -> tuple[ValueProto, ...]:
        if values is None:
            return nulls
        try:
            row = pick(values)
        except KeyError:
            return tuple(values.get(name, _NULL) for name in names)
        return row if len(names) > 1 else (row,)

    return list(zip(*map(picked, found), strict=True))


def _decoded(protos: Sequence[ValueProto], feature: Feature) -> Column:
    """One feature's protobuf values as a typed array, equal to ``to_dict`` then
    :data:`ONLINE_DTYPES`; any encoding but the kind's own goes through Feast's converter."""
    value_field = _VALUE_FIELDS[feature.kind]
    fields = [proto.WhichOneof("val") for proto in protos]
    if not set(fields) <= {value_field, None}:
        return _typed([feast_value_type_to_python_type(proto) for proto in protos], feature)
    missing = np.array([name is None for name in fields], dtype=bool)
    values: np.ndarray = np.array(
        [getattr(proto, value_field) for proto in protos], dtype=_NUMPY_TYPES[feature.kind]
    )
    if feature.kind == "int":
        return pd.arrays.IntegerArray(values, missing)
    if feature.kind == "bool":
        return pd.arrays.BooleanArray(values, missing)
    values[missing] = np.nan if feature.kind == "float" else None
    return values


def _read_public(
    serving: _ServingStore, ids: list[str], selected: list[Feature]
) -> tuple[dict[str, Column], np.ndarray]:
    """Typed columns and ``known`` flags of ``ids`` through ``get_online_features``."""
    response = serving.store.get_online_features(
        features=[f"{VIEW_NAME}:{feature.name}" for feature in selected],
        entity_rows={ENTITY_KEY: ids},
    )
    values = response.to_dict()
    columns = {feature.name: _typed(values[feature.name], feature) for feature in selected}
    return columns, _known(response, selected[0])


def _known(response: OnlineResponse, feature: Feature) -> np.ndarray:
    """Ids the store holds a profile for: those with an event time.

    Not the field status: Feast's Redis store reports ids it lacks as PRESENT with empty values.
    """
    names = list(response.proto.metadata.feature_names.val)
    vector = response.proto.results[names.index(feature.name)]
    return np.array([stamp.seconds != 0 for stamp in vector.event_timestamps], dtype=bool)


def _typed(values: list, feature: Feature) -> Column:
    """Python values (``None`` for null) as an array of the feature's online dtype."""
    return pd.array(values, dtype=ONLINE_DTYPES[feature.kind])
