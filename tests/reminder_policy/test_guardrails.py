"""Guardrails: every allowed action passes the dispatcher's re-check, send times respect quiet
hours across DST changes, and the hard rules (paid, dispute, promise, caps, consent) hold."""

from __future__ import annotations

import dataclasses
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from paynudge.config import GuardrailSettings
from paynudge.errors import DataError
from paynudge.vocabulary import CHANNELS, consent_column, opt_out_column
from reminder_policy.actions import ACTION_CHANNEL, ACTION_NAMES, ACTION_OFFER, N_ACTIONS
from reminder_policy.guardrails import (
    REASON_CODES,
    GuardrailInputs,
    apply_guardrails,
    violations,
)
from reminder_policy.local_time import to_local

ZONES = ("Europe/Amsterdam", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "UTC")
DST_CHANGES = pd.DatetimeIndex(
    [
        "2024-03-31 01:00",  # Amsterdam springs forward
        "2024-10-27 01:00",  # Amsterdam falls back
        "2024-03-10 07:00",  # New York springs forward
        "2024-11-03 06:00",  # New York falls back
        "2024-04-06 15:00",  # Lord Howe falls back half an hour
        "2024-10-05 15:30",  # Lord Howe springs forward half an hour
    ],
    tz="UTC",
)
QUIET_HOURS = ((21, 8), (22, 2), (23, 3), (20, 9), (1, 5))
"""The default, openings inside DST changes (02:00, 03:00) and a window that does not wrap."""
NOT_SET = pd.NaT
AMSTERDAM = "Europe/Amsterdam"
SENT = pd.Timestamp("2024-06-12 10:00", tz=AMSTERDAM).tz_convert("UTC")
DEFAULT = GuardrailSettings()


def local_time(zone: str, wall: str) -> pd.Timestamp:
    """The UTC instant of a local wall-clock time (with its UTC offset when it is repeated)."""
    return pd.Timestamp(wall, tz=zone).tz_convert("UTC")


def build(n: int = 1, **fields: Any) -> GuardrailInputs:
    """Inputs of ``n`` rows where everything is allowed, with some fields replaced."""
    send_at = fields.get("send_at", pd.DatetimeIndex([SENT] * n))
    values: dict[str, object] = {
        "send_at": send_at,
        "timezone": np.full(n, AMSTERDAM, dtype=object),
        "due_at": send_at - pd.Timedelta(days=3),  # type: ignore[operator]
        "consent": np.ones((n, len(CHANNELS)), dtype=bool),
        "opted_out": np.zeros((n, len(CHANNELS)), dtype=bool),
        "calls_7d": np.zeros(n, dtype=np.int64),
        "messages_invoice_7d": np.zeros(n, dtype=np.int64),
        "messages_customer_24h": np.zeros(n, dtype=np.int64),
        "dispute_open": np.zeros(n, dtype=bool),
        "hardship": np.zeros(n, dtype=bool),
        "paid": np.zeros(n, dtype=bool),
        "promise_until": pd.DatetimeIndex([NOT_SET] * n, tz="UTC"),
        "send_before": pd.DatetimeIndex([NOT_SET] * n, tz="UTC"),
    }
    values.update(fields)
    return GuardrailInputs(**values)  # type: ignore[arg-type]


def take(inputs: GuardrailInputs, rows: np.ndarray) -> GuardrailInputs:
    """The decisions at ``rows`` (repeats allowed)."""
    return GuardrailInputs(
        **{f.name: getattr(inputs, f.name)[rows] for f in dataclasses.fields(inputs) if f.init}
    )


def only_no_contact(n: int) -> np.ndarray:
    return np.tile(np.arange(N_ACTIONS) == 0, (n, 1))


# ---------------------------------------------------------------- random inputs


MINUTES = 3 * 24 * 60
"""Times are drawn within three days of a DST change; due dates, promises and deadlines within
three days of the send time."""
COUNTS = st.integers(0, 9)
N_FLAGS = 2 * len(CHANNELS) + 5
"""Bits of one drawn integer per row: consent and opt-out per channel, dispute, hardship, paid,
and whether a promise or a deadline is set."""


