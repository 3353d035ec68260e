"""The ground-truth response model: how a customer reacts to a bill and to a reminder.

Pure functions on arrays, used both by the simulator (to sample what happens) and by
:mod:`simulation.truth` (to return exact probabilities), so the two can never disagree.
Actions are coded as integer indices into ``CHANNELS``, ``TONES`` and ``OFFERS``; channel ``-1``
means no contact.
"""

from __future__ import annotations

import numpy as np

from paynudge.vocabulary import CHANNELS, TONES
from simulation.parameters import (
    ChurnParameters,
    EngagementParameters,
    PaymentParameters,
)

FIRM = TONES.index("firm")
FRIENDLY = TONES.index("friendly")
CALL = CHANNELS.index("call")
LETTER = CHANNELS.index("letter")


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def base_log_rates(
    capacity: np.ndarray, forgetfulness: np.ndarray, payment: PaymentParameters
) -> np.ndarray:
    """Unreminded daily log-hazard of paying, per segment around the due date (n, segments)."""
    offset = payment.capacity_slope * capacity + payment.forgetfulness_slope * forgetfulness
    return np.asarray(payment.segment_log_rates)[None, :] + offset[:, None]


def reminder_lift(
    channel: np.ndarray,
    tone: np.ndarray,
    offer: np.ndarray,
    capacity: np.ndarray,
    forgetfulness: np.ndarray,
    firm_response: np.ndarray,
    offer_sensitivity: np.ndarray,
    payment: PaymentParameters,
) -> tuple[np.ndarray, np.ndarray]:
    """Extra daily hazard of paying while an *opened* reminder works (for ``lift_days``).

    Returns ``(reminder_part, offer_part)``. The reminder part is large for forgetful customers
    who can pay, grows with the channel's urgency, and with a firm tone for customers whose
    ``firm_response`` is positive (shrinks for the others). The offer part helps customers short
    of money, scaled by their ``offer_sensitivity``.
    """
    contact = channel >= 0
    safe_channel = np.where(contact, channel, 0)
    urgency = np.array([payment.channel_urgency[c] for c in CHANNELS])[safe_channel]
    tone_term = np.where(tone == FIRM, payment.tone_firm_slope * firm_response, 0.0) + np.where(
        tone == FRIENDLY, payment.tone_friendly_lift, 0.0
    )
    able = sigmoid(capacity + payment.lift_capacity_offset)
    reminder = able * np.exp(
        payment.lift_log_rate
        + payment.lift_forgetfulness_slope * (forgetfulness - payment.lift_forgetfulness_centre)
        + urgency
        + tone_term
    )
    offer_rates = np.array(
        [
            0.0,
            np.exp(payment.offer_log_rate["extension"]),
            np.exp(payment.offer_log_rate["instalment_plan"]),
        ]
    )
    offer_part = offer_sensitivity * (1.0 - able) * offer_rates[np.where(contact, offer, 0)]
    return np.where(contact, reminder, 0.0), np.where(contact, offer_part, 0.0)


def delivery_probability(channel: np.ndarray, engagement: EngagementParameters) -> np.ndarray:
    """Chance the message reaches the customer (0 for no contact)."""
    shares = np.array([engagement.delivery_share[c] for c in CHANNELS])
    return np.where(channel >= 0, shares[np.maximum(channel, 0)], 0.0)


def open_probability(
    channel: np.ndarray,
    local_send_hour: np.ndarray,
    preferred_hour: np.ndarray,
    hour_spread: np.ndarray,
    channel_affinity: np.ndarray,
    attempts: np.ndarray,
    engagement: EngagementParameters,
) -> np.ndarray:
    """Chance a *delivered* message is opened (read, answered): channel, hour fit and fatigue."""
    safe_channel = np.maximum(channel, 0)
    base = np.array([engagement.open_log_odds[c] for c in CHANNELS])[safe_channel]
    affinity = np.take_along_axis(channel_affinity, safe_channel[:, None], axis=1)[:, 0]
    distance = np.abs(local_send_hour - preferred_hour)
    distance = np.minimum(distance, 24.0 - distance)
    hour_fit = np.where(
        channel == LETTER, 0.0, engagement.hour_penalty * (distance / hour_spread) ** 2
    )
    logit = base + affinity - hour_fit - engagement.fatigue_per_attempt * attempts
    return np.where(channel >= 0, sigmoid(logit), 0.0)


def open_delay_days(channel: np.ndarray, engagement: EngagementParameters) -> np.ndarray:
    """Fixed part of the time from sending to opening: letters travel, the rest arrive at once."""
    return np.where(channel == LETTER, engagement.letter_delivery_days, 0.0)


def opt_out_probability(
    channel: np.ndarray,
    tone: np.ndarray,
    firm_response: np.ndarray,
    attempts: np.ndarray,
    engagement: EngagementParameters,
) -> np.ndarray:
    """Chance a delivered message makes the customer opt out of its channel."""
    safe_channel = np.maximum(channel, 0)
    base = np.array([engagement.opt_out_log_odds[c] for c in CHANNELS])[safe_channel]
    annoyed = np.where(tone == FIRM, np.maximum(0.0, -firm_response), 0.0)
    logit = (
        base
        + engagement.opt_out_per_attempt * attempts
        + engagement.opt_out_firm_annoyance * annoyed
    )
    return np.where(channel >= 0, sigmoid(logit), 0.0)


def churn_annoyance(
    channel: np.ndarray,
    tone: np.ndarray,
    firm_response: np.ndarray,
    attempts: np.ndarray,
    churn: ChurnParameters,
) -> np.ndarray:
    """Churn hazard a delivered message adds: firm tones annoy some, calls intrude, fatigue."""
    annoyed = np.where(tone == FIRM, np.maximum(0.0, -firm_response), 0.0)
    log_scale = (
        churn.annoyance_firm_slope * annoyed
        + np.where(channel == CALL, churn.annoyance_call, 0.0)
        + churn.annoyance_per_attempt * attempts
    )
    return np.where(channel >= 0, churn.annoyance_per_message * np.exp(log_scale), 0.0)


def autopay_failure_probability(capacity: np.ndarray, payment: PaymentParameters) -> np.ndarray:
    """Chance a direct debit bounces (more likely when money is short)."""
    return sigmoid(
        payment.autopay_failure_log_odds + payment.autopay_failure_capacity_slope * capacity
    )


def dispute_probability(
    bill_ratio: np.ndarray, sensitivity: np.ndarray, engagement: EngagementParameters
) -> np.ndarray:
    """Chance the customer disputes a bill; bill shock raises it."""
    shock = sensitivity * np.maximum(0.0, np.log(bill_ratio))
    return sigmoid(engagement.dispute_log_odds + engagement.dispute_bill_shock_slope * shock)


def churn_bill_shock_multiplier(
    bill_ratio: np.ndarray, sensitivity: np.ndarray, churn: ChurnParameters
) -> np.ndarray:
    """Factor on the monthly churn hazard after a bill far above the usual."""
    return np.exp(churn.bill_shock_slope * sensitivity * np.maximum(0.0, np.log(bill_ratio)))
