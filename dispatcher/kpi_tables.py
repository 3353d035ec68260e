"""The input contract of the collection KPIs: which tables and columns, in which types.

KPIs are computed from plain tables, so they work on the dispatcher's export, on a biller's own
files and on the simulated world alike. ``invoices`` and ``payments`` are required; ``messages``
(contacts and their delivery, open and click times), ``case_tasks`` (invoices a case manager had
to handle) and ``customers`` (time zones, for local due dates) are optional. Extra columns are
ignored. A missing table or column, or a value of the wrong type, is a :class:`DataError` that
names the table, the column and the first bad row.

``case_tasks`` of the simulated world, which has no case managers, are derived from what would
have opened one in the dispatcher: a dispute, or an invoice reaching the last dunning stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from paynudge.errors import DataError

Kind = Literal["text", "number", "date", "timestamp"]
EXPECTED: Mapping[Kind, str] = {
    "text": "text",
    "number": "a number",
    "date": "a calendar date (2025-03-01)",
    "timestamp": "a timestamp with a time zone (2025-03-01T09:30:00Z)",
}


@dataclass(frozen=True)
class TableContract:
    """Columns (and their kinds) a KPI input table must have; nullable ones may be empty."""

    name: str
    columns: Mapping[str, Kind]
    nullable: frozenset[str] = frozenset()
    required: bool = True


CONTRACTS: tuple[TableContract, ...] = (
    TableContract(
        "invoices",
        {
            "invoice_id": "text",
            "customer_id": "text",
            "issue_date": "date",
            "due_date": "date",
            "amount": "number",
        },
    ),
    TableContract("payments", {"invoice_id": "text", "paid_at": "timestamp", "amount": "number"}),
    TableContract(
        "messages",
        {
            "message_id": "text",
            "invoice_id": "text",
            "channel": "text",
            "sent_at": "timestamp",
            "delivered_at": "timestamp",
            "opened_at": "timestamp",
            "clicked_at": "timestamp",
        },
        nullable=frozenset({"channel", "sent_at", "delivered_at", "opened_at", "clicked_at"}),
        required=False,
    ),
    TableContract("case_tasks", {"invoice_id": "text", "opened_at": "timestamp"}, required=False),
    TableContract("customers", {"customer_id": "text", "timezone": "text"}, required=False),
)
CONTRACT = {contract.name: contract for contract in CONTRACTS}
OPTIONAL_COST_COLUMN = "cost"
"""A ``messages.cost`` column, when present, is the contact cost; else the channel's setting."""


def _bad_row(table: str, column: str, values: pd.Series, bad: pd.Series, kind: Kind) -> DataError:
    row = int(bad.to_numpy().nonzero()[0][0])
    return DataError(
        f"{table}.{column}: expected {EXPECTED[kind]}, found {values.iloc[row]!r} in row {row} "
        f"({int(bad.sum())} bad value(s))"
    )


def _coerce(table: str, column: str, values: pd.Series, kind: Kind, nullable: bool) -> pd.Series:
    if kind == "text":
        coerced = values.astype(object).where(values.notna(), None)
    elif kind == "number":
        coerced = pd.to_numeric(values, errors="coerce")
    elif kind == "date":
        coerced = pd.to_datetime(values, errors="coerce").dt.tz_localize(None).dt.normalize()
    else:
        coerced = _timestamps(table, column, values)
    unreadable = coerced.isna() & values.notna()
    if unreadable.any():
        raise _bad_row(table, column, values, unreadable, kind)
    if not nullable and values.isna().any():
        row = int(values.isna().to_numpy().nonzero()[0][0])
        raise DataError(
            f"{table}.{column}: expected {EXPECTED[kind]}, found an empty cell in row {row}"
        )
    return coerced