@st.composite
def guardrail_inputs(draw: st.DrawFn, max_rows: int = 10) -> GuardrailInputs:
    """Random decisions around DST changes in zones with whole-hour, half-hour or no DST."""
    n = draw(st.integers(1, max_rows))
    change = draw(arrays(np.int64, n, elements=st.integers(0, len(DST_CHANGES) - 1)))
    zone = draw(arrays(np.int64, n, elements=st.integers(0, len(ZONES) - 1)))
    minutes = draw(arrays(np.int64, (4, n), elements=st.integers(-MINUTES, MINUTES)))
    counts = draw(arrays(np.int64, (3, n), elements=COUNTS))
    bits = draw(arrays(np.int64, n, elements=st.integers(0, 2**N_FLAGS - 1)))
    flags = (bits[None, :] >> np.arange(N_FLAGS)[:, None] & 1).astype(bool)
    consent, opted_out = flags[: len(CHANNELS)].T, flags[len(CHANNELS) : 2 * len(CHANNELS)].T
    dispute_open, hardship, paid, promised, deadline = flags[2 * len(CHANNELS) :]
    offset = pd.to_timedelta(minutes.ravel(), unit="min").to_numpy().reshape(minutes.shape)
    send_at = DST_CHANGES[change] + offset[0]
    return GuardrailInputs(
        send_at=send_at,
        timezone=np.array(ZONES, dtype=object)[zone],
        due_at=send_at + offset[1],
        consent=consent.copy(),
        opted_out=opted_out.copy(),
        calls_7d=counts[0],
        messages_invoice_7d=counts[1],
        messages_customer_24h=counts[2],
        dispute_open=dispute_open,
        hardship=hardship,
        paid=paid,
        promise_until=(send_at + offset[2]).where(promised, NOT_SET),
        send_before=(send_at + np.abs(offset[3])).where(deadline, NOT_SET),
    )


guardrail_settings = st.builds(
    GuardrailSettings,
    quiet_hours=st.sampled_from(QUIET_HOURS),
    max_calls_per_invoice_7d=st.integers(0, 8),
    max_messages_per_invoice_week=st.integers(0, 4),
    max_messages_per_customer_day=st.integers(0, 2),
    offers_from_due=st.booleans(),
)


def violations_of_every_action(
    inputs: GuardrailInputs, send_at: pd.DatetimeIndex, rules: GuardrailSettings
) -> list[list[tuple[str, ...]]]:
    """violations()[row][action], from one call on every (row, action) pair."""
    n = len(inputs)
    rows = np.repeat(np.arange(n), N_ACTIONS)
    found = violations(take(inputs, rows), np.tile(np.arange(N_ACTIONS), n), send_at[rows], rules)
    return [found[i * N_ACTIONS : (i + 1) * N_ACTIONS] for i in range(n)]


def in_quiet_hours(instant: pd.Timestamp, zone: str, rules: GuardrailSettings) -> bool:
    """Quiet hours by the standard library's zoneinfo: an oracle apart from pandas."""
    hour = instant.to_pydatetime().astimezone(ZoneInfo(zone)).hour
    start, end = rules.quiet_hours
    return (hour >= start or hour < end) if start > end else start <= hour < end


# ---------------------------------------------------------------- properties


@settings(max_examples=150, deadline=None)
@given(inputs=guardrail_inputs(), rules=guardrail_settings)
def test_allowed_actions_are_exactly_those_without_violation(
    inputs: GuardrailInputs, rules: GuardrailSettings
) -> None:
    result = apply_guardrails(inputs, rules)
    found = violations_of_every_action(inputs, result.send_at, rules)
    reasons = result.reasons()
    for row in range(len(inputs)):
        for action in range(N_ACTIONS):
            codes = found[row][action]
            assert result.allowed[row, action] == (codes == ()), (row, ACTION_NAMES[action], codes)
            removed_by = tuple(c for c in REASON_CODES if result.removed[c][row, action])
            assert codes == removed_by
        broken = {code for codes in found[row] for code in codes}
        assert set(reasons[row]) == broken
        assert reasons[row] == tuple(c for c in REASON_CODES if c in broken)


