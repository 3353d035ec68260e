"""Response features: promises made and broken, disputes, hardship, before the cutoff."""

from __future__ import annotations

import ibis
from ibis import _

HARDSHIP_DAYS = 90


def response_features(spine: ibis.Table, responses: ibis.Table, promises: ibis.Table) -> ibis.Table:
    """Counts of promises, broken promises and disputes; open disputes; recent hardship."""
    s = spine.select("row_id", "customer_id", "cutoff")
    r = responses.select("customer_id", "invoice_id", "type", "occurred_at")
    j = s.join(r, [s.customer_id == r.customer_id, r.occurred_at < s.cutoff])
    recent = j.occurred_at >= j.cutoff - ibis.interval(days=HARDSHIP_DAYS)
    counts = j.group_by("row_id").aggregate(
        promises_made=(j.type == "promise_to_pay").sum(),
        disputes_total=(j.type == "dispute").sum(),
        hardship_90d=((j.type == "hardship") & recent).any(),
    )
    per_invoice = (
        j.filter(j.type.isin(["dispute", "dispute_resolved"]))
        .group_by(["row_id", "invoice_id"])
        .aggregate(
            opened=(_.type == "dispute").sum(), resolved=(_.type == "dispute_resolved").sum()
        )
    )
    open_disputes = per_invoice.group_by("row_id").aggregate(
        disputes_open=(_.opened > _.resolved).sum()
    )
    p = promises.filter(_.evaluable)
    b = s.join(
        p,
        [s.customer_id == p.customer_id, p.promise_end < s.cutoff, p.occurred_at < s.cutoff],
    )
    broken = b.group_by("row_id").aggregate(promises_broken=(~b.kept).sum())
    return (
        counts.left_join(open_disputes, "row_id")
        .select(counts, open_disputes.disputes_open)
        .left_join(broken, "row_id")
        .select(
            "row_id",
            "promises_made",
            "disputes_total",
            "hardship_90d",
            disputes_open=_.disputes_open.fill_null(0),
            promises_broken=_.promises_broken.fill_null(0),
        )
    )
