"""Assemble every feature family for a *spine*: the rows to describe, each with a cutoff.

A spine is an Ibis table with ``row_id`` (unique int), ``customer_id``, ``cutoff`` (UTC) and
``invoice_id`` (the current invoice, or null to use the latest invoice issued before the
cutoff). The result has one row per spine row: ``row_id`` then the catalogue's features, with
counts 0 and flags False where a family found no events.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
from ibis import _

from features.account import account_features
from features.backend import RawTables
from features.bills import bill_features
from features.catalog import ALL_FEATURES, Feature
from features.engagement import channel_features, open_hour_features
from features.facts import invoice_facts, message_facts, promise_facts
from features.history import history_features
from features.responses import response_features


@dataclass(frozen=True)
class Facts:
    """The per-data-set facts every spine reuses."""

    invoices: ibis.Table
    messages: ibis.Table
    promises: ibis.Table
    bills: ibis.Table


def build_facts(raw: RawTables, grace_days: float) -> Facts:
    """The facts; those read by several families are kept as backend tables (``cache``)."""
    invoices = invoice_facts(raw, grace_days).cache()
    return Facts(
        invoices=invoices,
        messages=message_facts(raw).cache(),
        promises=promise_facts(raw, invoices),
        bills=bill_features(invoices),
    )


def current_invoices(spine: ibis.Table, facts: Facts) -> ibis.Table:
    """Fill a null ``invoice_id`` with the latest invoice issued before the cutoff."""
    f = facts.invoices.select("customer_id", "invoice_id", "issued_at")
    open_rows = spine.filter(_.invoice_id.isnull())
    j = open_rows.join(f, [open_rows.customer_id == f.customer_id, f.issued_at < open_rows.cutoff])
    latest = j.group_by(j.row_id).aggregate(latest=j.invoice_id_right.argmax(j.issued_at))
    filled = spine.left_join(latest, "row_id")
    return filled.select(
        "row_id", "customer_id", "cutoff", invoice_id=filled.invoice_id.fill_null(filled.latest)
    )


def _default(feature: Feature, column: ibis.Value) -> ibis.Value:
    if feature.kind == "int":
        return column.fill_null(0).cast("int64")
    if feature.kind == "bool":
        return column.fill_null(False)
    if feature.kind == "float":
        column = column.cast("float64")
        return column if feature.default is None else column.fill_null(feature.default)
    return column


def feature_rows(raw: RawTables, facts: Facts, spine: ibis.Table) -> ibis.Table:
    """Every feature of :data:`features.catalog.ALL_FEATURES` for each spine row."""
    spine = current_invoices(spine, facts).cache()
    # Each family is materialised on its own: DuckDB plans five small aggregations far better
    # than one query holding all of them (measured: 11.6 s against 5 s on 1M invoices).
    families = [
        family.cache()
        for family in (
            history_features(spine, facts.invoices, raw.payments),
            account_features(spine, raw.customers, raw.responses),
            channel_features(spine, facts.messages),
            open_hour_features(spine, facts.messages),
            response_features(spine, raw.responses, facts.promises),
        )
    ]
    rows = spine.view()
    for family in families:
        rows = rows.left_join(family, "row_id").select(
            rows, *(c for c in family.columns if c != "row_id")
        )
    bills = facts.bills.view()
    rows = rows.left_join(bills, "invoice_id").select(
        rows, *(c for c in bills.columns if c != "invoice_id")
    )
    return rows.select("row_id", **{f.name: _default(f, rows[f.name]) for f in ALL_FEATURES})