@settings(max_examples=50, deadline=None)
@given(inputs=guardrail_inputs(), rules=guardrail_settings)
def test_no_contact_is_always_allowed_and_never_removed(
    inputs: GuardrailInputs, rules: GuardrailSettings
) -> None:
    result = apply_guardrails(inputs, rules)
    assert result.allowed[:, 0].all()
    assert not any(mask[:, 0].any() for mask in result.removed.values())
    assert set(result.removed) == set(REASON_CODES)


TIME_FIELDS = ("send_at", "due_at", "promise_until", "send_before")


@settings(max_examples=50, deadline=None)
@given(inputs=guardrail_inputs(), rules=guardrail_settings)
def test_times_as_nanoseconds_give_the_same_rulings(
    inputs: GuardrailInputs, rules: GuardrailSettings
) -> None:
    """The decision path passes int64 UTC nanoseconds (NaT as int64 minimum) instead of a
    DatetimeIndex: the same instants give the same allowed actions, send times and reasons."""
    ns = build_like(inputs, **{f: getattr(inputs, f).as_unit("ns").asi8 for f in TIME_FIELDS})
    expected, found = apply_guardrails(inputs, rules), apply_guardrails(ns, rules)
    np.testing.assert_array_equal(found.allowed, expected.allowed)
    np.testing.assert_array_equal(found.send_at_ns, expected.send_at_ns)
    assert found.send_at.equals(expected.send_at)
    local = to_local(found.send_at_ns, inputs.timezone)  # moved, dropped or kept alike
    np.testing.assert_array_equal(found.send_at_local_ns, local)
    np.testing.assert_array_equal(expected.send_at_local_ns, local)
    assert found.reasons() == expected.reasons()
    action = np.argmax(expected.allowed[:, ::-1], axis=1)
    assert violations(ns, action, found.send_at_ns, rules) == violations(
        inputs, action, expected.send_at, rules
    )


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        (
            "send_at",
            np.array([1.7e18]),
            "send_at: expected a time-zone-aware .* or int64 UTC nanoseconds",
        ),
        ("send_at", np.array([np.iinfo(np.int64).min]), r"send_at: row 0 is missing \(NaT\)"),
        ("due_at", np.array([1, 2], dtype=np.int64), r"due_at: expected 1 rows \(one per decision"),
    ],
)
def test_bad_nanoseconds_say_what(field: str, value: np.ndarray, match: str) -> None:
    with pytest.raises(DataError, match=match):
        build_like(build(), **{field: value})


@settings(max_examples=150, deadline=None)
@given(inputs=guardrail_inputs(), rules=guardrail_settings)
def test_send_time_moves_forward_to_the_next_opening(
    inputs: GuardrailInputs, rules: GuardrailSettings
) -> None:
    result = apply_guardrails(inputs, rules)
    dropped = np.any(result.removed["quiet_hours"], axis=1)
    one_minute = pd.Timedelta(1, "min")
    for row, zone in enumerate(inputs.timezone):
        proposed, sent = inputs.send_at[row], result.send_at[row]
        assert sent >= proposed
        if dropped[row]:
            assert sent == proposed and in_quiet_hours(proposed, zone, rules)
            assert not result.allowed[row, 1:].any()
            continue
        assert not in_quiet_hours(sent, zone, rules)
        if sent > proposed:  # the first open minute, at most a day later
            assert in_quiet_hours(sent - one_minute, zone, rules)
            assert sent - proposed <= pd.Timedelta(days=1)
        else:
            assert not in_quiet_hours(proposed, zone, rules)


