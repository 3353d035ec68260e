"""The pandas reference features: hand-computed values, point-in-time safety, simulated worlds.

The hand-built data set has three customers. C1 (Amsterdam) pays one invoice on time, one late
after a partial payment and leaves one open past its due date; C2 (New York) has a zero invoice,
a late one and reminders opened around local midnight; C3 (Singapore) has a single invoice and
nothing else. Expected values are worked out by hand in the comments, in UTC.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from benchmarks.pandas_reference import late_payment_features, local_midnight_to_utc
from features.catalog import ALL_FEATURES, names
from paynudge.validation import load_dataset
from paynudge.vocabulary import CHANNELS
from simulation.world import make_config, simulate_world, write_world

Tables = dict[str, pd.DataFrame]


def dates(*values: str | None) -> pd.Series:
    """Calendar dates as the simulator stores them: naive, at midnight."""
    return pd.Series(pd.to_datetime(list(values)), dtype="datetime64[ns]")


def instants(*values: str | None) -> pd.Series:
    """Timestamps as the simulator stores them: in UTC."""
    return pd.Series(
        pd.to_datetime(list(values), utc=True, format="ISO8601"), dtype="datetime64[ns, UTC]"
    )


def _customers() -> pd.DataFrame:
    customers = pd.DataFrame(
        {
            "customer_id": ["C1", "C2", "C3"],
            "signup_date": dates("2023-12-01", "2023-06-15", "2024-01-01"),
            "plan": ["basic", "basic", "premium"],
            "monthly_fee": [20.0, 0.0, 45.0],
            "autopay": [False, True, False],
            "timezone": ["Europe/Amsterdam", "America/New_York", "Asia/Singapore"],
            "language": ["nl", "en", "en"],
        }
    )
    for channel in CHANNELS:
        customers[f"consent_{channel}"] = [channel != "letter", channel in ("email", "sms"), False]
        # The export-time snapshot says C1 opted out of email and sms: features must not read it.
        customers[f"opted_out_{channel}"] = [channel in ("email", "sms"), False, False]
    customers["name"] = ["Ada", "Ben", "Cleo"]
    customers["email"] = ["ada@example.org", "ben@example.org", None]
    customers["phone"] = [None, None, None]
    return customers


def _invoices() -> pd.DataFrame:
    amounts = [30.0, 40.0, 50.0, 80.0, 25.0, 0.0, 25.0, 25.0, 45.0]
    return pd.DataFrame(
        {
            "invoice_id": ["A1", "A2", "A3", "A4", "B0", "B1", "B2", "B3", "S1"],
            "customer_id": ["C1"] * 4 + ["C2"] * 4 + ["C3"],
            "issue_date": dates(
                *("2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"),
                *("2023-12-01", "2024-03-01", "2024-03-10", "2024-04-01", "2024-02-01"),
            ),
            "due_date": dates(
                *("2024-01-15", "2024-02-15", "2024-03-15", "2024-04-15"),
                *("2023-12-10", "2024-03-10", "2024-03-20", "2024-04-10", "2024-02-15"),
            ),
            "amount": amounts,
            "fee_amount": amounts,
            "usage_amount": 0.0,
            "discount_amount": 0.0,
        }
    )


def _payments() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "payment_id": [f"P{number}" for number in range(1, 8)],
            "invoice_id": ["A1", "A2", "A2", "A3", "A3", "B0", "B2"],
            "customer_id": ["C1"] * 5 + ["C2"] * 2,
            "paid_at": instants(
                "2024-01-10T10:00Z",  # A1 overpaid (35 of 30), on time
                "2024-02-10T10:00Z",  # A2 partial 10 of 40 ...
                "2024-02-20T10:00Z",  # ... settled after its due_end 2024-02-15T23:00Z
                "2024-03-20T12:00Z",  # A3 partial 20 of 50 after its due_end 2024-03-15T23:00Z
                "2024-04-05T12:00Z",  # A3 settled after A4 was issued
                "2023-12-05T15:00Z",  # B0 on time
                "2024-03-27T15:00Z",  # B2 settled after its due_end 2024-03-21T04:00Z
            ),
            "amount": [35.0, 10.0, 30.0, 20.0, 30.0, 25.0, 25.0],
            "method": "card",
        }
    )


def _messages() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "message_id": [f"M{number}" for number in range(7)],
            "invoice_id": ["B0", "B2", "B2", "B2", "B2", "B2", "B3"],
            "customer_id": "C2",
            "stage": "pre_due",
            "channel": ["email", "email", "email", "sms", "email", None, "push"],
            "tone": ["friendly"] * 5 + [None, "friendly"],
            "offer": ["none"] * 5 + [None, "none"],
            "decided_at": instants(
                *("2023-12-05T12:00Z", "2024-03-15T12:00Z", "2024-03-20T12:00Z"),
                *("2024-03-25T12:00Z", "2024-03-31T12:00Z", "2024-03-28T12:00Z"),
                "2024-04-01T04:00Z",
            ),
            "sent_at": instants(
                *("2023-12-05T12:00Z", "2024-03-15T12:00Z", "2024-03-20T12:00Z"),
                *("2024-03-25T12:00Z", "2024-03-31T12:00Z", None),
                "2024-04-01T04:00Z",  # exactly B3's cutoff: not before it
            ),
            "delivered_at": instants(
                *("2023-12-05T12:00:30Z", "2024-03-15T12:00:30Z", "2024-03-20T12:01Z", None),
                *("2024-04-01T03:59Z", None, "2024-04-01T04:00:10Z"),
            ),
            "opened_at": instants(
                "2023-12-05T17:00Z",  # 12:00 EST
                "2024-03-16T03:00Z",  # 23:00 EDT (on the 15th)
                "2024-03-21T05:00Z",  # 01:00 EDT
                *(None, "2024-04-01T04:30Z", None, None),  # M4 opened after B3's cutoff
            ),
            "clicked_at": instants(None, "2024-03-16T03:05Z", *([None] * 5)),
            "propensity": 0.5,
            "logging_policy": "test",
        }
    )


def _responses() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "response_id": [f"R{number}" for number in range(1, 10)],
            "customer_id": ["C1"] * 7 + ["C2"] * 2,
            "invoice_id": ["A2", "A3", "A3", "A3", "A2", None, None, "B2", None],
            "message_id": None,
            "type": [
                *("promise_to_pay", "promise_to_pay", "dispute", "dispute_resolved", "dispute"),
                *("hardship", "opt_out", "promise_to_pay", "promise_to_pay"),
            ],
            "occurred_at": instants(
                *("2024-02-16T09:00Z", "2024-03-18T09:00Z", "2024-03-16T10:00Z"),
                *("2024-03-22T10:00Z", "2024-02-16T10:00Z", "2023-12-20T10:00Z"),
                *("2024-02-10T10:00Z", "2024-03-21T15:00Z", "2024-03-22T15:00Z"),
            ),
            "channel": [None] * 6 + ["sms", None, None],
            "promised_date": dates(
                "2024-02-18",  # ends 2024-02-18T23:00Z; A2 settled later: broken
                "2024-04-10",  # ends after A4's cutoff: not broken (yet)
                *([None] * 5),
                "2024-03-28",  # ends 2024-03-29T04:00Z; B2 settled 03-27: kept
                "2024-03-25",  # no invoice: never settled, so broken once it ends
            ),
        }
    )


@pytest.fixture
def tables() -> Tables:
    """A fresh copy of the hand-built data set for each test."""
    return {
        "customers": _customers(),
        "invoices": _invoices(),
        "payments": _payments(),
        "messages": _messages(),
        "responses": _responses(),
    }


def _row(features: pd.DataFrame, invoice_id: str) -> pd.Series:
    return features.set_index("invoice_id").loc[invoice_id]


def _assert_values(row: pd.Series, expected: dict[str, object]) -> None:
    """Each expected value, floats to 1e-9 and None meaning null."""
    for name, value in expected.items():
        if value is None:
            assert pd.isna(row[name]), f"{name}: expected null, got {row[name]}"
        elif isinstance(value, float):
            assert row[name] == pytest.approx(value, rel=1e-9, abs=1e-9), name
        else:
            assert row[name] == value, f"{name}: expected {value!r}, got {row[name]!r}"


def _circular_distance(hour: float, target: float) -> float:
    gap = abs(hour - target) % 24
    return min(gap, 24 - gap)


# --- shape and types ------------------------------------------------------------------------


def test_one_row_per_invoice_in_catalogue_order_and_types(tables: Tables) -> None:
    features = late_payment_features(tables)
    assert list(features.columns) == ["invoice_id", "customer_id", "cutoff", *names(ALL_FEATURES)]
    assert sorted(features["invoice_id"]) == sorted(tables["invoices"]["invoice_id"])
    kinds = {"int": "int64", "float": "float64", "bool": "bool", "category": "object"}
    for feature in ALL_FEATURES:
        assert str(features[feature.name].dtype) == kinds[feature.kind], feature.name
    assert str(features["cutoff"].dtype) == "datetime64[ns, UTC]"
    ordered = features.sort_values(["cutoff", "invoice_id"], ignore_index=True)
    pd.testing.assert_frame_equal(features, ordered)


def test_cutoff_is_local_midnight_of_the_issue_date(tables: Tables) -> None:
    cutoffs = late_payment_features(tables).set_index("invoice_id")["cutoff"]
    assert cutoffs["A3"] == pd.Timestamp("2024-02-29T23:00Z")  # CET
    assert cutoffs["A4"] == pd.Timestamp("2024-03-31T22:00Z")  # CEST from 31 March
    assert cutoffs["B2"] == pd.Timestamp("2024-03-10T05:00Z")  # EST: DST starts at 02:00
    assert cutoffs["S1"] == pd.Timestamp("2024-01-31T16:00Z")


def test_nonexistent_midnight_shifts_forward_and_ambiguous_reads_standard_time() -> None:
    # Havana moves clocks 00:00 -> 01:00 CDT on 2024-03-10 and 01:00 CDT -> 00:00 CST on
    # 2024-11-03, so those midnights do not exist / happen twice.
    days = dates("2024-03-09", "2024-03-10", "2024-11-03")
    utc = local_midnight_to_utc(days, pd.Series(["America/Havana"] * 3))
    expected = instants("2024-03-09T05:00Z", "2024-03-10T05:00Z", "2024-11-03T05:00Z")
    pd.testing.assert_series_equal(utc, expected)


# --- history --------------------------------------------------------------------------------


def test_history_of_a_customer_with_a_late_streak(tables: Tables) -> None:
    # A4's cutoff t = 2024-03-31T22:00Z. A1 on time; A2 settled 4 d 11 h after its due_end;
    # A3 unpaid at t, due_end 2024-03-15T23:00Z, so 15 d 23 h late at t.
    a2_late, a3_late = 4 + 11 / 24, 15 + 23 / 24
    _assert_values(
        _row(late_payment_features(tables), "A4"),
        {
            "invoices_so_far": 3,
            "known_invoices": 3,
            "on_time_rate": 1 / 3,
            "mean_days_late": (0 + a2_late + a3_late) / 3,
            "max_days_late": a3_late,
            "last_days_late": a3_late,
            "late_streak": 2,
            "partial_payment_share": 2 / 3,  # A2 and A3 began with a partial payment, A1 not
            "days_since_last_late": a3_late,  # from A3's due_end to t
            "open_balance": 30.0,  # A1 overpaid counts 0, A2 0, A3 50 - 20
        },
    )


def test_history_one_month_earlier(tables: Tables) -> None:
    # A3's cutoff t = 2024-02-29T23:00Z: A2 is now settled, known late since 2024-02-15T23:00Z.
    _assert_values(
        _row(late_payment_features(tables), "A3"),
        {
            "invoices_so_far": 2,
            "known_invoices": 2,
            "on_time_rate": 0.5,
            "mean_days_late": (4 + 11 / 24) / 2,
            "last_days_late": 4 + 11 / 24,
            "late_streak": 1,
            "partial_payment_share": 0.5,
            "days_since_last_late": 14.0,
            "open_balance": 0.0,
        },
    )


def test_first_invoice_has_no_history(tables: Tables) -> None:
    _assert_values(
        _row(late_payment_features(tables), "A1"),
        {
            "invoices_so_far": 0,
            "known_invoices": 0,
            "on_time_rate": None,
            "mean_days_late": None,
            "last_days_late": None,
            "late_streak": 0,
            "partial_payment_share": None,
            "days_since_last_late": None,
            "open_balance": 0.0,
        },
    )


def test_zero_invoice_is_settled_when_issued(tables: Tables) -> None:
    # B3's t = 2024-04-01T04:00Z. B0 on time, B1 (amount 0) settled at issue, B2 settled
    # 2024-03-27T15:00Z, 6 d 11 h after its due_end 2024-03-21T04:00Z.
    _assert_values(
        _row(late_payment_features(tables), "B3"),
        {
            "invoices_so_far": 3,
            "known_invoices": 3,
            "on_time_rate": 2 / 3,
            "mean_days_late": (6 + 11 / 24) / 3,
            "last_days_late": 6 + 11 / 24,
            "late_streak": 1,
            "partial_payment_share": 0.0,  # B1 has no payment, so only B0 and B2 count
            "days_since_last_late": 11.0,
            "open_balance": 0.0,
        },
    )


def test_grace_moves_lateness_but_not_days_late(tables: Tables) -> None:
    # With 5 days of grace A2 (settled 2024-02-20T10:00Z, deadline 02-20T23:00Z) is on time;
    # A3 is late from 2024-03-20T23:00Z, 10 d 23 h before A4's cutoff.
    _assert_values(
        _row(late_payment_features(tables, grace_days=5.0), "A4"),
        {
            "known_invoices": 3,
            "on_time_rate": 2 / 3,
            "late_streak": 1,
            "days_since_last_late": 10 + 23 / 24,
            "mean_days_late": (0 + 4 + 11 / 24 + 15 + 23 / 24) / 3,
        },
    )


# --- bill -----------------------------------------------------------------------------------


def test_bill_against_the_trailing_invoices(tables: Tables) -> None:
    features = late_payment_features(tables)
    # A4 (80) after 30, 40, 50: mean 40, sample std 10, fee 20.
    _assert_values(
        _row(features, "A4"),
        {
            "amount": 80.0,
            "amount_to_fee": 4.0,
            "trailing_mean_amount": 40.0,
            "amount_ratio": 2.0,
            "amount_zscore": 4.0,
        },
    )
    # A3 (50) after 30, 40: mean 35, std sqrt(50), z = 15 / sqrt(50).
    _assert_values(_row(features, "A3"), {"amount_zscore": 15 / math.sqrt(50)})
    # A2 after A1 alone: no z-score with fewer than two invoices.
    _assert_values(
        _row(features, "A2"),
        {"trailing_mean_amount": 30.0, "amount_ratio": 4 / 3, "amount_zscore": None},
    )
    # B3 (25) after 25, 0, 25: mean 50/3, std 25/sqrt(3); C2's fee is 0.
    _assert_values(
        _row(features, "B3"),
        {
            "amount_to_fee": None,
            "trailing_mean_amount": 50 / 3,
            "amount_ratio": 1.5,
            "amount_zscore": math.sqrt(3) / 3,
        },
    )
    _assert_values(_row(features, "A1"), {"trailing_mean_amount": None, "amount_ratio": None})


def test_equal_trailing_amounts_give_no_zscore(tables: Tables) -> None:
    tables["invoices"].loc[tables["invoices"]["invoice_id"].isin(["A1", "A2", "A3"]), "amount"] = (
        0.1
    )
    _assert_values(_row(late_payment_features(tables), "A4"), {"amount_zscore": None})


# --- account --------------------------------------------------------------------------------


def test_account_reads_opt_outs_before_t_not_the_snapshot(tables: Tables) -> None:
    features = late_payment_features(tables)
    # C1 opted out of sms on 2024-02-10: after A2's cutoff, before A3's.
    before, after = _row(features, "A2"), _row(features, "A3")
    assert not before[[f"opted_out_{channel}" for channel in CHANNELS]].any()
    assert before["contactable_channels"] == 4  # consent to all but letter
    assert after["opted_out_sms"] and not after["opted_out_email"]
    assert after["contactable_channels"] == 3
    _assert_values(
        _row(features, "A4"),
        {
            "tenure_days": 121 + 22 / 24,  # 2023-12-01T00:00Z to 2024-03-31T22:00Z
            "plan": "basic",
            "monthly_fee": 20.0,
            "autopay": False,
            "language": "nl",
            "consent_email": True,
            "consent_letter": False,
        },
    )
    _assert_values(_row(features, "B3"), {"tenure_days": 291 + 4 / 24, "contactable_channels": 2})


# --- engagement -----------------------------------------------------------------------------


def test_channel_funnels_count_only_what_happened_before_t(tables: Tables) -> None:
    # B3's t = 2024-04-01T04:00Z: emails M1, M2, M4 in the 90 days (M0 is older), all delivered
    # before t, M1 and M2 opened (M4 only after t), M1 clicked. The sms M3 was never delivered;
    # the push M6 went out exactly at t; M5 is a no_contact decision.
    _assert_values(
        _row(late_payment_features(tables), "B3"),
        {
            "email_sent_90d": 3,
            "email_delivered_rate_90d": 1.0,
            "email_open_rate_90d": 2 / 3,
            "email_click_rate_90d": 1 / 3,
            "sms_sent_90d": 1,
            "sms_delivered_rate_90d": 0.0,
            "sms_open_rate_90d": None,
            "sms_click_rate_90d": None,
            "push_sent_90d": 0,
            "push_delivered_rate_90d": None,
            "reminders_30d": 4,
        },
    )


def test_open_hours_are_local_and_circular(tables: Tables) -> None:
    features = late_payment_features(tables)
    # Before B2 only M0 was opened, at 12:00 New York time (17:00Z).
    _assert_values(
        _row(features, "B2"),
        {
            "opens_total": 1,
            "open_hour_mean": 12.0,
            "open_hour_concentration": 1.0,
            "open_hour_mode": 12.0,
        },
    )
    # Before B3: opens at 12:00, 23:00 and 01:00. The 23:00 and 01:00 vectors average to
    # cos(15 deg) on the midnight axis, the 12:00 one points the other way: mean hour 0,
    # length (2 cos 15 deg - 1) / 3; every hour occurs once, so the mode is the smallest, 1.
    b3 = _row(features, "B3")
    assert b3["opens_total"] == 3
    assert _circular_distance(b3["open_hour_mean"], 0.0) < 1e-9
    assert 0.0 <= b3["open_hour_mean"] < 24.0
    expected_length = (2 * math.cos(math.pi / 12) - 1) / 3
    assert b3["open_hour_concentration"] == pytest.approx(expected_length, rel=1e-12)
    assert b3["open_hour_mode"] == 1.0


def test_opens_at_23_and_01_average_to_midnight(tables: Tables) -> None:
    tables["messages"] = tables["messages"][tables["messages"]["message_id"] != "M0"]
    b3 = _row(late_payment_features(tables), "B3")
    assert _circular_distance(b3["open_hour_mean"], 0.0) < 1e-9
    assert b3["open_hour_concentration"] == pytest.approx(math.cos(math.pi / 12), rel=1e-12)
    assert b3["open_hour_mode"] == 1.0  # 01 and 23 tie


# --- responses ------------------------------------------------------------------------------


def test_promises_disputes_and_hardship(tables: Tables) -> None:
    features = late_payment_features(tables)
    # A4: R1's promise (ended 2024-02-18T23:00Z, A2 settled 02-20) is broken, R2's has not
    # ended; A2's dispute is still open, A3's was resolved; the hardship (2023-12-20) is more
    # than 90 days before t.
    _assert_values(
        _row(features, "A4"),
        {
            "promises_made": 2,
            "promises_broken": 1,
            "disputes_total": 2,
            "disputes_open": 1,
            "hardship_90d": False,
        },
    )
    _assert_values(
        _row(features, "A3"),
        {
            "promises_made": 1,
            "promises_broken": 1,
            "disputes_total": 1,
            "disputes_open": 1,
            "hardship_90d": True,
        },
    )
    _assert_values(_row(features, "A1"), {"promises_made": 0, "hardship_90d": True})
    # B3: R8 kept (B2 settled before the promised day ended); R9 names no invoice and ended.
    _assert_values(_row(features, "B3"), {"promises_made": 2, "promises_broken": 1})


def test_a_customer_without_events_gets_empty_values(tables: Tables) -> None:
    _assert_values(
        _row(late_payment_features(tables), "S1"),
        {
            "invoices_so_far": 0,
            "open_balance": 0.0,
            "tenure_days": 30 + 16 / 24,
            "amount_to_fee": 1.0,
            "contactable_channels": 0,
            "email_sent_90d": 0,
            "email_delivered_rate_90d": None,
            "opens_total": 0,
            "open_hour_mean": None,
            "open_hour_mode": None,
            "promises_made": 0,
            "disputes_open": 0,
            "hardship_90d": False,
        },
    )


def test_optional_tables_may_be_absent(tables: Tables) -> None:
    required = {name: tables[name] for name in ("customers", "invoices", "payments")}
    features = late_payment_features(required)
    full = late_payment_features(tables)
    counts = [f"{channel}_sent_90d" for channel in CHANNELS] + ["reminders_30d", "opens_total"]
    counts += ["promises_made", "promises_broken", "disputes_total", "disputes_open"]
    assert (features[counts] == 0).all().all()
    rates = [name for name in names(ALL_FEATURES) if "_rate_90d" in name or "open_hour" in name]
    assert features[rates].isna().all().all()
    flags = [f"opted_out_{channel}" for channel in CHANNELS] + ["hardship_90d"]
    assert not features[flags].any().any()
    assert _row(features, "A4")["contactable_channels"] == 4
    history = [feature.name for feature in ALL_FEATURES if feature.family == "history"]
    pd.testing.assert_frame_equal(features[history], full[history])


# --- point in time --------------------------------------------------------------------------


def _append(table: pd.DataFrame, rows: dict[str, object]) -> pd.DataFrame:
    return pd.concat([table, pd.DataFrame(rows)], ignore_index=True).astype(table.dtypes)


def _with_later_events(tables: Tables) -> Tables:
    """``tables`` plus an event of every kind after every cutoff (the last is 2024-04-01)."""
    later = {name: table.copy() for name, table in tables.items()}
    later["invoices"] = _append(
        tables["invoices"],
        {
            "invoice_id": ["A5"],
            "customer_id": ["C1"],
            "issue_date": dates("2024-05-01"),
            "due_date": dates("2024-05-15"),
            "amount": [500.0],
            "fee_amount": [500.0],
            "usage_amount": [0.0],
            "discount_amount": [0.0],
        },
    )
    later["payments"] = _append(
        tables["payments"],
        {
            "payment_id": ["P8", "P9", "P10"],
            "invoice_id": ["B3", "S1", "A5"],
            "customer_id": ["C2", "C3", "C1"],
            "paid_at": instants("2024-05-02T10:00Z", "2024-05-02T11:00Z", "2024-05-02T12:00Z"),
            "amount": [25.0, 45.0, 500.0],
            "method": ["card"] * 3,
        },
    )
    late = instants("2024-05-03T10:00Z").iloc[0]
    messages = later["messages"]
    messages.loc[messages["message_id"] == "M3", "delivered_at"] = late  # a late delivery
    later["messages"] = _append(
        messages,
        {
            "message_id": ["M7", "M8"],
            "invoice_id": ["A4", "S1"],
            "customer_id": ["C1", "C3"],
            "stage": ["due", "due"],
            "channel": ["email", "sms"],
            "tone": ["firm", "firm"],
            "offer": ["none", "none"],
            "decided_at": [late, late],
            "sent_at": [late, late],
            "delivered_at": [late, late],
            "opened_at": [late, late],
            "clicked_at": [late, late],
            "propensity": [0.5, 0.5],
            "logging_policy": ["test", "test"],
        },
    )
    later["responses"] = _append(
        tables["responses"],
        {
            "response_id": [f"R{number}" for number in range(10, 15)],
            "customer_id": ["C2", "C2", "C3", "C1", "C1"],
            "invoice_id": ["B3", "B3", None, "A2", "A4"],
            "message_id": [None] * 5,
            "type": ["opt_out", "dispute", "hardship", "dispute_resolved", "promise_to_pay"],
            "occurred_at": instants(*["2024-05-04T10:00Z"] * 5),
            "channel": ["email", None, None, None, None],
            "promised_date": dates(None, None, None, None, "2024-05-05"),
        },
    )
    return later


def test_events_after_every_cutoff_change_nothing(tables: Tables) -> None:
    before = late_payment_features(tables)
    after = late_payment_features(_with_later_events(tables))
    after = after[after["invoice_id"].isin(before["invoice_id"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(after, before)


# --- simulated worlds -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def world_tables(tmp_path_factory: pytest.TempPathFactory) -> Tables:
    """A 300-customer, 6-month simulated world, written and loaded as a user's data set."""
    world = simulate_world(make_config(n_customers=300, n_months=6, seed=1))
    return load_dataset(write_world(world, tmp_path_factory.mktemp("world")))


