"""Turn the engine's per-invoice outcomes into payment records and message clicks.

An invoice's payment clock rings once: that moment the invoice is *resolved*. Usually it is one
full payment; a direct debit for autopay customers; three instalments 30 days apart when an
accepted instalment-plan offer caused it; and for a share of customers short of money, a partial
payment some days earlier with the remainder at the ring. Payments after the horizon are not
recorded (the export is censored, as real exports are).
"""

from __future__ import annotations

import numpy as np

from paynudge.vocabulary import CHANNELS, OFFERS
from simulation import behaviour
from simulation.dunning import Engine

INSTALMENT = OFFERS.index("instalment_plan")
SECONDS = 1.0 / 86_400.0


def payment_columns(engine: Engine) -> dict[str, np.ndarray]:
    """Columns of the payments table (invoice row, amount in cents, time, method)."""
    inv, bills, rng = engine.inv, engine.bills, engine.rng
    pay = engine.p.payment
    rows = np.flatnonzero(inv.issued & np.isfinite(inv.paid_at))
    paid_at = inv.paid_at[rows]
    amount = bills.amount_cents[rows]
    customer = bills.customer[rows]
    debit = inv.paid_by_debit[rows]
    plan = inv.offer_paid[rows] == INSTALMENT
    able = behaviour.sigmoid(bills.capacity[rows] + pay.lift_capacity_offset)
    partial = ~plan & ~debit & (rng.random(rows.size) < pay.partial_payment_share * (1.0 - able))
    partial &= amount >= 2

    parts_row: list[np.ndarray] = []
    parts_at: list[np.ndarray] = []
    parts_cents: list[np.ndarray] = []
    whole = ~plan & ~partial
    parts_row.append(rows[whole])
    parts_at.append(paid_at[whole])
    parts_cents.append(amount[whole])

    lead = np.minimum(pay.partial_lead_days, paid_at - engine.when.issue_at[rows]) * rng.random(
        rows.size
    )
    first = np.round(amount * rng.uniform(*pay.partial_fraction_range, rows.size)).astype(np.int64)
    first = np.clip(first, 1, amount - 1)
    parts_row += [rows[partial], rows[partial]]
    parts_at += [paid_at[partial] - lead[partial] - SECONDS, paid_at[partial]]
    parts_cents += [first[partial], amount[partial] - first[partial]]

    count = pay.instalment_count
    share = amount[plan] // count
    for k in range(count):
        parts_row.append(rows[plan])
        parts_at.append(paid_at[plan] + k * pay.instalment_spacing_days)
        parts_cents.append(share if k < count - 1 else amount[plan] - share * (count - 1))

    row = np.concatenate(parts_row)
    at = np.concatenate(parts_at)
    cents = np.concatenate(parts_cents)
    keep = (at < engine.horizon_at) & (cents > 0)
    row, at, cents = row[keep], at[keep], cents[keep]
    order = np.lexsort((row, at))
    row, at, cents = row[order], at[order], cents[order]
    method = engine.people.manual_method[bills.customer[row]].astype(object)
    method[inv.paid_by_debit[row]] = "direct_debit"
    del customer
    return {"invoice": row, "at": at, "cents": cents, "method": method}


def click_times(engine: Engine, decisions: dict[str, np.ndarray]) -> np.ndarray:
    """When each opened link-carrying message was clicked (``inf`` if not).

    Customers who pay within ``click_paying_window_days`` of opening mostly click the payment
    link just before paying; others click rarely, soon after opening.
    """
    e, rng = engine.p.engagement, engine.rng
    n = len(decisions["invoice"])
    link = np.isin(decisions["channel"], [CHANNELS.index(c) for c in e.link_channels])
    opened_at = decisions["opened_at"]
    paid_at = engine.inv.paid_at[decisions["invoice"]]
    opened = link & np.isfinite(opened_at)
    paying = opened & (paid_at >= opened_at) & (paid_at <= opened_at + e.click_paying_window_days)
    draw = rng.random(n)
    click_paying = paying & (draw < e.click_if_paying_share)
    click_other = opened & ~paying & (draw < e.click_otherwise_share)
    soon = opened_at + rng.uniform(0.0, 0.02, n)
    clicked = np.where(click_paying, np.maximum(opened_at, paid_at - 2.0 / 1440.0), np.inf)
    clicked = np.where(click_other, soon, clicked)
    return np.where(clicked < engine.horizon_at, clicked, np.inf)