@settings(max_examples=50, deadline=None)
@given(
    inputs=guardrail_inputs(),
    rules=guardrail_settings,
    flag=st.sampled_from(["paid", "dispute_open", "promise"]),
)
def test_paid_disputed_or_promised_invoices_get_no_contact(
    inputs: GuardrailInputs, rules: GuardrailSettings, flag: str
) -> None:
    n = len(inputs)
    if flag == "promise":
        changed = build_like(inputs, promise_until=inputs.send_at + pd.Timedelta(days=3))
    else:
        changed = build_like(inputs, **{flag: np.ones(n, dtype=bool)})
    np.testing.assert_array_equal(apply_guardrails(changed, rules).allowed, only_no_contact(n))


def build_like(inputs: GuardrailInputs, **fields: object) -> GuardrailInputs:
    values = {f.name: getattr(inputs, f.name) for f in dataclasses.fields(inputs) if f.init}
    return GuardrailInputs(**{**values, **fields})  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(
    inputs=guardrail_inputs(),
    rules=guardrail_settings,
    data=st.data(),
)
def test_tightening_a_rule_never_enlarges_the_allowed_set(
    inputs: GuardrailInputs, rules: GuardrailSettings, data: st.DataObject
) -> None:
    n = len(inputs)
    before = apply_guardrails(inputs, rules).allowed
    fewer = data.draw(arrays(np.bool_, (n, len(CHANNELS))), label="withdrawn")
    flags = data.draw(arrays(np.bool_, n), label="flags")
    more = data.draw(arrays(np.int64, n, elements=st.integers(0, 3)), label="more")
    tighter = GuardrailSettings(
        quiet_hours=rules.quiet_hours,
        max_calls_per_invoice_7d=data.draw(st.integers(0, rules.max_calls_per_invoice_7d)),
        max_messages_per_invoice_week=data.draw(
            st.integers(0, rules.max_messages_per_invoice_week)
        ),
        max_messages_per_customer_day=data.draw(
            st.integers(0, rules.max_messages_per_customer_day)
        ),
        offers_from_due=rules.offers_from_due or data.draw(st.booleans()),
    )
    cases = [
        (inputs, tighter),
        (build_like(inputs, consent=inputs.consent & ~fewer), rules),
        (build_like(inputs, opted_out=inputs.opted_out | fewer), rules),
        (build_like(inputs, hardship=inputs.hardship | flags), rules),
        (build_like(inputs, calls_7d=inputs.calls_7d + more), rules),
        (build_like(inputs, messages_invoice_7d=inputs.messages_invoice_7d + more), rules),
        (build_like(inputs, messages_customer_24h=inputs.messages_customer_24h + more), rules),
    ]
    for changed, changed_rules in cases:
        after = apply_guardrails(changed, changed_rules).allowed
        assert not (after & ~before).any()


# ---------------------------------------------------------------- examples: quiet hours


@pytest.mark.parametrize(
    ("zone", "proposed", "expected"),
    [
        (AMSTERDAM, "2024-06-12 20:30", "2024-06-12 20:30"),  # inside the window: stays
        (AMSTERDAM, "2024-06-12 21:00", "2024-06-13 08:00"),  # 21:00 itself is quiet
        (AMSTERDAM, "2024-06-12 21:15", "2024-06-13 08:00"),  # evening: next morning
        (AMSTERDAM, "2024-06-12 06:00", "2024-06-12 08:00"),  # early: same morning
        (AMSTERDAM, "2024-06-12 08:00", "2024-06-12 08:00"),
        (AMSTERDAM, "2024-03-30 21:15", "2024-03-31 08:00"),  # into spring-forward day
        (AMSTERDAM, "2024-03-31 01:30", "2024-03-31 08:00"),  # before the 02:00 jump
        ("America/New_York", "2024-03-10 01:30", "2024-03-10 08:00"),
        ("America/New_York", "2024-11-03 01:30-05:00", "2024-11-03 08:00"),  # repeated hour
        ("Australia/Lord_Howe", "2024-10-06 06:00", "2024-10-06 08:00"),
        ("Asia/Kolkata", "2024-03-31 23:59", "2024-04-01 08:00"),
    ],
)
def test_send_time_in_local_wall_clock(zone: str, proposed: str, expected: str) -> None:
    inputs = build(
        send_at=pd.DatetimeIndex([local_time(zone, proposed)]),
        timezone=np.array([zone], dtype=object),
    )
    result = apply_guardrails(inputs, DEFAULT)
    assert result.send_at[0] == local_time(zone, expected)
    assert result.reasons() == [()]


