"""The Ibis backend the feature pipelines run on, and the raw tables registered in it.

DuckDB in memory by default (``feature_backend = "duckdb://"``); any Ibis connection URL works
for backends that implement the few functions used here (``timezone`` for local time).
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.datatypes as dt
import pandas as pd
import pyarrow as pa
from ibis.backends import BaseBackend

from paynudge.errors import ConfigError

OPTIONAL_TABLES = ("messages", "responses", "churn")
UNUSED_COLUMNS = {
    "customers": ("name", "email", "phone"),
    "payments": ("method",),
    "messages": ("logging_policy", "propensity"),
}
"""Columns no feature reads; personal details never enter the feature backend."""


@ibis.udf.scalar.builtin(name="timezone")
def local_to_utc(zone: str, local: dt.Timestamp()) -> dt.Timestamp(timezone="UTC"):  # type: ignore[empty-body, valid-type]
    """Read a wall-clock time in ``zone`` and return the UTC instant."""


@ibis.udf.scalar.builtin(name="timezone")
def utc_to_local(zone: str, instant: dt.Timestamp(timezone="UTC")) -> dt.Timestamp():  # type: ignore[empty-body, valid-type]
    """The wall-clock time in ``zone`` of a UTC instant."""


def connect(url: str) -> BaseBackend:
    """Open the backend named by ``url``; DuckDB sessions run in UTC."""
    try:
        con = ibis.connect(url)
    except Exception as error:  # ibis raises many kinds; all mean the same to a user
        raise ConfigError(f"feature_backend: cannot connect to {url!r}: {error}") from None
    if con.name == "duckdb":
        con.raw_sql("SET TimeZone = 'UTC'")
        # Every result we keep is explicitly ordered, so DuckDB may reorder freely meanwhile.
        con.raw_sql("SET preserve_insertion_order = false")
    return con


@dataclass(frozen=True)
class RawTables:
    """The raw tables as Ibis tables on one backend (optional ones may be empty)."""

    customers: ibis.Table
    invoices: ibis.Table
    payments: ibis.Table
    messages: ibis.Table
    responses: ibis.Table
    churn: ibis.Table


def register(con: BaseBackend, tables: dict[str, pd.DataFrame]) -> RawTables:
    """Load validated tables (see ``paynudge.validation.load_dataset``) into ``con``."""
    empty = _empty_optional_tables()
    registered = {}
    for name in ("customers", "invoices", "payments", *OPTIONAL_TABLES):
        frame = tables.get(name)
        if frame is None:
            frame = empty[name]
        frame = frame.drop(columns=list(UNUSED_COLUMNS.get(name, ())), errors="ignore")
        arrow = _typed(pa.Table.from_pandas(frame, preserve_index=False))
        registered[name] = con.create_table(f"raw_{name}", arrow, overwrite=True)
    return RawTables(**registered)


def _typed(table: pa.Table) -> pa.Table:
    """All-empty text columns arrive untyped (Arrow ``null``); give them the string type."""
    for index, field in enumerate(table.schema):
        if pa.types.is_null(field.type):
            table = table.set_column(index, field.name, table.column(index).cast(pa.string()))
    return table


def _empty_optional_tables() -> dict[str, pd.DataFrame]:
    utc = "datetime64[ns, UTC]"
    text = "object"
    return {
        "messages": pd.DataFrame(
            {
                "message_id": pd.Series(dtype=text),
                "invoice_id": pd.Series(dtype=text),
                "customer_id": pd.Series(dtype=text),
                "stage": pd.Series(dtype=text),
                "channel": pd.Series(dtype=text),
                "tone": pd.Series(dtype=text),
                "offer": pd.Series(dtype=text),
                "decided_at": pd.Series(dtype=utc),
                "sent_at": pd.Series(dtype=utc),
                "delivered_at": pd.Series(dtype=utc),
                "opened_at": pd.Series(dtype=utc),
                "clicked_at": pd.Series(dtype=utc),
                "propensity": pd.Series(dtype="float64"),
                "logging_policy": pd.Series(dtype=text),
            }
        ),
        "responses": pd.DataFrame(
            {
                "response_id": pd.Series(dtype=text),
                "customer_id": pd.Series(dtype=text),
                "invoice_id": pd.Series(dtype=text),
                "message_id": pd.Series(dtype=text),
                "type": pd.Series(dtype=text),
                "occurred_at": pd.Series(dtype=utc),
                "channel": pd.Series(dtype=text),
                "promised_date": pd.Series(dtype="datetime64[ns]"),
            }
        ),
        "churn": pd.DataFrame(
            {
                "customer_id": pd.Series(dtype=text),
                "churned_at": pd.Series(dtype=utc),
                "reason": pd.Series(dtype=text),
            }
        ),
    }