@pytest.fixture(scope="module")
def world_features(world_tables: Tables) -> pd.DataFrame:
    return late_payment_features(world_tables)


def test_runs_on_a_simulated_world_with_values_where_they_must_exist(
    world_tables: Tables, world_features: pd.DataFrame
) -> None:
    features = world_features
    assert len(features) == len(world_tables["invoices"])
    assert features["invoice_id"].is_unique
    always = ["tenure_days", "plan", "language", "monthly_fee", "amount", "open_balance"]
    always += [feature.name for feature in ALL_FEATURES if feature.kind in ("int", "bool")]
    assert not features[always].isna().any().any()
    assert (features["open_balance"] >= 0).all()
    assert (features["known_invoices"] <= features["invoices_so_far"]).all()
    assert (features["late_streak"] <= features["known_invoices"]).all()
    assert (features["contactable_channels"].between(0, len(CHANNELS))).all()


def test_simulated_features_are_null_exactly_when_nothing_qualifies(
    world_features: pd.DataFrame,
) -> None:
    features = world_features
    assert (features["on_time_rate"].isna() == (features["known_invoices"] == 0)).all()
    assert features["on_time_rate"].dropna().between(0, 1).all()
    no_opens = features["opens_total"] == 0
    for name in ("open_hour_mean", "open_hour_concentration", "open_hour_mode"):
        assert (features[name].isna() == no_opens).all(), name
    assert features["open_hour_mean"].dropna().between(0, 24, inclusive="left").all()
    assert features["open_hour_concentration"].dropna().between(0, 1 + 1e-12).all()
    modes = features["open_hour_mode"].dropna()
    assert modes.between(0, 23).all() and (modes == np.floor(modes)).all()
    for channel in CHANNELS:
        rate = features[f"{channel}_delivered_rate_90d"]
        assert (rate.isna() == (features[f"{channel}_sent_90d"] == 0)).all(), channel
        assert rate.dropna().between(0, 1).all(), channel
    assert (features["amount_zscore"].notna() <= features["trailing_mean_amount"].notna()).all()


