"""Build the training datasets and customer profiles, and write them with manifests.

``build_datasets`` is the library function behind ``paynudge features build``: load a validated
data set, register it on the Ibis backend, compute the facts once, then for each dataset join its
labelled spine with every feature family and write Parquet plus a small JSON manifest (rows,
censored rows, time range, feature list, label columns, data hash).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import ibis
import pandas as pd

from features.backend import RawTables, connect, register
from features.catalog import ALL_FEATURES, SEND_CONTEXT, names
from features.labels import (
    LabelledSpine,
    churn_spine,
    late_payment_spine,
    month_ends,
    send_time_spine,
)
from features.rows import Facts, build_facts, feature_rows
from paynudge.errors import DataError

DATASETS = ("late_payment", "churn", "send_time")
EVENT_COLUMNS = {
    "payments": ("paid_at",),
    "messages": ("decided_at", "sent_at", "delivered_at", "opened_at", "clicked_at"),
    "responses": ("occurred_at",),
    "churn": ("churned_at",),
}


@dataclass(frozen=True)
class DatasetManifest:
    """What a written dataset holds; stored next to it as ``<name>.manifest.json``."""

    name: str
    path: str
    rows: int
    censored_rows: int
    time_range: tuple[str, str]
    features: tuple[str, ...]
    labels: tuple[str, ...]
    keys: tuple[str, ...]
    data_hash: str
    as_of: str
    grace_days: float


def data_end(tables: dict[str, pd.DataFrame]) -> pd.Timestamp:
    """The latest event time in the data set: labels after it are unknown."""
    latest = [
        tables[name][column].max()
        for name, columns in EVENT_COLUMNS.items()
        if name in tables
        for column in columns
        if len(tables[name]) and tables[name][column].notna().any()
    ]
    if not latest:
        raise DataError("the data set has no payments or other events to date it by")
    return max(latest)


def spine_for(name: str, raw: RawTables, facts: Facts, as_of: pd.Timestamp) -> LabelledSpine:
    if name == "late_payment":
        return late_payment_spine(facts.invoices, as_of)
    if name == "send_time":
        return send_time_spine(facts.messages, as_of)
    first_issue = pd.Timestamp(raw.invoices.issue_date.min().to_pyarrow().as_py(), tz="UTC")
    return churn_spine(raw, month_ends(first_issue, as_of), as_of)


def labelled_rows(spine: LabelledSpine, raw: RawTables, facts: Facts) -> ibis.Table:
    """Features joined to the labelled spine, censored rows left out, in a stable order."""
    rows = spine.rows
    kept = rows.filter(~rows.censored)
    features = feature_rows(
        raw, facts, kept.select("row_id", "customer_id", "cutoff", "invoice_id")
    )
    joined = kept.join(features, "row_id").select(
        "customer_id", "cutoff", *spine.keys, *spine.labels, *names(ALL_FEATURES)
    )
    return joined.order_by(["cutoff", "customer_id", *spine.keys[:1]])


def write_dataset(
    rows: ibis.Table,
    name: str,
    spine: LabelledSpine,
    censored: int,
    out: Path,
    as_of: pd.Timestamp,
    grace_days: float,
) -> DatasetManifest:
    """Write ``rows`` as Parquet straight from the backend, then its manifest beside it."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.parquet"
    rows.to_parquet(path)
    written = rows.get_backend().read_parquet(path)
    stats = written.aggregate(
        n=written.count(), first=written.cutoff.min(), last=written.cutoff.max()
    )
    n, first, last = stats.to_pyarrow().to_pylist()[0].values()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    extra = tuple(names(SEND_CONTEXT)) if name == "send_time" else ()
    manifest = DatasetManifest(
        name=name,
        path=str(path),
        rows=int(n),
        censored_rows=censored,
        time_range=(first.isoformat() if first else "", last.isoformat() if last else ""),
        features=tuple(names(ALL_FEATURES)) + extra,
        labels=spine.labels,
        keys=spine.keys,
        data_hash=f"sha256:{digest}",
        as_of=str(as_of),
        grace_days=grace_days,
    )
    (out / f"{name}.manifest.json").write_text(json.dumps(asdict(manifest), indent=2))
    return manifest


