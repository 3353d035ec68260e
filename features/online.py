"""Customer profiles read online, as the decision service needs them.

Profiles are read with the configured online store's ``online_read`` (the ``OnlineStore``
interface under ``get_online_features``) and decoded to typed columns here: the same values as
``get_online_features(...).to_dict()`` (``benchmarks/feast_reference.py``) at ~3x the speed.
Reads and the first opening of the store take turns with every other Feast access of the
process (:func:`features.store.feast_sqlite_times`).
"""

from __future__ import annotations

import gc
from calendar import timegm
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from typing import TypeAlias

import numpy as np
import pandas as pd
from feast import FeatureStore, FeatureView
from feast.infra.online_stores.online_store import OnlineStore
from feast.online_response import OnlineResponse
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.type_map import feast_value_type_to_python_type
from pandas.api.extensions import ExtensionArray

from features.catalog import ALL_FEATURES, Feature, Kind
from features.feature_repo.definitions import ENTITY_KEY, VIEW_NAME
from features.store import feast_sqlite_times, open_store
from paynudge.config import Settings, get_settings
from paynudge.errors import DataError

ONLINE_DTYPES: dict[Kind, str] = {
    "int": "Int64",
    "float": "float64",
    "bool": "boolean",
    "category": "object",
}
"""Online dtype per kind: nullable, so ids missing from the store keep the same dtypes."""

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
