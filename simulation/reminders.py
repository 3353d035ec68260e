"""What happens once the logging policy has chosen: sending, delivery, opening and replies.

For every decision this logs a ``messages`` row (no-contact decisions included), then samples
delivery, the open (read, answered) and its time, the reminder's effect on the payment hazard,
opt-outs, churn annoyance, hardship declarations and promises to pay. A promise is a noisy signal
of the customer's own payment clock: it is kept when, with no further reminders, the clock would
ring within ``promise_horizon_days``; otherwise it is broken.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from simulation import behaviour
from simulation.hazard import first_crossing
from simulation.logging_policy import LoggedChoice

if TYPE_CHECKING:
    from simulation.dunning import Engine

MINUTE = 1.0 / 1440.0


def send_reminders(
    engine: Engine,
    rows: np.ndarray,
    at: np.ndarray,
    local_hour: np.ndarray,
    stage: int,
    day: int,
    choice: LoggedChoice,
) -> None:
    """Carry out one stage's decisions for invoices ``rows``, decided and sent at ``at``.

    ``local_hour`` is the customer's local hour at ``at`` (it drives the chance of opening).
    """
    rng, p, inv, cust = engine.rng, engine.p, engine.inv, engine.cust
    n = rows.size
    customer = engine.bills.customer[rows]
    channel, tone, offer = choice.channel, choice.tone, choice.offer
    contact = channel >= 0
    sent_at = at
    attempts = inv.attempts[rows].copy()
    delivered = contact & (rng.random(n) < behaviour.delivery_probability(channel, p.engagement))
    delivery_delay = np.where(
        channel == behaviour.LETTER,
        p.engagement.letter_delivery_days,
        rng.uniform(0, 5, n) * MINUTE,
    )
    people = engine.people
    p_open = behaviour.open_probability(
        channel,
        local_hour,
        people.preferred_hour[customer],
        people.hour_spread[customer],
        people.channel_affinity[customer],
        attempts,
        p.engagement,
    )
    opened = delivered & (rng.random(n) < p_open)
    open_at = (
        sent_at
        + behaviour.open_delay_days(channel, p.engagement)
        + rng.exponential(p.engagement.open_delay_mean_hours / 24.0, n)
    )
    numbers = engine.log.add_decisions(
        {
            "invoice": rows,
            "customer": customer,
            "stage": np.full(n, stage),
            "channel": channel,
            "tone": tone,
            "offer": offer,
            "propensity": choice.propensity,
            "decided_at": at,
            "sent_at": np.where(contact, sent_at, np.inf),
            "delivered_at": np.where(delivered, sent_at + delivery_delay, np.inf),
            "opened_at": np.where(opened, open_at, np.inf),
        }
    )
    inv.attempts[rows] += contact
    cust.last_contact_day[customer[contact]] = day
    _apply_lift(engine, rows[opened], open_at[opened], channel[opened], tone[opened], offer[opened])
    _opt_outs(
        engine, rows, customer, numbers, delivered, channel, tone, attempts, sent_at, delivery_delay
    )
    cust.annoyance[customer] += np.where(
        delivered,
        behaviour.churn_annoyance(channel, tone, people.firm_response[customer], attempts, p.churn),
        0.0,
    )
    _replies(engine, rows[opened], customer[opened], numbers[opened], open_at[opened], at[opened])


def _apply_lift(
    engine: Engine,
    rows: np.ndarray,
    open_at: np.ndarray,
    channel: np.ndarray,
    tone: np.ndarray,
    offer: np.ndarray,
) -> None:
    """An opened reminder adds hazard for ``lift_days``; the newest effect takes slot 1."""
    inv, people = engine.inv, engine.people
    customer = engine.bills.customer[rows]
    reminder, offer_part = behaviour.reminder_lift(
        channel,
        tone,
        offer,
        engine.bills.capacity[rows],
        people.forgetfulness[customer],
        people.firm_response[customer],
        people.offer_sensitivity[customer],
        engine.p.payment,
    )
    for array in (
        inv.lift_reminder,
        inv.lift_offer,
        inv.lift_offer_code,
        inv.lift_start,
        inv.lift_end,
    ):
        array[rows, 0] = array[rows, 1]
    inv.lift_reminder[rows, 1] = reminder
    inv.lift_offer[rows, 1] = offer_part
    inv.lift_offer_code[rows, 1] = offer
    inv.lift_start[rows, 1] = open_at
    inv.lift_end[rows, 1] = open_at + engine.p.payment.lift_days


def _opt_outs(
    engine: Engine,
    rows: np.ndarray,
    customer: np.ndarray,
    numbers: np.ndarray,
    delivered: np.ndarray,
    channel: np.ndarray,
    tone: np.ndarray,
    attempts: np.ndarray,
    sent_at: np.ndarray,
    delivery_delay: np.ndarray,
) -> None:
    rng, cust = engine.rng, engine.cust
    chance = behaviour.opt_out_probability(
        channel, tone, engine.people.firm_response[customer], attempts, engine.p.engagement
    )
    quits = delivered & (rng.random(rows.size) < chance)
    at = sent_at + delivery_delay + rng.uniform(0.0, 1.0 / 24.0, rows.size)
    c, ch = customer[quits], channel[quits]
    cust.opted_out_at[c, ch] = np.minimum(cust.opted_out_at[c, ch], at[quits])
    engine.log.add_responses("opt_out", c, rows[quits], numbers[quits], at[quits], channel=ch)


def _replies(
    engine: Engine,
    rows: np.ndarray,
    customer: np.ndarray,
    numbers: np.ndarray,
    open_at: np.ndarray,
    decided_at: np.ndarray,
) -> None:
    """Hardship declarations and promises to pay from customers who opened a reminder."""
    rng, e, cust = engine.rng, engine.p.engagement, engine.cust
    shocked = engine.bills.income_shock[rows]
    hardship = shocked & (rng.random(rows.size) < e.hardship_share_when_shocked)
    hardship_at = open_at + rng.uniform(0.05, 2.0, rows.size)
    cust.hardship_until[customer[hardship]] = hardship_at[hardship] + e.hardship_memory_days
    engine.log.add_responses(
        "hardship", customer[hardship], rows[hardship], numbers[hardship], hardship_at[hardship]
    )
    able = behaviour.sigmoid(engine.bills.capacity[rows] + engine.p.payment.lift_capacity_offset)
    share = e.promise_base_share + e.promise_constrained_share * (1.0 - able)
    promising = ~hardship & (rng.random(rows.size) < share)
    rows, customer, numbers = rows[promising], customer[promising], numbers[promising]
    open_at, decided_at = open_at[promising], decided_at[promising]
    if rows.size == 0:
        return
    profile = engine._profile(rows)
    ring, _ = first_crossing(
        profile, decided_at, open_at + e.promise_horizon_days, engine.inv.clock[rows].copy()
    )
    replies = ring > open_at + 1.0
    rows, customer, numbers, open_at, ring = (
        rows[replies],
        customer[replies],
        numbers[replies],
        open_at[replies],
        ring[replies],
    )
    reply_at = open_at + rng.uniform(0.01, 0.5, rows.size)
    broken_date = open_at + rng.uniform(*e.broken_promise_days, rows.size)
    promised_at = np.where(np.isfinite(ring), ring, broken_date)
    offset = engine.when.stage_local_offset[rows, 0]
    promised_day = np.floor(promised_at + offset).astype(np.int64)
    engine.inv.promise_until[rows] = promised_day + 1.0 - offset
    engine.log.add_responses(
        "promise_to_pay", customer, rows, numbers, reply_at, promised_day=promised_day
    )
