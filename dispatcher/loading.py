"""Loading customers, invoices, payments and responses into the dispatcher's state.

The tables come from a data set folder checked against the data contracts
(:func:`paynudge.validation.load_dataset`: a bad file is refused naming its table, column and
row) or straight from the simulated world. Loading is idempotent: customers and invoices are
updated in place, payments and suppressions already known are kept, and an invoice's workflow
position is never reset. Each invoice's settlement instant (when its payments reach the amount),
its disputes and the customers' opt-outs are derived here, vectorised, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.database import upsert
from dispatcher.stages import Workflow, stage_starts
from dispatcher.state import (
    CONSENT_COLUMNS,
    OPT_OUT_COLUMNS,
    Base,
    Invoice,
    Payment,
)
from paynudge.errors import DataError
from paynudge.validation import load_dataset

CENT = 0.005
"""Half a cent: payments within it of the amount settle the invoice (rounding of partials)."""
CUSTOMER_COLUMNS = ("customer_id", "timezone", "language", "name", "email", "phone")


@dataclass(frozen=True)
class LoadReport:
    customers: int
    invoices: int
    payments: int
    settled: int
    suppressions: int


def load_folder(sessions: sessionmaker[Session], directory: Path, workflow: Workflow) -> LoadReport:
    """Load a data set folder (``paynudge dispatch load DIR``)."""
    return load_tables(sessions, load_dataset(directory), workflow)


def load_tables(
    sessions: sessionmaker[Session], tables: dict[str, pd.DataFrame], workflow: Workflow
) -> LoadReport:
    """Load contract-typed tables (customers, invoices, payments; responses when present)."""
    missing = [name for name in ("customers", "invoices", "payments") if name not in tables]
    if missing:
        raise DataError(f"dispatch load: missing table(s) {missing}")
    customers, invoices, payments = tables["customers"], tables["invoices"], tables["payments"]
    unknown = ~invoices["customer_id"].isin(customers["customer_id"])
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise DataError(
            f"invoices.customer_id: {invoices['customer_id'].iloc[row]!r} (row {row}) is not in "
            "customers"
        )
    with sessions.begin() as session:
        tables_ = Base.metadata.tables
        upsert(session, tables_["customers"], _records(customers[list(_customer_columns())]),
               update=[c for c in _customer_columns() if c != "customer_id"])  # fmt: skip
        upsert(session, tables_["invoices"], _invoice_records(invoices, customers, workflow),
               update=["customer_id", "issue_date", "due_date", "amount"])  # fmt: skip
        upsert(session, Base.metadata.tables["payments"], _records(payments[_payment_columns()]))
        suppressions = _opt_outs(tables.get("responses"))
        upsert(session, Base.metadata.tables["suppressions"], suppressions)
        _mark_disputes(session, tables.get("responses"))
        settled = refresh_settlements(session, invoices["invoice_id"].astype(str).tolist())
    return LoadReport(len(customers), len(invoices), len(payments), settled, len(suppressions))


def refresh_settlements(session: Session, invoice_ids: list[str]) -> int:
    """Recompute when each invoice was settled from all its payments; the number settled."""
    amounts = pd.DataFrame(
        session.execute(select(Invoice.invoice_id, Invoice.amount)).all(),
        columns=["invoice_id", "amount"],
    )
    amounts = amounts[amounts["invoice_id"].isin(invoice_ids)]
    paid = pd.DataFrame(
        session.execute(select(Payment.invoice_id, Payment.paid_at, Payment.amount)).all(),
        columns=["invoice_id", "paid_at", "paid"],
    )
    paid = paid[paid["invoice_id"].isin(invoice_ids)].astype({"paid": float})
    paid = paid.sort_values(["invoice_id", "paid_at"])
    paid["cumulative"] = paid.groupby("invoice_id")["paid"].cumsum()
    paid = paid.merge(amounts, on="invoice_id")
    settled = (
        paid[paid["cumulative"] >= paid["amount"] - CENT].groupby("invoice_id")["paid_at"].min()
    )
    settled_at = pd.Series(pd.NaT, index=amounts["invoice_id"], dtype=object)
    settled_at.loc[settled.index] = list(settled)
    rows = [
        {"key": invoice_id, "paid_at": None if pd.isna(at) else at}
        for invoice_id, at in settled_at.items()
    ]
    _update_invoices(session, rows, ("paid_at",))
    return len(settled)


def _update_invoices(
    session: Session, rows: list[dict[str, object]], columns: tuple[str, ...]
) -> None:
    """Set ``columns`` of the invoices keyed by each row's ``key``."""
    if rows:
        table = Base.metadata.tables["invoices"]
        statement = (
            update(table)
            .where(table.c.invoice_id == bindparam("key"))
            .values({column: bindparam(column) for column in columns})
        )
        session.execute(statement, rows)