def test_spring_forward_night_is_an_hour_shorter_in_utc() -> None:
    zone = "America/New_York"
    nights = ("2024-03-09 01:30", "2024-03-10 01:30")  # the second night loses an hour
    inputs = build(
        2,
        send_at=pd.DatetimeIndex([local_time(zone, night) for night in nights]),
        timezone=np.full(2, zone, dtype=object),
    )
    moved = apply_guardrails(inputs, DEFAULT).send_at - inputs.send_at
    assert list(moved) == [pd.Timedelta(hours=6, minutes=30), pd.Timedelta(hours=5, minutes=30)]


@pytest.mark.parametrize(
    ("zone", "proposed", "expected"),
    [
        ("America/New_York", "2024-03-10 01:30", "2024-03-10 03:00"),  # 02:00 never happens
        ("Australia/Lord_Howe", "2024-10-06 01:59", "2024-10-06 02:30"),  # half-hour gap
        ("Europe/Amsterdam", "2024-10-27 01:30", "2024-10-27 02:00+02:00"),  # first of two
        # Two hours repeated (03:00 back to 01:00): at 01:30 the second time, the opening's
        # first instant has passed; its second is the first not before the proposed time.
        ("Antarctica/Troll", "2024-10-27 01:30+00:00", "2024-10-27 02:00+00:00"),
    ],
)
def test_an_opening_hour_changed_by_dst_moves_to_its_first_instant(
    zone: str, proposed: str, expected: str
) -> None:
    inputs = build(
        send_at=pd.DatetimeIndex([local_time(zone, proposed)]),
        timezone=np.array([zone], dtype=object),
    )
    result = apply_guardrails(inputs, GuardrailSettings(quiet_hours=(22, 2)))
    assert result.send_at[0] == local_time(zone, expected)


@pytest.mark.parametrize(
    ("deadline", "dropped"),
    [("2024-06-13 07:59", True), ("2024-06-13 08:00", False), (None, False)],
)
def test_a_deadline_before_the_opening_drops_every_contact(
    deadline: str | None, dropped: bool
) -> None:
    proposed = local_time(AMSTERDAM, "2024-06-12 22:00")
    send_before = local_time(AMSTERDAM, deadline) if deadline else NOT_SET
    inputs = build(
        send_at=pd.DatetimeIndex([proposed]), send_before=pd.DatetimeIndex([send_before], tz="UTC")
    )
    result = apply_guardrails(inputs, DEFAULT)
    if dropped:
        np.testing.assert_array_equal(result.allowed, only_no_contact(1))
        assert result.reasons() == [("quiet_hours",)]
        assert result.send_at[0] == proposed
    else:
        assert result.allowed.all()
        assert result.send_at[0] == local_time(AMSTERDAM, "2024-06-13 08:00")


# ---------------------------------------------------------------- examples: rules

CALLS = CHANNELS.index("call") == ACTION_CHANNEL
LETTERS = CHANNELS.index("letter") == ACTION_CHANNEL
OFFERS_MADE = ACTION_OFFER > 0


EVERY = set(ACTION_NAMES)
NO_EMAIL = {n for n in EVERY if not n.startswith("email/")}
NO_CALL = {n for n in EVERY if not n.startswith("call/")}
HARDSHIP_ACTIONS = {"no_contact"} | {
    f"{c}/{t}/{o}"
    for c in CHANNELS
    for t in ("friendly", "neutral")
    for o in ("extension", "instalment_plan")
}
NO_LETTER_NO_OFFER = {"no_contact"} | {
    n for n in EVERY if not n.startswith("letter/") and n.endswith("/none")
}


