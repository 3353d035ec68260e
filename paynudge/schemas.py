"""The data contracts of PayNudge's raw tables, built from :mod:`paynudge.vocabulary`.

``SCHEMAS`` holds one pandera schema per table for the checks that look at one column at a time
(type, nulls, uniqueness, vocabularies, ranges). ``ROW_RULES`` holds the rules that relate columns
of the same row (a due date after its issue date, a logged action that is all set or all empty).
They are plain vectorised predicates rather than pandera wide checks because pandera reports a
failing wide check once per cell, which on a 10M-row table turns one broken rule into 100M
failure cases.

Each column's ``metadata["kind"]`` tells :mod:`paynudge.coercion` how to turn CSV text or loosely
typed Parquet into the contract type: ``text``, ``number``, ``flag``, ``date`` or ``timestamp``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal
from zoneinfo import available_timezones

import pandas as pd
import pandera.pandas as pa

from paynudge.vocabulary import (
    CHANNELS,
    CHURN_REASONS,
    LANGUAGES,
    OFFERS,
    PAYMENT_METHODS,
    PLANS,
    RESPONSE_TYPES,
    TONES,
    consent_column,
    opt_out_column,
)

ColumnKind = Literal["text", "number", "flag", "date", "timestamp"]

DATE_DTYPE = "datetime64[ns]"
"""Calendar dates: naive, at midnight, as the simulator writes them."""
TIMESTAMP_DTYPE = pd.DatetimeTZDtype("ns", "UTC")
"""Instants: time-zone aware, normalised to UTC."""
TEXT_DTYPE = object
"""Text: ``str`` values, None where empty. Declared ``object`` rather than ``str`` because
coercion already makes every value a ``str`` and pandera's ``str`` check tests each cell in
Python, which dominates validation time on large tables."""

AMOUNT_TOLERANCE = 0.01
"""How far an invoice amount may drift from fee + usage - discount (one cent of rounding)."""

PERSONAL_COLUMNS: frozenset[str] = frozenset({"name", "email", "phone"})
"""Columns whose values never appear in a report (privacy by default)."""


def column_kind(column: pa.Column) -> ColumnKind:
    """How :mod:`paynudge.coercion` reads ``column`` from CSV text or Parquet."""
    return column.metadata["kind"]


def _column(
    kind: ColumnKind, dtype: object, *checks: pa.Check, nullable: bool = False, unique: bool = False
) -> pa.Column:
    return pa.Column(dtype, list(checks), nullable=nullable, unique=unique, metadata={"kind": kind})


def _text(*checks: pa.Check, nullable: bool = False, unique: bool = False) -> pa.Column:
    return _column("text", TEXT_DTYPE, *checks, nullable=nullable, unique=unique)


def _one_of(values: Iterable[str], nullable: bool = False) -> pa.Column:
    allowed = tuple(values)
    return _text(pa.Check.isin(allowed, error=f"one of {', '.join(allowed)}"), nullable=nullable)


def _number(check: pa.Check) -> pa.Column:
    return _column("number", "float64", check)


def _amount() -> pa.Column:
    return _number(pa.Check.ge(0, error="a non-negative amount"))


def _flag() -> pa.Column:
    return _column("flag", "boolean")


def _date(nullable: bool = False) -> pa.Column:
    return _column("date", DATE_DTYPE, nullable=nullable)


def _timestamp(nullable: bool = False) -> pa.Column:
    return _column("timestamp", TIMESTAMP_DTYPE, nullable=nullable)


@lru_cache(maxsize=1)
def known_time_zones() -> frozenset[str]:
    """IANA zone names of the installed time-zone database, read once on first use."""
    return frozenset(available_timezones())


def _is_time_zone(values: pd.Series) -> pd.Series:
    return values.isin(known_time_zones())


def _table(name: str, columns: dict[str, pa.Column]) -> pa.DataFrameSchema:
    return pa.DataFrameSchema(columns, name=name, strict=True, ordered=False)


def _channel_flags() -> dict[str, pa.Column]:
    flags: dict[str, pa.Column] = {}
    for channel in CHANNELS:
        flags[consent_column(channel)] = _flag()
        flags[opt_out_column(channel)] = _flag()
    return flags


SCHEMAS: dict[str, pa.DataFrameSchema] = {
    "customers": _table(
        "customers",
        {
            "customer_id": _text(unique=True),
            "signup_date": _date(),
            "plan": _one_of(PLANS),
            "monthly_fee": _amount(),
            "autopay": _flag(),
            "timezone": _text(
                pa.Check(_is_time_zone, error="an IANA time zone such as Europe/Amsterdam")
            ),
            "language": _one_of(LANGUAGES),
            **_channel_flags(),
            "name": _text(),
            "email": _text(nullable=True),
            "phone": _text(nullable=True),
        },
    ),
    "invoices": _table(
        "invoices",
        {
            "invoice_id": _text(unique=True),
            "customer_id": _text(),
            "issue_date": _date(),
            "due_date": _date(),
            "amount": _amount(),
            "fee_amount": _amount(),
            "usage_amount": _amount(),
            "discount_amount": _amount(),
        },
    ),
    "payments": _table(
        "payments",
        {
            "payment_id": _text(unique=True),
            "invoice_id": _text(),
            "customer_id": _text(),
            "paid_at": _timestamp(),
            "amount": _number(pa.Check.gt(0, error="a positive amount")),
            "method": _one_of(PAYMENT_METHODS),
        },
    ),
    "messages": _table(
        "messages",
        {
            "message_id": _text(unique=True),
            "invoice_id": _text(),
            "customer_id": _text(),
            "stage": _text(),
            "channel": _one_of(CHANNELS, nullable=True),
            "tone": _one_of(TONES, nullable=True),
            "offer": _one_of(OFFERS, nullable=True),
            "decided_at": _timestamp(),
            "sent_at": _timestamp(nullable=True),
            "delivered_at": _timestamp(nullable=True),
            "opened_at": _timestamp(nullable=True),
            "clicked_at": _timestamp(nullable=True),
            "propensity": _number(
                pa.Check.in_range(0, 1, include_min=False, error="a probability in (0, 1]")
            ),
            "logging_policy": _text(),
        },
    ),
    "responses": _table(
        "responses",
        {
            "response_id": _text(unique=True),
            "customer_id": _text(),
            "invoice_id": _text(nullable=True),
            "message_id": _text(nullable=True),
            "type": _one_of(RESPONSE_TYPES),
            "occurred_at": _timestamp(),
            "channel": _one_of(CHANNELS, nullable=True),
            "promised_date": _date(nullable=True),
        },
    ),
    "churn": _table(
        "churn",
        {
            "customer_id": _text(unique=True),
            "churned_at": _timestamp(),
            "reason": _one_of(CHURN_REASONS),
        },
    ),
}
"""One pandera schema per raw table, for the checks that look at one column at a time."""


@dataclass(frozen=True)
class RowRule:
    """A rule relating columns of one row; ``broken`` marks the rows that break it.

    Comparisons with a null are False in pandas, so a rule that compares values stays silent on
    nulls (the schema reports those); rules about which columns are set read nulls on purpose.
    ``found`` is the (singular, plural) noun for the breaking rows, e.g. "invoice due before issue".
    ``columns`` lists every column ``broken`` reads; the rule is skipped when one is missing.
    """

    column: str
    columns: tuple[str, ...]
    expected: str
    found: tuple[str, str]
    broken: Callable[[pd.DataFrame], pd.Series]


def _amount_mismatch(invoices: pd.DataFrame) -> pd.Series:
    parts = invoices["fee_amount"] + invoices["usage_amount"] - invoices["discount_amount"]
    return (invoices["amount"] - parts).abs() > AMOUNT_TOLERANCE


def _partly_logged(messages: pd.DataFrame) -> pd.Series:
    set_count = messages[["channel", "tone", "offer"]].notna().sum(axis=1)
    return (set_count > 0) & (set_count < 3)


def _event_before_sent(event: str) -> RowRule:
    return RowRule(
        column=event,
        columns=(event, "sent_at"),
        expected=f"{event} on or after sent_at",
        found=(f"message with {event} before sent_at", f"messages with {event} before sent_at"),
        broken=lambda messages: messages[event] < messages["sent_at"],
    )


ROW_RULES: dict[str, tuple[RowRule, ...]] = {
    "invoices": (
        RowRule(
            column="due_date",
            columns=("due_date", "issue_date"),
            expected="due_date on or after issue_date",
            found=("invoice due before issue", "invoices due before issue"),
            broken=lambda invoices: invoices["due_date"] < invoices["issue_date"],
        ),
        RowRule(
            column="amount",
            columns=("amount", "fee_amount", "usage_amount", "discount_amount"),
            expected="amount = fee_amount + usage_amount - discount_amount"
            f" (within {AMOUNT_TOLERANCE})",
            found=("invoice that does not add up", "invoices that do not add up"),
            broken=_amount_mismatch,
        ),
    ),
    "messages": (
        RowRule(
            column="channel",
            columns=("channel", "tone", "offer"),
            expected="channel, tone and offer all set, or all empty for a no_contact decision",
            found=("message with only some of them set", "messages with only some of them set"),
            broken=_partly_logged,
        ),
        RowRule(
            column="sent_at",
            columns=("sent_at", "channel"),
            expected="sent_at set exactly when channel is set",
            found=(
                "message whose sent_at and channel disagree",
                "messages whose sent_at and channel disagree",
            ),
            broken=lambda messages: messages["sent_at"].isna() != messages["channel"].isna(),
        ),
        *(_event_before_sent(event) for event in ("delivered_at", "opened_at", "clicked_at")),
    ),
    "responses": (
        RowRule(
            column="channel",
            columns=("channel", "type"),
            expected="a channel on every opt_out response",
            found=("opt_out without channel", "opt_outs without channel"),
            broken=lambda responses: (responses["type"] == "opt_out") & responses["channel"].isna(),
        ),
        RowRule(
            column="promised_date",
            columns=("promised_date", "type"),
            expected="a promised_date on every promise_to_pay response",
            found=("promise without date", "promises without date"),
            broken=lambda responses: (
                (responses["type"] == "promise_to_pay") & responses["promised_date"].isna()
            ),
        ),
    ),
}
"""Per table, the rules relating columns of one row (checked after the schema)."""
