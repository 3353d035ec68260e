"""Bill-amount features of an invoice: its size against the customer's own trailing bills.

They depend only on the invoice and invoices issued before it, so they are computed per invoice
and joined to rows through the row's current invoice.
"""

from __future__ import annotations

import ibis
from ibis import _

TRAILING_DAYS = 183


def bill_features(facts: ibis.Table) -> ibis.Table:
    """Per invoice: amount, amount to fee, trailing mean, ratio and z-score (bill shock)."""
    current = facts.select("invoice_id", "customer_id", "issued_at", "amount", "monthly_fee")
    other = facts.select(
        other_id="invoice_id", other_customer="customer_id", other_at="issued_at",
        other_amount="amount",
    )  # fmt: skip
    window_start = current.issued_at - ibis.interval(days=TRAILING_DAYS)
    pairs = current.join(
        other,
        [
            current.customer_id == other.other_customer,
            other.other_at < current.issued_at,
            other.other_at >= window_start,
            other.other_id != current.invoice_id,
        ],
    )
    trailing = pairs.group_by("invoice_id").aggregate(
        trailing_mean_amount=_.other_amount.mean(),
        trailing_std=_.other_amount.std(how="sample"),
        trailing_count=_.other_amount.count(),
    )
    joined = current.left_join(trailing, "invoice_id").select(
        current, trailing.trailing_mean_amount, trailing.trailing_std, trailing.trailing_count
    )
    usable_std = (joined.trailing_count >= 2) & (joined.trailing_std > 0)
    return joined.select(
        "invoice_id",
        "amount",
        amount_to_fee=ibis.ifelse(_.monthly_fee > 0, _.amount / _.monthly_fee, ibis.null()),
        trailing_mean_amount=_.trailing_mean_amount,
        amount_ratio=ibis.ifelse(
            _.trailing_mean_amount > 0, _.amount / _.trailing_mean_amount, ibis.null()
        ),
        amount_zscore=ibis.ifelse(
            usable_std, (_.amount - _.trailing_mean_amount) / _.trailing_std, ibis.null()
        ),
    )