@pytest.mark.parametrize(
    ("fields", "allowed", "reasons"),
    [
        ({}, EVERY, ()),
        ({"consent": np.array([[False, True, True, True, True]])}, NO_EMAIL, ("no_consent",)),
        ({"opted_out": np.array([[False, False, False, True, False]])}, NO_CALL, ("opted_out",)),
        ({"calls_7d": np.array([7])}, NO_CALL, ("call_cap",)),
        ({"calls_7d": np.array([6])}, EVERY, ()),
        ({"messages_invoice_7d": np.array([3])}, {"no_contact"}, ("invoice_weekly_cap",)),
        ({"messages_customer_24h": np.array([1])}, {"no_contact"}, ("customer_daily_cap",)),
        ({"dispute_open": np.array([True])}, {"no_contact"}, ("dispute_open",)),
        ({"paid": np.array([True])}, {"no_contact"}, ("paid",)),
        ({"hardship": np.array([True])}, HARDSHIP_ACTIONS, ("hardship",)),
        (
            {"due_at": pd.DatetimeIndex([SENT + pd.Timedelta(days=3)])},
            NO_LETTER_NO_OFFER,
            ("letter_before_due", "offer_before_due"),
        ),
        (
            {"paid": np.array([True]), "consent": np.zeros((1, len(CHANNELS)), dtype=bool)},
            {"no_contact"},
            ("no_consent", "paid"),
        ),
    ],
)
def test_rules_one_by_one(
    fields: dict[str, Any], allowed: set[str], reasons: tuple[str, ...]
) -> None:
    result = apply_guardrails(build(send_at=pd.DatetimeIndex([SENT]), **fields), DEFAULT)
    assert {ACTION_NAMES[a] for a in np.flatnonzero(result.allowed[0])} == allowed
    assert result.reasons() == [reasons]


def test_offers_are_allowed_on_the_due_date_but_letters_only_after_it() -> None:
    sent = local_time(AMSTERDAM, "2024-06-12 10:00")
    end_of_due_date = pd.DatetimeIndex([local_time(AMSTERDAM, "2024-06-13 00:00")])
    result = apply_guardrails(
        build(send_at=pd.DatetimeIndex([sent]), due_at=end_of_due_date), DEFAULT
    )
    assert result.reasons() == [("letter_before_due",)]
    assert result.allowed[0, OFFERS_MADE & ~LETTERS].all()
    day_before = end_of_due_date + pd.Timedelta(days=1)
    result = apply_guardrails(build(send_at=pd.DatetimeIndex([sent]), due_at=day_before), DEFAULT)
    assert result.reasons() == [("letter_before_due", "offer_before_due")]
    lenient = GuardrailSettings(offers_from_due=False)
    assert apply_guardrails(build(due_at=day_before), lenient).reasons() == [("letter_before_due",)]


def test_a_promise_pauses_until_the_promised_date_even_after_moving() -> None:
    evening = local_time(AMSTERDAM, "2024-06-12 22:00")
    promise = pd.DatetimeIndex([local_time(AMSTERDAM, "2024-06-13 00:00")])  # end of the 12th
    result = apply_guardrails(
        build(send_at=pd.DatetimeIndex([evening]), promise_until=promise), DEFAULT
    )
    assert result.allowed.all()  # moved to 08:00 on the 13th: the promised date has passed
    noon = pd.DatetimeIndex([local_time(AMSTERDAM, "2024-06-12 12:00")])
    result = apply_guardrails(build(send_at=noon, promise_until=promise), DEFAULT)
    assert result.reasons() == [("promise_pending",)]


# ---------------------------------------------------------------- from_frame and bad inputs


def frame(n: int = 3) -> pd.DataFrame:
    inputs = build(n)
    columns: dict[str, object] = {
        "send_at": inputs.send_at,
        "timezone": inputs.timezone,
        "due_at": inputs.due_at,
        "calls_7d": inputs.calls_7d,
        "messages_invoice_7d": inputs.messages_invoice_7d,
        "messages_customer_24h": inputs.messages_customer_24h,
        "dispute_open": inputs.dispute_open,
        "hardship": inputs.hardship,
        "paid": inputs.paid,
    }
    for i, channel in enumerate(CHANNELS):
        columns[consent_column(channel)] = inputs.consent[:, i]
        columns[opt_out_column(channel)] = inputs.opted_out[:, i]
    return pd.DataFrame(columns)


