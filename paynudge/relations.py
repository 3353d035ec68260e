"""Checks that span tables: every id points at a row that exists, and linked rows agree.

All checks run on coerced tables with hash joins (``isin``, ``map``), so they stay linear in the
number of rows. A check is skipped when a table or column it needs is absent; that absence is
already a problem of its own (or, for optional tables, a note).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from paynudge.problems import Problem, counted, describe_values
from paynudge.schemas import known_time_zones

Tables = Mapping[str, pd.DataFrame]


@dataclass(frozen=True)
class Reference:
    """``table.column`` must name a row of ``parent`` (by the same column) when it is set."""

    table: str
    column: str
    parent: str
    found: tuple[str, str]


REFERENCES: tuple[Reference, ...] = (
    Reference("invoices", "customer_id", "customers", ("invoice of", "invoices of")),
    Reference("payments", "invoice_id", "invoices", ("payment for", "payments for")),
    Reference("messages", "invoice_id", "invoices", ("message about", "messages about")),
    Reference("responses", "customer_id", "customers", ("response from", "responses from")),
    Reference("responses", "invoice_id", "invoices", ("response about", "responses about")),
    Reference("responses", "message_id", "messages", ("response to", "responses to")),
    Reference("churn", "customer_id", "customers", ("churn of", "churns of")),
)
"""The foreign keys of the raw tables; ``found`` reads "3 payments for unknown invoice ..."."""

INVOICE_CHILDREN: tuple[str, ...] = ("payments", "messages")
"""Tables whose ``customer_id`` must be the customer of the row's invoice."""


def relation_problems(tables: Tables) -> list[Problem]:
    """Every cross-table problem of the coerced ``tables`` (absent tables are skipped)."""
    problems = [problem for reference in REFERENCES for problem in _unknown(tables, reference)]
    for table in INVOICE_CHILDREN:
        problems += _other_customer(tables, table)
    problems += _paid_before_issue(tables)
    return problems


def _has(tables: Tables, table: str, *columns: str) -> bool:
    return table in tables and set(columns) <= set(tables[table].columns)


def _unknown(tables: Tables, reference: Reference) -> list[Problem]:
    table, column, parent = reference.table, reference.column, reference.parent
    if not (_has(tables, table, column) and _has(tables, parent, column)):
        return []
    ids = tables[table][column]
    unknown = ids.notna() & ~ids.isin(tables[parent][column].dropna())
    if not unknown.any():
        return []
    entity = parent.removesuffix("s")
    singular, plural = reference.found
    found = counted(
        int(unknown.sum()), f"{singular} unknown {entity}", f"{plural} unknown {entity}s"
    )
    return [
        Problem.at_positions(
            table,
            column,
            expected=f"a value of {parent}.{column}",
            found=f"{found}: {describe_values(ids[unknown])}",
            positions=np.flatnonzero(unknown.to_numpy()),
        )
    ]


def _invoice_lookup(invoices: pd.DataFrame, column: str) -> pd.Series:
    """``column`` of each invoice, indexed by invoice_id (first row of a duplicated id)."""
    known = invoices.dropna(subset=["invoice_id"]).drop_duplicates("invoice_id")
    return known.set_index("invoice_id")[column]


def _other_customer(tables: Tables, table: str) -> list[Problem]:
    if not (
        _has(tables, table, "invoice_id", "customer_id")
        and _has(tables, "invoices", "invoice_id", "customer_id")
    ):
        return []
    rows = tables[table]
    invoice_customer = rows["invoice_id"].map(_invoice_lookup(tables["invoices"], "customer_id"))
    other = invoice_customer.notna() & rows["customer_id"].notna()
    other &= rows["customer_id"] != invoice_customer
    if not other.any():
        return []
    singular = f"{table.removesuffix('s')} for another customer's invoice"
    plural = f"{table} for other customers' invoices"
    return [
        Problem.at_positions(
            table,
            "customer_id",
            expected="the customer_id of the row's invoice",
            found=counted(int(other.sum()), singular, plural),
            positions=np.flatnonzero(other.to_numpy()),
        )
    ]


def _paid_before_issue(tables: Tables) -> list[Problem]:
    """Payments dated before their invoice, on the calendar of the customer's time zone.

    Invoice dates are calendar dates where the customer lives: a payment at 00:30 in Singapore
    on the issue day is 16:30 UTC the day before, so comparing in UTC would flag it.
    """
    if not (
        _has(tables, "payments", "invoice_id", "customer_id", "paid_at")
        and _has(tables, "invoices", "invoice_id", "issue_date")
    ):
        return []
    payments = tables["payments"]
    issued = payments["invoice_id"].map(_invoice_lookup(tables["invoices"], "issue_date"))
    paid_on = _local_dates(payments["paid_at"], _customer_zones(tables, payments["customer_id"]))
    early = paid_on < issued
    if not early.any():
        return []
    singular = "payment made before its invoice was issued"
    plural = "payments made before their invoices were issued"
    return [
        Problem.at_positions(
            "payments",
            "paid_at",
            expected="paid_at on or after the invoice's issue_date (in the customer's time zone)",
            found=counted(int(early.sum()), singular, plural),
            positions=np.flatnonzero(early.to_numpy()),
        )
    ]


def _customer_zones(tables: Tables, customer_ids: pd.Series) -> pd.Series:
    """The time zone of each customer id; None where the customer or its zone is unknown."""
    if not _has(tables, "customers", "customer_id", "timezone"):
        return pd.Series(None, index=customer_ids.index, dtype=object)
    customers = tables["customers"].dropna(subset=["customer_id"])
    zones = customers.drop_duplicates("customer_id").set_index("customer_id")["timezone"]
    return customer_ids.map(zones.where(zones.isin(known_time_zones())))


def _local_dates(instants: pd.Series, zones: pd.Series) -> pd.Series:
    """The calendar date of each instant in its zone (UTC where the zone is None).

    Loops over the distinct zones, not the rows: a few hundred conversions of whole groups.
    """
    utc = instants.dt.tz_convert("UTC")
    dates = utc.dt.tz_localize(None).dt.normalize().to_numpy(copy=True)
    zoned = zones.notna().to_numpy()
    groups = pd.Series(np.flatnonzero(zoned)).groupby(zones.to_numpy()[zoned])
    for zone, rows in groups:
        local = utc.iloc[rows.to_numpy()].dt.tz_convert(str(zone)).dt.tz_localize(None)
        dates[rows.to_numpy()] = local.dt.normalize().to_numpy()
    return pd.Series(dates, index=instants.index)