def build_datasets(
    tables: dict[str, pd.DataFrame],
    out: Path,
    *,
    backend_url: str = "duckdb://",
    grace_days: float = 0.0,
    as_of: pd.Timestamp | None = None,
    which: Sequence[str] = DATASETS,
) -> list[DatasetManifest]:
    """Build and write the datasets named in ``which`` from validated ``tables``."""
    unknown = set(which) - set(DATASETS)
    if unknown:
        raise DataError(f"unknown dataset {sorted(unknown)}; expected some of {DATASETS}")
    end = as_of if as_of is not None else data_end(tables)
    con = connect(backend_url)
    raw = register(con, tables)
    facts = build_facts(raw, grace_days)
    manifests = []
    for name in which:
        spine = spine_for(name, raw, facts, end)
        spine = replace(spine, rows=spine.rows.cache())
        censored = int(spine.rows.censored.sum().to_pyarrow().as_py() or 0)
        rows = labelled_rows(spine, raw, facts)
        manifests.append(write_dataset(rows, name, spine, censored, out, end, grace_days))
    return manifests


def late_payment_features(
    tables: dict[str, pd.DataFrame], *, backend_url: str = "duckdb://", grace_days: float = 0.0
) -> pd.DataFrame:
    """Features of every invoice at its issue time (no labels, nothing censored).

    Same columns and order as the pandas reference in ``benchmarks/pandas_reference.py``:
    ``invoice_id``, ``customer_id``, ``cutoff``, then every catalogue feature.
    """
    raw = register(connect(backend_url), tables)
    facts = build_facts(raw, grace_days)
    spine = late_payment_spine(facts.invoices, data_end(tables)).rows.cache()
    features = feature_rows(
        raw, facts, spine.select("row_id", "customer_id", "cutoff", "invoice_id")
    )
    joined = spine.join(features, "row_id").select(
        "invoice_id", "customer_id", "cutoff", *names(ALL_FEATURES)
    )
    return joined.order_by(["cutoff", "invoice_id"]).to_pyarrow().to_pandas()


def features_at(
    tables: dict[str, pd.DataFrame],
    spine: pd.DataFrame,
    *,
    backend_url: str = "duckdb://",
    grace_days: float = 0.0,
) -> pd.DataFrame:
    """Catalogue features of each ``spine`` row at its ``cutoff``, in the spine's order.

    ``spine`` has ``customer_id``, ``invoice_id`` (null: the latest invoice issued before the
    cutoff) and ``cutoff`` (UTC). Used for decision contexts: the features of an invoice at the
    moment a reminder was decided, computed by the same code as the training datasets.
    """
    missing = [c for c in ("customer_id", "invoice_id", "cutoff") if c not in spine.columns]
    if missing:
        raise DataError(f"spine lacks column(s) {', '.join(missing)}")
    con = connect(backend_url)
    raw = register(con, tables)
    facts = build_facts(raw, grace_days)
    frame = pd.DataFrame(
        {
            "row_id": pd.RangeIndex(len(spine)).to_numpy(),
            "customer_id": spine["customer_id"].astype(str).to_numpy(),
            "invoice_id": spine["invoice_id"].to_numpy(dtype=object),
            "cutoff": pd.to_datetime(spine["cutoff"], utc=True).to_numpy(),
        }
    )
    rows = feature_rows(raw, facts, ibis.memtable(frame).cast({"cutoff": "timestamp('UTC')"}))
    out = rows.order_by("row_id").to_pyarrow().to_pandas()
    return out.drop(columns="row_id").set_index(spine.index)
