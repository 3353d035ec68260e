"""The Feast feature repo: the customer entity, the customer-profile view and one service per model.

The view's schema is generated from :data:`features.catalog.ALL_FEATURES`, so the catalogue stays
the one specification of every feature. The module-level objects are built from the process-wide
settings for the Feast CLI (see ``feature_store.yaml``); :mod:`features.store` builds the same
objects for any explicit :class:`~paynudge.config.Settings` with :func:`repo_objects`. No
``on_demand_feature_view``: Feast stores its Python UDFs with ``dill``, which is unsafe to load.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.data_format import ParquetFormat
from feast.feast_object import FeastObject
from feast.types import Bool, Float64, Int64, PrimitiveFeastType, String

from features.catalog import ALL_FEATURES, PROFILE_FILE, TIMESTAMP_COLUMN, Kind
from paynudge.config import Settings, get_settings

ENTITY_KEY = "customer_id"
VIEW_NAME = "customer_profile"
PROFILE_TTL = timedelta(days=400)
"""How far back offline joins look for a profile: profiles are monthly, a year plus slack."""

FEAST_TYPES: dict[Kind, PrimitiveFeastType] = {
    "int": Int64,
    "float": Float64,
    "bool": Bool,
    "category": String,
}
"""Catalogue kind -> Feast type."""

customer = Entity(
    name="customer",
    join_keys=[ENTITY_KEY],
    value_type=ValueType.STRING,
    description="A billed customer, keyed by customer_id.",
)


def profile_path(settings: Settings) -> Path:
    """Absolute path of the customer-profile Parquet file for ``settings``."""
    return (settings.features_directory / PROFILE_FILE).absolute()


def profile_source(settings: Settings) -> FileSource:
    """The profile table as a Feast file source (absolute path, so no repo-relative lookup)."""
    return FileSource(
        name="customer_profiles",
        path=str(profile_path(settings)),
        file_format=ParquetFormat(),
        timestamp_field=TIMESTAMP_COLUMN,
        description="Customer profiles as of each profile time, built by the feature pipeline.",
    )


def profile_view(source: FileSource) -> FeatureView:
    """The customer-profile view: every catalogue feature, typed from its kind."""
    schema = [Field(name=ENTITY_KEY, dtype=String)] + [
        Field(name=feature.name, dtype=FEAST_TYPES[feature.kind], description=feature.description)
        for feature in ALL_FEATURES
    ]
    return FeatureView(
        name=VIEW_NAME,
        entities=[customer],
        ttl=PROFILE_TTL,
        schema=schema,
        source=source,
        online=True,
        description="Latest profile of each customer: history, bill, account, engagement.",
        tags={"schema": "features.catalog.ALL_FEATURES"},
    )


def model_services(view: FeatureView) -> tuple[FeatureService, ...]:
    """One versioned feature service per model; a new feature set gets a new version."""
    return (
        FeatureService(
            name="late_payment_v1",
            features=[view],
            description="Features of the late-payment model.",
        ),
        FeatureService(
            name="churn_v1",
            features=[view],
            description="Features of the churn model.",
        ),
        FeatureService(
            name="send_time_v1",
            features=[view],
            description="Customer features of the send-time model.",
        ),
    )


def repo_objects(settings: Settings) -> list[FeastObject]:
    """Every object of the repo for ``settings``, ready for ``FeatureStore.apply``."""
    source = profile_source(settings)
    view = profile_view(source)
    return [customer, source, view, *model_services(view)]


# The declarative repo for the Feast CLI, from the process-wide settings (no side effects).
customer_profile_source = profile_source(get_settings())
customer_profile = profile_view(customer_profile_source)
late_payment_v1, churn_v1, send_time_v1 = model_services(customer_profile)
