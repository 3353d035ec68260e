"""Marginals of a billing data set, read from the raw tables alone, and their targets.

The simulated world is tuned to look like a European telecom/utility biller. The targets below
are the ranges we aim for (and test): public figures for e-mail open rates in billing and
collections sit around 20-40%, SMS is read far more often, direct-debit customers are rarely
late, telecom churn runs at 1-2.5% a month.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from rich.table import Table

TARGETS: dict[str, tuple[float, float]] = {
    "late_rate": (0.10, 0.25),
    "late_rate_autopay": (0.0, 0.05),
    "late_rate_manual": (0.12, 0.35),
    "open_rate_email": (0.15, 0.45),
    "open_rate_sms": (0.45, 0.85),
    "monthly_churn_rate": (0.01, 0.025),
    "partial_payment_rate": (0.01, 0.10),
    "dispute_rate": (0.003, 0.03),
}
"""Documented target range of each marginal; ``paynudge simulate`` prints where we land."""


def settled_at(invoices: pd.DataFrame, payments: pd.DataFrame) -> pd.Series:
    """When each invoice was fully paid (NaT if it never was), indexed like ``invoices``."""
    ordered = payments.sort_values("paid_at", kind="stable")
    paid_so_far = ordered.groupby("invoice_id")["amount"].cumsum()
    amount = ordered["invoice_id"].map(invoices.set_index("invoice_id")["amount"])
    done = ordered[paid_so_far >= amount - 0.005]
    first_done = done.groupby("invoice_id")["paid_at"].min()
    return invoices["invoice_id"].map(first_done)


def local_due_end(invoices: pd.DataFrame, customers: pd.DataFrame) -> pd.Series:
    """The end of each due date in the customer's time zone, as a UTC timestamp."""
    zone = invoices["customer_id"].map(customers.set_index("customer_id")["timezone"])
    end = pd.Series(pd.NaT, index=invoices.index, dtype="datetime64[ns, UTC]")
    for name, rows in invoices.groupby(zone).groups.items():
        local = pd.DatetimeIndex(invoices.loc[rows, "due_date"] + pd.Timedelta(days=1))
        end.loc[rows] = local.tz_localize(
            str(name), ambiguous=False, nonexistent="shift_forward"
        ).tz_convert("UTC")
    return end


def marginals(tables: dict[str, pd.DataFrame]) -> dict[str, float]:
    """Headline rates of a data set (see :data:`TARGETS`)."""
    customers, invoices, payments = tables["customers"], tables["invoices"], tables["payments"]
    settled = settled_at(invoices, payments)
    due_end = local_due_end(invoices, customers)
    export_end = payments["paid_at"].max()
    closed = due_end <= export_end
    late = (settled.isna() | (settled > due_end))[closed]
    autopay = invoices["customer_id"].map(customers.set_index("customer_id")["autopay"])[closed]
    result = {
        "customers": float(len(customers)),
        "invoices": float(len(invoices)),
        "late_rate": float(late.mean()),
        "late_rate_autopay": float(late[autopay.astype(bool)].mean()),
        "late_rate_manual": float(late[~autopay.astype(bool)].mean()),
        "partial_payment_rate": float(
            (payments.groupby("invoice_id").size() > 1).sum() / len(invoices)
        ),
    }
    messages = tables.get("messages")
    if messages is not None and len(messages):
        delivered = messages[messages["delivered_at"].notna()]
        for channel, group in delivered.groupby("channel"):
            if channel != "letter":
                result[f"open_rate_{channel}"] = float(group["opened_at"].notna().mean())
        result["contact_share"] = float(messages["channel"].notna().mean())
    churn = tables.get("churn")
    if churn is not None:
        months = max(
            len(
                pd.period_range(
                    invoices["issue_date"].min(), invoices["issue_date"].max(), freq="M"
                )
            ),
            1,
        )
        result["monthly_churn_rate"] = float(len(churn) / len(customers) / months)
    responses = tables.get("responses")
    if responses is not None:
        counts = responses["type"].value_counts()
        result["dispute_rate"] = float(counts.get("dispute", 0) / len(invoices))
        result["opt_outs"] = float(counts.get("opt_out", 0))
        result["promises"] = float(counts.get("promise_to_pay", 0))
    return result


def summarise(tables: dict[str, pd.DataFrame]) -> Table:
    """A rich table of the marginals next to their targets."""
    table = Table(title="simulated world: marginals")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    for name, value in marginals(tables).items():
        low_high = TARGETS.get(name)
        if low_high is None:
            table.add_row(name, f"{value:,.0f}" if value >= 100 else f"{value:.3f}", "")
            continue
        ok = low_high[0] <= value <= low_high[1]
        mark = "[green]✓[/]" if ok else "[red]✗[/]"
        table.add_row(name, f"{value:.3f}", f"{low_high[0]:.3f}-{low_high[1]:.3f} {mark}")
    return table


def within_targets(values: dict[str, float]) -> dict[str, bool]:
    """Which targeted marginals fall inside their range."""
    return {
        name: low <= values[name] <= high for name, (low, high) in TARGETS.items() if name in values
    }


__all__ = ["TARGETS", "marginals", "np", "summarise", "within_targets"]
