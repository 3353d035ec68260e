"""Per-invoice and per-event facts that every feature family builds on.

These are computed once per data set, before any cutoff is applied; each fact carries the time
at which it became true, so families can keep only what was known strictly before a cutoff.
See :mod:`features.catalog` for the definitions (``issued_at``, ``due_end``, ``settled_at``,
*late*, ``known_at``).
"""

from __future__ import annotations

import ibis
from ibis import _

from features.backend import RawTables, local_to_utc, utc_to_local

CENT_TOLERANCE = 0.005
SECONDS_PER_DAY = 86_400.0


def days_between(later: ibis.Value, earlier: ibis.Value) -> ibis.Value:
    """``later - earlier`` in (fractional) days."""
    return (later.epoch_seconds() - earlier.epoch_seconds()) / SECONDS_PER_DAY


def zones(raw: RawTables) -> ibis.Table:
    return raw.customers.select("customer_id", "timezone", "monthly_fee")


def settlements(raw: RawTables) -> ibis.Table:
    """Per paid invoice: when it was settled, and its first payment's time and amount."""
    window = ibis.cumulative_window(group_by="invoice_id", order_by=["paid_at", "payment_id"])
    running = raw.payments.join(
        raw.invoices.select("invoice_id", invoice_amount="amount"), "invoice_id"
    ).mutate(
        paid_so_far=_.amount.sum().over(window),
        rank=ibis.row_number().over(window),
    )
    return running.group_by("invoice_id").aggregate(
        settled_at=_.paid_at.min(where=_.paid_so_far >= _.invoice_amount - CENT_TOLERANCE),
        first_paid_at=_.paid_at.min(),
        first_amount=_.amount.max(where=_.rank == 0),
    )


def invoice_facts(raw: RawTables, grace_days: float) -> ibis.Table:
    """Invoices with local-time instants, settlement, lateness and when it became known."""
    grace = ibis.interval(seconds=round(grace_days * SECONDS_PER_DAY))
    base = raw.invoices.join(zones(raw), "customer_id").mutate(
        issued_at=local_to_utc(_.timezone, _.issue_date.cast("timestamp")),
        due_end=local_to_utc(_.timezone, _.due_date.cast("timestamp") + ibis.interval(days=1)),
    )
    paid = settlements(raw)
    facts = base.left_join(paid, "invoice_id").select(
        base, paid.settled_at, paid.first_paid_at, paid.first_amount
    )
    facts = facts.mutate(
        settled_at=ibis.ifelse(_.amount <= CENT_TOLERANCE, _.issued_at, _.settled_at),
        late_after=_.due_end + grace,
    )
    on_time = _.settled_at.notnull() & (_.settled_at <= _.late_after)
    return facts.mutate(
        late=~on_time,
        known_at=ibis.ifelse(on_time, _.settled_at, _.late_after),
        partial_first=_.first_amount < _.amount - CENT_TOLERANCE,
    )


def message_facts(raw: RawTables) -> ibis.Table:
    """Sent messages with the local hour (fractional) at which they were opened."""
    sent = raw.messages.filter(_.channel.notnull()).join(zones(raw), "customer_id")
    local = utc_to_local(sent.timezone, sent.opened_at)
    hour = local.hour() + local.minute() / 60.0 + local.second() / 3600.0
    return sent.mutate(open_hour=hour)


def promise_facts(raw: RawTables, facts: ibis.Table) -> ibis.Table:
    """Promises to pay with the end of the promised day (local) and whether it was kept."""
    promises = raw.responses.filter(_.type == "promise_to_pay").join(zones(raw), "customer_id")
    promises = promises.mutate(
        promise_end=local_to_utc(
            _.timezone, _.promised_date.cast("timestamp") + ibis.interval(days=1)
        )
    )
    settled = facts.select("invoice_id", invoice_settled_at="settled_at")
    joined = promises.left_join(settled, "invoice_id")
    kept = joined.invoice_settled_at.notnull() & (joined.invoice_settled_at <= joined.promise_end)
    return joined.select(
        "customer_id",
        "occurred_at",
        "promise_end",
        kept=kept & joined.invoice_id.notnull(),
        evaluable=joined.invoice_id.notnull(),
    )
