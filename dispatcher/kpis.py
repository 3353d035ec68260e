"""Collection KPIs from plain tables (see :mod:`dispatcher.kpi_tables` for the input contract).

Definitions, all as of one instant ``as_of`` (default: the latest event in the data); events
after it have not happened yet:

- an invoice is **settled** at the first payment that brings its payments to its amount (one cent
  of rounding allowed); it is **due** at the end of its due date, in the customer's time zone
  when ``customers`` gives one (UTC otherwise), plus ``grace_days``;
- **on-time payment rate**: of the invoices due by ``as_of``, the share settled by their due
  moment;
- **days sales outstanding**: open receivables at ``as_of`` over the amounts invoiced in the
  trailing ``dso_period_days``, times those days;
- **overdue buckets**: open invoices by days past due, up to each edge of
  ``overdue_bucket_days`` (30, 60, 90) and beyond the last; count and open amount;
- **per channel**: messages sent; delivery rate (delivered / sent), open and click rates
  (opened, clicked / delivered; letters and calls report no opens) and pay rate (invoice settled
  within ``pay_window_days`` after the message, of those not settled before it);
- **automation rate**: of the settled invoices, the share settled without a case task;
- **contact cost per collected unit**: cost of the messages sent over the amounts paid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from dispatcher.kpi_tables import OPTIONAL_COST_COLUMN, check_tables
from paynudge.config import KpiSettings
from paynudge.errors import DataError

SETTLE_TOLERANCE = 0.005
"""Payments within half a cent of the amount settle an invoice (rounding of partial payments)."""
DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class KpiSummary:
    """The headline figures (one row of the comparison table)."""

    as_of: pd.Timestamp
    invoices: int
    invoices_due: int
    on_time_rate: float
    days_sales_outstanding: float
    open_receivables: float
    overdue_amount: float
    automation_rate: float
    contact_cost: float
    collected: float
    contact_cost_per_collected: float


@dataclass(frozen=True)
class KpiReport:
    """The headline figures and the tables behind the plots."""

    summary: KpiSummary
    overdue: pd.DataFrame
    """One row per bucket: ``bucket``, ``invoices``, ``open_amount``, ``share_of_open_amount``."""
    channels: pd.DataFrame
    """One row per channel: ``sent``, ``delivered``, ``opened``, ``clicked``, ``paid`` and rates."""
    on_time_by_month: pd.DataFrame
    """One row per due month: ``due_month``, ``invoices_due``, ``on_time_rate``."""


def compute_kpis(
    tables: Mapping[str, pd.DataFrame],
    channel_costs: Mapping[str, float],
    settings: KpiSettings | None = None,
    *,
    as_of: pd.Timestamp | None = None,
    grace_days: float = 0.0,
) -> KpiReport:
    """The collection KPIs of ``tables`` (invoices, payments; messages, case_tasks, customers)."""
    settings = settings if settings is not None else KpiSettings()
    checked = check_tables(tables)
    end = _as_of(checked) if as_of is None else _utc(as_of)
    invoices = _invoice_states(checked, end, grace_days)
    messages = _sent_messages(checked, end, channel_costs)
    payments = checked["payments"]
    collected = float(payments.loc[payments["paid_at"] <= end, "amount"].sum())
    due = invoices[invoices["due_at"] <= end]
    open_now = invoices[invoices["open_amount"] > SETTLE_TOLERANCE]
    overdue_amount = float(open_now.loc[open_now["due_at"] <= end, "open_amount"].sum())
    period_start = end - pd.Timedelta(days=settings.dso_period_days)
    issued = invoices["issue_date"].dt.tz_localize("UTC")
    sales = float(invoices.loc[(issued > period_start) & (issued <= end), "amount"].sum())
    receivables = float(open_now["open_amount"].sum())
    settled = invoices[invoices["settled_at"].notna()]
    cost = float(messages["cost"].sum())
    summary = KpiSummary(
        as_of=end,
        invoices=len(invoices),
        invoices_due=len(due),
        on_time_rate=_ratio(int(due["on_time"].sum()), len(due)),
        days_sales_outstanding=_ratio(receivables, sales) * settings.dso_period_days,
        open_receivables=receivables,
        overdue_amount=overdue_amount,
        automation_rate=_ratio(int((~settled["case_task"]).sum()), len(settled)),
        contact_cost=cost,
        collected=collected,
        contact_cost_per_collected=_ratio(cost, collected),
    )
    return KpiReport(
        summary=summary,
        overdue=_overdue_buckets(open_now, end, settings.overdue_bucket_days),
        channels=_channel_rates(messages, invoices, settings.pay_window_days),
        on_time_by_month=_on_time_by_month(due),
    )


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / denominator if denominator else float("nan")


def _utc(moment: pd.Timestamp) -> pd.Timestamp:
    moment = pd.Timestamp(moment)
    if moment.tzinfo is None:
        raise DataError(f"as_of: expected a timestamp with a time zone, found {moment}")
    return moment.tz_convert("UTC")


def _as_of(tables: Mapping[str, pd.DataFrame]) -> pd.Timestamp:
    """The latest event in the data (a payment, a message state, a case task)."""
    moments = [tables["payments"]["paid_at"].max()]
    if "messages" in tables:
        moments += [tables["messages"][c].max() for c in ("sent_at", "delivered_at",
                                                           "opened_at", "clicked_at")]  # fmt: skip
    if "case_tasks" in tables:
        moments.append(tables["case_tasks"]["opened_at"].max())
    known = [m for m in moments if not pd.isna(m)]
    if not known:
        raise DataError("KPI input: no dated event (payment or message) to take as the data end")
    return max(known)


def _due_moments(invoices: pd.DataFrame, customers: pd.DataFrame | None) -> pd.Series:
    """End of each due date in the customer's zone (UTC when unknown), as a UTC instant."""
    end_of_day = invoices["due_date"] + DAY
    zones = pd.Series("UTC", index=invoices.index, dtype=object)
    if customers is not None:
        by_customer = customers.drop_duplicates("customer_id").set_index("customer_id")["timezone"]
        zones = invoices["customer_id"].map(by_customer).fillna("UTC")
    due = pd.Series(pd.NaT, index=invoices.index, dtype="datetime64[ns, UTC]")
    for zone, rows in zones.groupby(zones).groups.items():  # a handful of zones, not rows
        try:
            local = end_of_day[rows].dt.tz_localize(
                zone, ambiguous="NaT", nonexistent="shift_forward"
            )
        except Exception as error:  # zoneinfo and pytz raise different types
            raise DataError(
                f"customers.timezone: expected an IANA time zone, found {zone!r}"
            ) from error
        due[rows] = local.dt.tz_convert("UTC")
    return due


