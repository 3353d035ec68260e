"""The feature catalogue: every feature's name, type, family and meaning, in one place.

This is the specification the pipelines implement (Ibis in :mod:`features.families`, the pandas
reference in ``benchmarks/pandas_reference.py``), the schema of the Feast feature views, and the
feature list that models train on. Definitions used throughout:

- *cutoff* ``t``: the decision time of a row; only events strictly before ``t`` count.
- an invoice's ``issued_at`` is its issue date at 00:00 and ``due_end`` the end of its due date
  (next day 00:00), both in the customer's time zone, as UTC instants.
- ``settled_at``: when the payments of an invoice (ordered by ``paid_at``, then ``payment_id``)
  first add up to its amount (within half a cent); null if never. An invoice of amount 0 is
  settled at ``issued_at``.
- an invoice is *late* when it is not settled by ``due_end + grace`` (grace from settings,
  default 0 days). Its lateness is *known* at ``known_at = settled_at`` if it was settled in time,
  else at ``due_end + grace``.
- ``days_late_at(t) = max(0, min(settled_at, t) - due_end)`` in days, for invoices with
  ``due_end < t`` (a null ``settled_at`` counts as later than ``t``).
- windows such as "trailing 90 days" are ``[t - 90 days, t)``.
- the *current invoice* of a row: the invoice being scored (late-payment rows), the invoice the
  message was about (send-time rows), or the latest invoice issued before ``t`` (churn rows and
  profiles).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from paynudge.vocabulary import CHANNELS

Kind = Literal["int", "float", "category", "bool"]


@dataclass(frozen=True)
class Feature:
    """One feature: its column name, type, family and a sentence saying what it measures."""

    name: str
    kind: Kind
    family: str
    description: str
    default: float | None = None
    """Value when the row has no events to compute it from (counts 0, flags False, else null)."""


HISTORY = (
    Feature("invoices_so_far", "int", "history", "invoices issued before t"),
    Feature("known_invoices", "int", "history", "invoices whose lateness is known before t"),
    Feature("on_time_rate", "float", "history", "share of known invoices that were not late"),
    Feature("mean_days_late", "float", "history", "mean days_late_at(t) over invoices due before t"),
    Feature("max_days_late", "float", "history", "max days_late_at(t) over invoices due before t"),
    Feature("last_days_late", "float", "history", "days_late_at(t) of the invoice due last before t"),
    Feature("late_streak", "int", "history", "consecutive late invoices among the known ones, counted back from the most recent due_end; 0 if none"),
    Feature("partial_payment_share", "float", "history", "share of invoices paid before t whose first payment was less than the amount"),
    Feature("days_since_last_late", "float", "history", "days from due_end + grace of the latest known late invoice to t"),
    Feature("open_balance", "float", "history", "amounts of invoices issued before t minus payments before t, never below 0 per invoice; 0 without earlier invoices", default=0.0),
)  # fmt: skip

BILL = (
    Feature("amount", "float", "bill", "amount of the current invoice"),
    Feature("amount_to_fee", "float", "bill", "amount / monthly_fee (null when the fee is 0)"),
    Feature("trailing_mean_amount", "float", "bill", "mean amount of the customer's other invoices issued in the 183 days before the current invoice's issued_at"),
    Feature("amount_ratio", "float", "bill", "amount / trailing_mean_amount"),
    Feature("amount_zscore", "float", "bill", "(amount - trailing mean) / trailing sample std; null with fewer than 2 invoices or std 0"),
)  # fmt: skip

ACCOUNT = (
    Feature("tenure_days", "float", "account", "days from signup_date 00:00 UTC to t"),
    Feature("plan", "category", "account", "plan"),
    Feature("monthly_fee", "float", "account", "monthly fee"),
    Feature("autopay", "bool", "account", "pays by direct debit"),
    Feature("language", "category", "account", "language"),
    *(Feature(f"consent_{c}", "bool", "account", f"consent to {c}") for c in CHANNELS),
    *(Feature(f"opted_out_{c}", "bool", "account", f"an opt_out response for {c} before t") for c in CHANNELS),
    Feature("contactable_channels", "int", "account", "channels with consent and no opt-out before t"),
)  # fmt: skip

ENGAGEMENT = (
    *(
        feature
        for c in CHANNELS
        for feature in (
            Feature(f"{c}_sent_90d", "int", "engagement", f"{c} messages sent in the trailing 90 days"),
            Feature(f"{c}_delivered_rate_90d", "float", "engagement", "share of those delivered before t"),
            Feature(f"{c}_open_rate_90d", "float", "engagement", "opened before t / delivered before t"),
            Feature(f"{c}_click_rate_90d", "float", "engagement", "clicked before t / delivered before t"),
        )
    ),
    Feature("reminders_30d", "int", "engagement", "messages sent (any channel) in the trailing 30 days"),
    Feature("opens_total", "int", "engagement", "messages opened before t"),
    Feature("open_hour_mean", "float", "engagement", "circular mean local hour (0-24) of opens before t"),
    Feature("open_hour_concentration", "float", "engagement", "length of the mean resultant vector of open hours (0 spread out - 1 always the same hour)"),
    Feature("open_hour_mode", "float", "engagement", "most common local hour (0-23) of opens before t; the smallest on ties"),
)  # fmt: skip

RESPONSES = (
    Feature("promises_made", "int", "responses", "promise_to_pay responses before t"),
    Feature("promises_broken", "int", "responses", "promises whose promised date ended (local) before t with their invoice not settled by then"),
    Feature("disputes_total", "int", "responses", "dispute responses before t"),
    Feature("disputes_open", "int", "responses", "invoices with more disputes than dispute_resolved responses before t"),
    Feature("hardship_90d", "bool", "responses", "a hardship response in the trailing 90 days"),
)  # fmt: skip

CUSTOMER_FEATURES: tuple[Feature, ...] = HISTORY + ACCOUNT + ENGAGEMENT + RESPONSES
"""Features of a customer at a time: the Feast customer profile."""

ALL_FEATURES: tuple[Feature, ...] = CUSTOMER_FEATURES + BILL
"""Customer features plus the current invoice's bill features."""

SEND_CONTEXT = (
    Feature("send_hour", "int", "send", "local hour (0-23) of sent_at"),
    Feature("send_weekday", "int", "send", "local weekday of sent_at, 0 = Monday"),
    Feature("channel", "category", "send", "channel of the message"),
    Feature("tone", "category", "send", "tone of the message"),
    Feature("offer", "category", "send", "offer of the message"),
    Feature("stage", "category", "send", "dunning stage of the message"),
)  # fmt: skip
"""Extra columns of the send-time dataset: the message itself."""


PROFILE_FILE = "customer_profiles.parquet"
"""The customer-profile table the pipeline writes into ``settings.features_dir`` for Feast."""
TIMESTAMP_COLUMN = "event_timestamp"
"""The as-of time (UTC) of a profile row."""


def names(features: tuple[Feature, ...]) -> list[str]:
    """Column names of ``features`` in catalogue order."""
    return [feature.name for feature in features]


def by_name() -> dict[str, Feature]:
    """Every feature (send context included) keyed by name."""
    return {feature.name: feature for feature in ALL_FEATURES + SEND_CONTEXT}
