"""Spines and labels of the three training datasets.

- ``late_payment``: one row per invoice at its ``issued_at``; ``late`` = not settled by
  ``due_end + grace``; ``days_late`` = days from ``due_end`` to settlement (or to the data end).
- ``churn``: one row per active customer per month end; ``churned_90d`` = churn within 90 days.
- ``send_time``: one row per sent e-mail, SMS, push or call; ``opened_24h`` = opened within 24 h.

Rows whose label is not yet known at the data end (``as_of``) are *censored*: left out of the
dataset and counted in its manifest, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import pandas as pd
from ibis import _

from features.backend import RawTables, utc_to_local
from features.facts import days_between

CHURN_HORIZON_DAYS = 90
OPEN_WINDOW_HOURS = 24
OBSERVED_OPEN_CHANNELS = ("email", "sms", "push", "call")


@dataclass(frozen=True)
class LabelledSpine:
    """Spine rows with their labels and extra columns, plus which rows are censored."""

    rows: ibis.Table
    labels: tuple[str, ...]
    keys: tuple[str, ...]


def late_payment_spine(invoices: ibis.Table, as_of: pd.Timestamp) -> LabelledSpine:
    end = ibis.literal(as_of)
    f = invoices
    rows = f.select(
        row_id=ibis.row_number(),
        customer_id=f.customer_id,
        cutoff=f.issued_at,
        invoice_id=f.invoice_id,
        issue_date=f.issue_date,
        due_date=f.due_date,
        late=f.late,
        days_late=ibis.greatest(days_between(f.settled_at.fill_null(end), f.due_end), 0.0),
        # Known only once the late line has passed: keeping early payers of invoices not yet due
        # would bias the last month towards "on time".
        censored=f.late_after > end,
    )
    return LabelledSpine(rows, ("late", "days_late"), ("invoice_id", "issue_date", "due_date"))


def month_ends(first: pd.Timestamp, as_of: pd.Timestamp) -> list[pd.Timestamp]:
    """The first instant (UTC) of each month after ``first`` up to ``as_of``."""
    start = (first + pd.offsets.MonthBegin(1)).normalize()
    return list(pd.date_range(start, as_of, freq="MS", tz="UTC"))


def churn_spine(raw: RawTables, cutoffs: list[pd.Timestamp], as_of: pd.Timestamp) -> LabelledSpine:
    grid = ibis.memtable(pd.DataFrame({"cutoff": pd.DatetimeIndex(cutoffs, tz="UTC")}))
    customers = raw.customers.select("customer_id", "signup_date")
    churn = raw.churn.select("customer_id", "churned_at")
    pairs = customers.cross_join(grid).left_join(churn, "customer_id")
    pairs = pairs.filter(
        pairs.signup_date.cast("timestamp('UTC')") < pairs.cutoff,
        pairs.churned_at.isnull() | (pairs.churned_at >= pairs.cutoff),
    )
    horizon = pairs.cutoff + ibis.interval(days=CHURN_HORIZON_DAYS)
    rows = pairs.select(
        row_id=ibis.row_number(),
        customer_id=pairs.customer_id,
        cutoff=pairs.cutoff,
        invoice_id=ibis.null("string"),
        churned_90d=pairs.churned_at.notnull() & (pairs.churned_at < horizon),
        censored=horizon > ibis.literal(as_of),
    )
    return LabelledSpine(rows, ("churned_90d",), ())


def send_time_spine(messages: ibis.Table, as_of: pd.Timestamp) -> LabelledSpine:
    m = messages.filter(_.channel.isin(OBSERVED_OPEN_CHANNELS) & _.sent_at.notnull())
    local = utc_to_local(m.timezone, m.sent_at)
    window = ibis.interval(hours=OPEN_WINDOW_HOURS)
    rows = m.select(
        row_id=ibis.row_number(),
        customer_id=m.customer_id,
        cutoff=m.sent_at,
        invoice_id=m.invoice_id,
        message_id=m.message_id,
        send_hour=local.hour().cast("int64"),
        send_weekday=local.day_of_week.index().cast("int64"),
        channel=m.channel,
        tone=m.tone,
        offer=m.offer,
        stage=m.stage,
        opened_24h=m.opened_at.notnull() & (m.opened_at <= m.sent_at + window),
        censored=m.sent_at + window > ibis.literal(as_of),
    )
    keys = (
        "message_id",
        "invoice_id",
        "send_hour",
        "send_weekday",
        "channel",
        "tone",
        "offer",
        "stage",
    )
    return LabelledSpine(rows, ("opened_24h",), keys)