def _invoice_states(
    tables: Mapping[str, pd.DataFrame], end: pd.Timestamp, grace: float
) -> pd.DataFrame:
    """Per invoice: due moment, settled moment (or NaT), open amount at ``end``, case task flag."""
    invoices = tables["invoices"].copy()
    if invoices["invoice_id"].duplicated().any():
        row = int(invoices["invoice_id"].duplicated().to_numpy().nonzero()[0][0])
        raise DataError(f"invoices.invoice_id: expected unique ids, found a repeat in row {row}")
    invoices["due_at"] = _due_moments(invoices, tables.get("customers")) + pd.Timedelta(days=grace)
    payments = tables["payments"]
    payments = payments[payments["paid_at"] <= end].sort_values("paid_at", kind="stable")
    amount = payments["invoice_id"].map(invoices.set_index("invoice_id")["amount"])
    if amount.isna().any():
        row = amount.index[amount.isna()][0]  # the input row (check_tables numbers rows from 0)
        unknown = payments.loc[row, "invoice_id"]
        raise DataError(
            f"payments.invoice_id: expected a known invoice, found {unknown!r} in row {row}"
        )
    running = payments.groupby("invoice_id")["amount"].cumsum()
    settling = payments[running >= amount - SETTLE_TOLERANCE]
    settled_at = settling.groupby("invoice_id")["paid_at"].min()
    paid = payments.groupby("invoice_id")["amount"].sum()
    invoices["settled_at"] = invoices["invoice_id"].map(settled_at)
    invoices["open_amount"] = (
        invoices["amount"] - invoices["invoice_id"].map(paid).fillna(0.0)
    ).clip(lower=0.0)
    invoices["on_time"] = invoices["settled_at"].notna() & (
        invoices["settled_at"] <= invoices["due_at"]
    )
    tasks = tables.get("case_tasks")
    with_task = tasks.loc[tasks["opened_at"] <= end, "invoice_id"] if tasks is not None else []
    invoices["case_task"] = invoices["invoice_id"].isin(set(with_task))
    return invoices