def test_from_frame_reads_every_column() -> None:
    table = frame()
    table["send_at"] = table["send_at"].dt.tz_convert(AMSTERDAM)  # any zone, read as UTC
    table["consent_sms"] = [1, 0, 1]
    table["send_before"] = [None, None, None]
    inputs = GuardrailInputs.from_frame(table)
    assert str(inputs.send_at.tz) == "UTC"
    assert inputs.consent[:, CHANNELS.index("sms")].tolist() == [True, False, True]
    assert inputs.send_before.isna().all() and inputs.promise_until.isna().all()
    assert apply_guardrails(inputs, DEFAULT).allowed.shape == (3, N_ACTIONS)


def _set(column: str, row: int, value: object):
    def change(table: pd.DataFrame) -> pd.DataFrame:
        values = table[column].astype(object).to_numpy()
        values[row] = value
        table[column] = values
        return table

    return change


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda t: t.drop(columns="consent_sms"), r"missing column\(s\) \['consent_sms'\]"),
        (lambda t: t.drop(columns="send_at"), r"missing column\(s\) \['send_at'\]"),
        (
            _set("timezone", 1, "Mars/Olympus"),
            r"timezone: unknown IANA zone 'Mars/Olympus' \(row 1\)",
        ),
        (_set("timezone", 2, None), r"timezone: row 2 is missing"),
        (
            lambda t: t.assign(send_at=t["send_at"].dt.tz_localize(None)),
            r"send_at: expected time-zone-aware",
        ),
        (lambda t: t.assign(due_at=t["due_at"].where(t.index != 2)), r"due_at: row 2 is missing"),
        (_set("paid", 1, "yes"), r"paid: expected booleans, found 'yes' \(row 1\)"),
        (_set("hardship", 0, None), r"hardship: expected booleans, found None \(row 0\)"),
        (_set("calls_7d", 0, -1), r"calls_7d: expected counts >= 0, row 0"),
        (
            _set("messages_invoice_7d", 2, 1.5),
            r"messages_invoice_7d: expected whole counts, found 1.5 \(row 2\)",
        ),
        (
            lambda t: t.assign(send_before=t["send_at"] - pd.Timedelta(hours=1)),
            r"send_before: expected on or after send_at, row 0",
        ),
    ],
)
def test_bad_frames_say_what_and_where(change, match: str) -> None:
    with pytest.raises(DataError, match=match):
        GuardrailInputs.from_frame(change(frame()))


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"consent": np.ones((3, 4), dtype=bool)}, r"consent: expected shape \(3, 5\)"),
        (
            {"paid": np.zeros(3, dtype=np.int64)},
            r"paid: expected a numpy array of booleans, found int64",
        ),
        ({"calls_7d": [0, 0, 0]}, r"calls_7d: expected a numpy array of integers, found list"),
        ({"due_at": pd.DatetimeIndex(["2024-01-01"] * 2, tz="UTC")}, r"due_at: expected 3 rows"),
        (
            {"promise_until": pd.DatetimeIndex([NOT_SET] * 3)},
            r"promise_until: expected a time-zone-aware",
        ),
        ({"timezone": np.array(["UTC", "UTC"], dtype=object)}, r"timezone: expected an array of 3"),
    ],
)
def test_bad_inputs_say_what_and_where(fields: dict[str, object], match: str) -> None:
    with pytest.raises(DataError, match=match):
        build(3, **fields)


def test_violations_checks_its_own_arguments() -> None:
    inputs = build(2)
    with pytest.raises(DataError, match=r"action: expected codes 0-45, row 1 is outside"):
        violations(inputs, np.array([0, N_ACTIONS]), inputs.send_at, DEFAULT)
    with pytest.raises(DataError, match=r"send_at: expected 2 rows"):
        violations(inputs, np.array([0, 1]), inputs.send_at[:1], DEFAULT)
