"""Payment-history features: how this customer paid the invoices before the cutoff."""

from __future__ import annotations

import ibis
from ibis import _

from features.facts import days_between


def partly_paid_before(pairs: ibis.Table, payments: ibis.Table) -> ibis.Table:
    """Amount paid before the cutoff on invoices paid in part but not settled by then.

    Only these pairs need the payments themselves: an invoice settled before the cutoff has no
    balance and one without a payment before it owes its whole amount.
    """
    partial = pairs.filter(
        (_.first_paid_at < _.cutoff) & (_.settled_at.isnull() | (_.settled_at >= _.cutoff))
    ).select("row_id", "invoice_id", "cutoff")
    p = payments.select("invoice_id", "paid_at", "amount")
    joined = partial.join(p, [partial.invoice_id == p.invoice_id, p.paid_at < partial.cutoff])
    return joined.group_by([joined.row_id, joined.invoice_id]).aggregate(
        paid_before=joined.amount.sum()
    )


def history_features(spine: ibis.Table, facts: ibis.Table, payments: ibis.Table) -> ibis.Table:
    """One row per spine row that has earlier invoices (others get defaults when joined)."""
    s = spine.select("row_id", "customer_id", "cutoff")
    pairs = s.join(facts, [s.customer_id == facts.customer_id, facts.issued_at < s.cutoff])
    pairs = pairs.select(
        "row_id", "cutoff", "invoice_id", "amount", "due_end", "settled_at", "late",
        "known_at", "late_after", "first_paid_at", "partial_first",
    )  # fmt: skip
    paid = partly_paid_before(pairs.view(), payments)
    pairs = pairs.left_join(paid, ["row_id", "invoice_id"]).select(pairs, paid.paid_before)
    t = _.cutoff
    settled_by_t = ibis.least(_.settled_at.fill_null(t), t)
    pairs = pairs.mutate(
        known=_.known_at < t,
        past_due=_.due_end < t,
        days_late=ibis.greatest(days_between(settled_by_t, _.due_end), 0.0),
        paid_first=_.first_paid_at < t,
        balance=ibis.ifelse(
            _.settled_at < t, 0.0, ibis.greatest(_.amount - _.paid_before.fill_null(0.0), 0.0)
        ),
    )
    on_time_known = _.known & ~_.late
    late_known = _.known & _.late
    summary = pairs.group_by("row_id").aggregate(
        invoices_so_far=_.count(),
        known_invoices=_.known.sum(),
        on_time_count=on_time_known.sum(),
        mean_days_late=_.days_late.mean(where=_.past_due),
        max_days_late=_.days_late.max(where=_.past_due),
        last_days_late=_.days_late.argmax(_.due_end, where=_.past_due),
        partial_count=(_.paid_first & _.partial_first).sum(),
        paid_count=_.paid_first.sum(),
        last_late_at=_.late_after.max(where=late_known),
        last_on_time_due=_.due_end.max(where=on_time_known),
        open_balance=_.balance.sum(),
        cutoff=_.cutoff.max(),
    )
    streaks = _late_streaks(pairs, summary)
    return summary.left_join(streaks, "row_id").select(
        "row_id",
        "invoices_so_far",
        "known_invoices",
        on_time_rate=ibis.ifelse(
            _.known_invoices > 0, _.on_time_count / _.known_invoices.cast("float64"), ibis.null()
        ),
        mean_days_late=_.mean_days_late,
        max_days_late=_.max_days_late,
        last_days_late=_.last_days_late,
        late_streak=_.late_streak.fill_null(0),
        partial_payment_share=ibis.ifelse(
            _.paid_count > 0, _.partial_count / _.paid_count.cast("float64"), ibis.null()
        ),
        days_since_last_late=days_between(_.cutoff, _.last_late_at),
        open_balance=_.open_balance,
    )


def _late_streaks(pairs: ibis.Table, summary: ibis.Table) -> ibis.Table:
    """Known late invoices due after the last known on-time one, per spine row."""
    bounds = summary.select("row_id", "last_on_time_due")
    late = pairs.filter(_.known & _.late).join(bounds, "row_id")
    after = late.last_on_time_due.isnull() | (late.due_end > late.last_on_time_due)
    return late.group_by("row_id").aggregate(late_streak=after.sum())