def _sent_messages(
    tables: Mapping[str, pd.DataFrame], end: pd.Timestamp, costs: Mapping[str, float]
) -> pd.DataFrame:
    """Messages sent on a channel by ``end``, with their cost; later states count as not yet."""
    if "messages" not in tables:
        stamp = "datetime64[ns, UTC]"
        return pd.DataFrame(
            {
                "invoice_id": pd.Series(dtype=object),
                "channel": pd.Series(dtype=object),
                **{c: pd.Series(dtype=stamp) for c in ("sent_at", "delivered_at", "opened_at",
                                                        "clicked_at")},
                OPTIONAL_COST_COLUMN: pd.Series(dtype=float),
            }
        )  # fmt: skip
    messages = tables["messages"]
    sent = messages[messages["channel"].notna() & (messages["sent_at"] <= end)].copy()
    for column in ("delivered_at", "opened_at", "clicked_at"):
        sent[column] = sent[column].where(sent[column] <= end)
    if OPTIONAL_COST_COLUMN not in sent.columns:
        unknown = sorted(set(sent["channel"]) - set(costs))
        if unknown:
            raise DataError(
                f"messages.channel: no contact cost for {unknown}; expected one of {sorted(costs)}"
            )
        sent[OPTIONAL_COST_COLUMN] = sent["channel"].map(costs).astype(float)
    return sent


def _overdue_buckets(
    open_now: pd.DataFrame, end: pd.Timestamp, edges: tuple[int, ...]
) -> pd.DataFrame:
    days_past_due = (end - open_now["due_at"]) / DAY
    bins = [-np.inf, 0.0, *map(float, edges), np.inf]
    labels = [
        "not yet due",
        *(f"{a + 1}-{b} days" for a, b in zip((0, *edges), edges, strict=False)),
        f"over {edges[-1]} days",
    ]
    bucket = pd.cut(days_past_due, bins=bins, labels=labels, right=True)
    grouped = open_now.groupby(bucket, observed=False)["open_amount"]
    table = pd.DataFrame({"invoices": grouped.size(), "open_amount": grouped.sum()}).reindex(
        labels, fill_value=0
    )
    total = table["open_amount"].sum()
    table["share_of_open_amount"] = table["open_amount"] / total if total else 0.0
    return table.rename_axis("bucket").reset_index()


def _channel_rates(
    messages: pd.DataFrame, invoices: pd.DataFrame, window_days: float
) -> pd.DataFrame:
    settled_at = messages["invoice_id"].map(invoices.set_index("invoice_id")["settled_at"])
    open_when_sent = settled_at.isna() | (settled_at > messages["sent_at"])
    paid = (
        settled_at.notna()
        & open_when_sent
        & (settled_at <= messages["sent_at"] + pd.Timedelta(days=window_days))
    )
    frame = pd.DataFrame(
        {
            "channel": messages["channel"],
            "sent": 1,
            "delivered": messages["delivered_at"].notna(),
            "opened": messages["opened_at"].notna(),
            "clicked": messages["clicked_at"].notna(),
            "open_when_sent": open_when_sent,
            "paid": paid,
        }
    )
    counts = frame.groupby("channel").sum().astype(int)
    counts["delivery_rate"] = counts["delivered"] / counts["sent"]
    counts["open_rate"] = (counts["opened"] / counts["delivered"]).where(counts["delivered"] > 0)
    counts["click_rate"] = (counts["clicked"] / counts["delivered"]).where(counts["delivered"] > 0)
    counts["pay_rate"] = (counts["paid"] / counts["open_when_sent"]).where(
        counts["open_when_sent"] > 0
    )
    untracked = counts.index.isin(UNTRACKED_OPENS)
    counts.loc[untracked, ["open_rate", "click_rate"]] = np.nan
    return counts.reset_index()


UNTRACKED_OPENS: tuple[str, ...] = ("letter", "call")
"""Channels whose opens and clicks nobody can observe: their open and click rates are empty."""


def _on_time_by_month(due: pd.DataFrame) -> pd.DataFrame:
    month = due["due_date"].dt.to_period("M").astype(str)
    grouped = due.groupby(month)["on_time"]
    return (
        pd.DataFrame({"invoices_due": grouped.size(), "on_time_rate": grouped.mean()})
        .rename_axis("due_month")
        .reset_index()
    )


def compare_kpis(reports: Mapping[str, KpiReport]) -> pd.DataFrame:
    """Headline figures side by side, one column per run (e.g. ladder vs learned policy)."""
    if not reports:
        raise DataError("compare_kpis: expected at least one report")
    return pd.DataFrame({name: asdict(report.summary) for name, report in reports.items()})
