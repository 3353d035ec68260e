"""Account features: tenure, plan, payment set-up, language and reachable channels at the cutoff."""

from __future__ import annotations

import ibis
from ibis import _

from features.facts import days_between
from paynudge.vocabulary import CHANNELS


def opt_outs_before(spine: ibis.Table, responses: ibis.Table) -> ibis.Table:
    """Per spine row: which channels the customer had opted out of before the cutoff."""
    outs = responses.filter(_.type == "opt_out")
    joined = spine.join(
        outs, [spine.customer_id == outs.customer_id, outs.occurred_at < spine.cutoff]
    )
    return joined.group_by(joined.row_id).aggregate(
        **{f"opted_out_{c}": (joined.channel == c).any() for c in CHANNELS}
    )


def account_features(spine: ibis.Table, customers: ibis.Table, responses: ibis.Table) -> ibis.Table:
    """One row per spine row (every row has a customer)."""
    s = spine.select("row_id", "customer_id", "cutoff")
    profile = customers.select(
        "customer_id", "signup_date", "plan", "monthly_fee", "autopay", "language",
        *(f"consent_{c}" for c in CHANNELS),
    )  # fmt: skip
    rows = s.join(profile, "customer_id")
    outs = opt_outs_before(s, responses)
    rows = rows.left_join(outs, "row_id").select(rows, *(outs[f"opted_out_{c}"] for c in CHANNELS))
    opted = {f"opted_out_{c}": rows[f"opted_out_{c}"].fill_null(False) for c in CHANNELS}
    contactable = sum(
        (rows[f"consent_{c}"] & ~opted[f"opted_out_{c}"]).cast("int64") for c in CHANNELS
    )
    return rows.select(
        "row_id",
        tenure_days=days_between(_.cutoff, _.signup_date.cast("timestamp('UTC')")),
        plan=_.plan,
        monthly_fee=_.monthly_fee,
        autopay=_.autopay,
        language=_.language,
        **{f"consent_{c}": rows[f"consent_{c}"] for c in CHANNELS},
        **opted,
        contactable_channels=contactable,
    )
