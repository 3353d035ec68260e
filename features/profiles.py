"""Customer profiles: every customer's features as of one time, for the Feast online store.

The profile is built by the same feature definitions as the training datasets (a spine of one
row per customer, cutoff = ``as_of``, current invoice = the latest issued before it), so online
features equal offline ones by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ibis
import pandas as pd

from features.backend import connect, register
from features.catalog import ALL_FEATURES, PROFILE_FILE, TIMESTAMP_COLUMN, names
from features.datasets import data_end
from features.rows import build_facts, feature_rows

ONE_SECOND = pd.Timedelta(seconds=1)


@dataclass(frozen=True)
class ProfileResult:
    """Where the profiles went, how many, and as of when."""

    path: Path
    customers: int
    as_of: pd.Timestamp


def profile_frame(
    tables: dict[str, pd.DataFrame],
    as_of: pd.Timestamp,
    *,
    backend_url: str = "duckdb://",
    grace_days: float = 0.0,
) -> pd.DataFrame:
    """``customer_id``, ``event_timestamp`` (= ``as_of``) and every feature, one row each."""
    con = connect(backend_url)
    raw = register(con, tables)
    facts = build_facts(raw, grace_days)
    customers = raw.customers.select("customer_id")
    spine = customers.select(
        row_id=ibis.row_number(),
        customer_id=customers.customer_id,
        cutoff=ibis.literal(as_of),
        invoice_id=ibis.null("string"),
    ).cache()
    rows = feature_rows(raw, facts, spine)
    joined = spine.join(rows, "row_id").select(
        "customer_id", *names(ALL_FEATURES), event_timestamp=spine.cutoff
    )
    frame = joined.order_by("customer_id").to_pyarrow().to_pandas()
    return frame[["customer_id", TIMESTAMP_COLUMN, *names(ALL_FEATURES)]]


def build_profiles(
    tables: dict[str, pd.DataFrame],
    out: Path,
    *,
    as_of: pd.Timestamp | None = None,
    backend_url: str = "duckdb://",
    grace_days: float = 0.0,
) -> ProfileResult:
    """Write the profiles as of ``as_of`` (default: one second after the data set's last event)."""
    when = as_of if as_of is not None else data_end(tables) + ONE_SECOND
    frame = profile_frame(tables, when, backend_url=backend_url, grace_days=grace_days)
    out.mkdir(parents=True, exist_ok=True)
    path = out / PROFILE_FILE
    frame.to_parquet(path, index=False)
    return ProfileResult(path=path, customers=len(frame), as_of=when)