def _timestamps(table: str, column: str, values: pd.Series) -> pd.Series:
    """UTC instants; naive ones are refused (a wrong guess of the zone shifts every KPI date)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(values):
        raise DataError(f"{table}.{column}: expected {EXPECTED['timestamp']}, found no time zone")
    zoned = values.astype("string").str.strip().str.contains(ZONED, regex=True).fillna(False)
    naive = values.notna() & ~zoned.astype(bool)
    if naive.any():
        raise _bad_row(table, column, values, naive, "timestamp")
    return pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")


ZONED = r"(?:Z|[+-]\d\d:?\d\d)$"


def check_tables(tables: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The KPI input tables in contract types (only the contract's columns, plus ``cost``)."""
    checked: dict[str, pd.DataFrame] = {}
    for contract in CONTRACTS:
        frame = tables.get(contract.name)
        if frame is None:
            if contract.required:
                raise DataError(f"KPI input: table {contract.name!r} is missing")
            continue
        missing = [column for column in contract.columns if column not in frame.columns]
        if missing:
            kinds = ", ".join(f"{c} ({EXPECTED[contract.columns[c]]})" for c in missing)
            raise DataError(f"KPI input: table {contract.name!r} is missing column(s) {kinds}")
        frame = frame.reset_index(drop=True)
        columns = {
            column: _coerce(contract.name, column, frame[column], kind,
                            column in contract.nullable)
            for column, kind in contract.columns.items()
        }  # fmt: skip
        if contract.name == "messages" and OPTIONAL_COST_COLUMN in frame.columns:
            columns[OPTIONAL_COST_COLUMN] = _coerce(
                "messages", OPTIONAL_COST_COLUMN, frame[OPTIONAL_COST_COLUMN], "number", False
            )
        checked[contract.name] = pd.DataFrame(columns)
    return checked


def read_kpi_tables(directory: Path) -> dict[str, pd.DataFrame]:
    """The KPI tables of a folder (``<table>.parquet`` or ``.csv``), case tasks derived if absent.

    A simulated world's folder has no ``case_tasks``; see :func:`derived_case_tasks`.
    """
    if not directory.is_dir():
        raise DataError(f"{directory}: expected a folder with invoices, payments, ... tables")
    tables: dict[str, pd.DataFrame] = {}
    for name in (*CONTRACT, "responses"):
        for suffix, reader in ((".parquet", pd.read_parquet), (".csv", _read_csv)):
            path = directory / f"{name}{suffix}"
            if path.exists():
                try:
                    tables[name] = reader(path)
                except (OSError, ValueError) as error:
                    raise DataError(f"{path}: cannot be read ({error})") from None
                break
    if "case_tasks" not in tables and "invoices" in tables:
        tables["case_tasks"] = derived_case_tasks(tables)
    return tables


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])


FINAL_STAGE = "overdue_30"
"""The simulated ladder's last stage: where the dispatcher opens a case task instead."""


def derived_case_tasks(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Case tasks a dispatcher would have opened in a simulated world: disputes and final stages."""
    parts = []
    responses = tables.get("responses")
    if responses is not None and {"type", "invoice_id", "occurred_at"} <= set(responses.columns):
        disputes = responses[(responses["type"] == "dispute") & responses["invoice_id"].notna()]
        parts.append(
            disputes[["invoice_id", "occurred_at"]].set_axis(["invoice_id", "opened_at"], axis=1)
        )
    messages = tables.get("messages")
    if messages is not None and {"stage", "decided_at"} <= set(messages.columns):
        final = messages[messages["stage"] == FINAL_STAGE]
        parts.append(
            final[["invoice_id", "decided_at"]].set_axis(["invoice_id", "opened_at"], axis=1)
        )
    if not parts:
        return pd.DataFrame({"invoice_id": pd.Series(dtype=object),
                             "opened_at": pd.Series(dtype="datetime64[ns, UTC]")})  # fmt: skip
    tasks = pd.concat(parts, ignore_index=True)
    tasks["opened_at"] = pd.to_datetime(tasks["opened_at"], utc=True)
    return tasks.sort_values("opened_at").drop_duplicates("invoice_id").reset_index(drop=True)
