"""The shared words of PayNudge's data contracts.

Every table, model and policy speaks this vocabulary, so it lives in the kernel: the raw-table
schemas, the simulated world, the reminder policy's action space and the dispatcher all import
these tuples instead of spelling the values again.
"""

from __future__ import annotations

CHANNELS: tuple[str, ...] = ("email", "sms", "push", "call", "letter")
"""Reminder channels, cheapest and least intrusive first."""

TONES: tuple[str, ...] = ("friendly", "neutral", "firm")
OFFERS: tuple[str, ...] = ("none", "extension", "instalment_plan")
NO_CONTACT = "no_contact"
"""The action of sending nothing; logged like any other decision (channel, tone, offer empty)."""

PLANS: tuple[str, ...] = ("basic", "standard", "premium", "business")
"""Plans from a prepaid-like basic bundle to a business contract."""

LANGUAGES: tuple[str, ...] = ("en", "nl")
PAYMENT_METHODS: tuple[str, ...] = ("direct_debit", "card", "bank_transfer", "ideal", "cash")
RESPONSE_TYPES: tuple[str, ...] = (
    "promise_to_pay",
    "dispute",
    "dispute_resolved",
    "hardship",
    "opt_out",
)
CHURN_REASONS: tuple[str, ...] = ("contract_end", "competitor", "moved", "non_payment")

RAW_TABLES: tuple[str, ...] = (
    "customers",
    "invoices",
    "payments",
    "messages",
    "responses",
    "churn",
)
REQUIRED_TABLES: tuple[str, ...] = ("customers", "invoices", "payments")
"""A bring-your-own data set needs these; the others enrich features when present."""


def consent_column(channel: str) -> str:
    """Name of the customers column holding the consent flag of ``channel``."""
    return f"consent_{channel}"


def opt_out_column(channel: str) -> str:
    """Name of the customers column holding the opt-out flag of ``channel``."""
    return f"opted_out_{channel}"