def _cut_at(tables: Tables, cut: pd.Timestamp) -> Tables:
    """The data set as it looked at ``cut``: later events removed, later timestamps emptied."""
    cut_day = cut.tz_localize(None).normalize() - pd.Timedelta(days=1)  # any zone's past day
    invoices = tables["invoices"][tables["invoices"]["issue_date"] <= cut_day]
    messages = tables["messages"]
    messages = messages[messages["decided_at"] < cut].copy()
    for column in ("sent_at", "delivered_at", "opened_at", "clicked_at"):
        messages[column] = messages[column].where(messages[column] < cut)
    messages = messages[messages["sent_at"].notna() | messages["channel"].isna()]
    return {
        "customers": tables["customers"],
        "invoices": invoices,
        "payments": tables["payments"][tables["payments"]["paid_at"] < cut],
        "messages": messages,
        "responses": tables["responses"][tables["responses"]["occurred_at"] < cut],
    }


@pytest.mark.parametrize("cut", ["2024-03-01T00:00Z", "2024-04-15T12:00Z", "2024-06-20T00:00Z"])
def test_features_use_nothing_from_after_the_cutoff(
    world_tables: Tables, world_features: pd.DataFrame, cut: str
) -> None:
    """Rows issued before ``cut`` look the same when every event from ``cut`` on is removed."""
    moment = pd.Timestamp(cut)
    cut_features = late_payment_features(_cut_at(world_tables, moment))
    full = world_features[world_features["invoice_id"].isin(cut_features["invoice_id"])]
    assert (cut_features["cutoff"] < moment).all()
    assert len(cut_features) > 100
    pd.testing.assert_frame_equal(cut_features, full.reset_index(drop=True))