def _customer_columns() -> tuple[str, ...]:
    return (*CUSTOMER_COLUMNS, *CONSENT_COLUMNS, *OPT_OUT_COLUMNS)


def _payment_columns() -> list[str]:
    return ["payment_id", "invoice_id", "customer_id", "paid_at", "amount", "method"]


def _invoice_records(
    invoices: pd.DataFrame, customers: pd.DataFrame, workflow: Workflow
) -> list[dict[str, object]]:
    """Invoice rows; a new invoice's next stage is the workflow's first (planning skips ahead)."""
    zones = invoices["customer_id"].map(customers.set_index("customer_id")["timezone"])
    starts = stage_starts(invoices["due_date"].tolist(), zones.to_numpy(dtype=object), workflow)
    frame = invoices[["invoice_id", "customer_id", "issue_date", "due_date", "amount"]].copy()
    frame["issue_date"] = pd.to_datetime(frame["issue_date"]).dt.date
    frame["due_date"] = pd.to_datetime(frame["due_date"]).dt.date
    frame["next_stage"] = workflow.stages[0].name
    frame["next_stage_at"] = pd.DatetimeIndex(starts[:, 0], tz="UTC")
    return _records(frame)


def _opt_outs(responses: pd.DataFrame | None) -> list[dict[str, object]]:
    """One suppression per (customer, channel): the first opt-out response."""
    if responses is None or responses.empty:
        return []
    opt_outs = responses[(responses["type"] == "opt_out") & responses["channel"].notna()]
    first = opt_outs.sort_values("occurred_at").drop_duplicates(["customer_id", "channel"])
    frame = first[["customer_id", "channel", "occurred_at"]].rename(
        columns={"occurred_at": "since"}
    )
    frame["source"] = "response"
    return _records(frame)


def _mark_disputes(session: Session, responses: pd.DataFrame | None) -> None:
    """Each invoice's latest dispute and the resolution after it (if any)."""
    if responses is None or responses.empty:
        return
    events = responses[responses["type"].isin(["dispute", "dispute_resolved"])]
    events = events[events["invoice_id"].notna()]
    opened = events[events["type"] == "dispute"].groupby("invoice_id")["occurred_at"].max()
    resolved = events[events["type"] == "dispute_resolved"].groupby("invoice_id")["occurred_at"]
    latest_resolved = resolved.max().reindex(opened.index)
    after = latest_resolved.where(latest_resolved > opened)
    rows = [
        {
            "key": str(invoice),
            "dispute_opened_at": _instant(at),
            "dispute_resolved_at": _instant(done),
        }
        for invoice, at, done in zip(opened.index, opened.to_list(), after.to_list(), strict=True)
    ]
    _update_invoices(session, rows, ("dispute_opened_at", "dispute_resolved_at"))


def _instant(value: object) -> object:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).to_pydatetime()


def _records(frame: pd.DataFrame) -> list[dict[str, object]]:
    """Rows as plain Python values (aware datetimes, dates, str, float, bool, None)."""
    columns = {}
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.DatetimeTZDtype):
            values = [None if pd.isna(v) else v.to_pydatetime() for v in column]
        elif pd.api.types.is_bool_dtype(column.dtype):
            values = column.astype(bool).tolist()
        elif pd.api.types.is_float_dtype(column.dtype):
            values = column.astype(float).tolist()
        else:
            values = [None if v is None or v is pd.NA or v != v else v for v in column.tolist()]
        columns[name] = values
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
