"""Labels of the three datasets against examples worked out by hand (times in UTC).

Customer L1 lives in Amsterdam (UTC+1 in winter, +2 from 31 March): the end of a due date
D is D 23:00 UTC in winter. L2 never churns and pays one late invoice in June, which dates the
data set (its end, ``as_of``, is the latest event: 2024-06-15 12:00 UTC).
"""

from __future__ import annotations

import pandas as pd
import pytest

from features.datasets import build_datasets
from paynudge.vocabulary import CHANNELS


def utc(*values: str | None) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values), utc=True), dtype="datetime64[ns, UTC]")


def day(*values: str) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values)), dtype="datetime64[ns]")


@pytest.fixture
def tables() -> dict[str, pd.DataFrame]:
    customers = pd.DataFrame(
        {
            "customer_id": ["L1", "L2"],
            "signup_date": day("2023-01-01", "2023-01-01"),
            "plan": ["basic", "standard"],
            "monthly_fee": [20.0, 30.0],
            "autopay": [False, False],
            "timezone": ["Europe/Amsterdam", "Europe/Amsterdam"],
            "language": ["nl", "nl"],
            **{f"consent_{c}": [True, True] for c in CHANNELS},
            **{f"opted_out_{c}": [False, False] for c in CHANNELS},
            "name": ["L one", "L two"],
            "email": [None, None],
            "phone": [None, None],
        }
    )
    amounts = [30.0, 40.0, 50.0, 60.0, 10.0]
    invoices = pd.DataFrame(
        {
            "invoice_id": ["X1", "X2", "X3", "X4", "Y1"],
            "customer_id": ["L1", "L1", "L1", "L1", "L2"],
            "issue_date": day("2024-01-01", "2024-02-01", "2024-03-01", "2024-06-01", "2024-01-05"),
            "due_date": day("2024-01-15", "2024-02-15", "2024-03-15", "2024-06-30", "2024-01-19"),
            "amount": amounts,
            "fee_amount": amounts,
            "usage_amount": 0.0,
            "discount_amount": 0.0,
        }
    )
    payments = pd.DataFrame(
        {
            "payment_id": ["P1", "P2a", "P2b", "P3"],
            "invoice_id": ["X1", "X2", "X2", "Y1"],
            "customer_id": ["L1", "L1", "L1", "L2"],
            "paid_at": utc(
                "2024-01-15T20:00Z", "2024-02-10T10:00Z", "2024-02-20T23:00Z", "2024-06-15T12:00Z"
            ),
            "amount": [30.0, 20.0, 20.0, 10.0],
            "method": ["card"] * 4,
        }
    )
    sent = utc("2024-01-10T09:00Z", "2024-02-16T09:00Z", "2024-02-20T09:00Z", None)
    messages = pd.DataFrame(
        {
            "message_id": ["M1", "M2", "M3", "M4"],
            "invoice_id": ["X1", "X2", "X2", "X3"],
            "customer_id": ["L1"] * 4,
            "stage": ["pre_due", "overdue_3", "overdue_10", "due"],
            "channel": ["sms", "email", "letter", None],
            "tone": ["friendly", "neutral", "firm", None],
            "offer": ["none", "none", "none", None],
            "decided_at": utc(
                "2024-01-10T09:00Z", "2024-02-16T09:00Z", "2024-02-20T09:00Z", "2024-03-15T06:00Z"
            ),
            "sent_at": sent,
            "delivered_at": sent,
            "opened_at": utc("2024-01-11T08:00Z", "2024-02-17T10:00Z", None, None),
            "clicked_at": utc(None, None, None, None),
            "propensity": [0.7, 0.7, 0.1, 0.05],
            "logging_policy": ["ladder"] * 4,
        }
    )
    churn = pd.DataFrame(
        {"customer_id": ["L1"], "churned_at": utc("2024-03-20T10:00Z"), "reason": ["moved"]}
    )
    return {
        "customers": customers,
        "invoices": invoices,
        "payments": payments,
        "messages": messages,
        "churn": churn,
    }


def built(tables: dict[str, pd.DataFrame], tmp_path, grace: float = 0.0) -> dict[str, pd.DataFrame]:  # type: ignore[no-untyped-def]
    manifests = build_datasets(tables, tmp_path, grace_days=grace)
    return {m.name: pd.read_parquet(m.path) for m in manifests}


def test_late_payment_labels_and_days_late(tables, tmp_path) -> None:  # type: ignore[no-untyped-def]
    late = built(tables, tmp_path)["late_payment"].set_index("invoice_id")
    # X4 is due 2024-06-30, after the data end, and unpaid: censored, not in the dataset.
    assert list(late.index) == ["X1", "Y1", "X2", "X3"]
    assert not late.at["X1", "late"] and late.at["X1", "days_late"] == 0.0
    # X2: due end 2024-02-15 23:00, settled by the second part 2024-02-20 23:00: 5 days late.
    assert late.at["X2", "late"] and late.at["X2", "days_late"] == pytest.approx(5.0)
    # X3: never paid; 2024-03-15 23:00 to the data end 2024-06-15 12:00 is 91 days 13 hours.
    assert late.at["X3", "late"] and late.at["X3", "days_late"] == pytest.approx(91 + 13 / 24)
    # Y1: due end 2024-01-19 23:00, paid 2024-06-15 12:00.
    assert late.at["Y1", "late"] and late.at["Y1", "days_late"] == pytest.approx(147.5416667)


def test_grace_period_moves_the_late_line(tables, tmp_path) -> None:  # type: ignore[no-untyped-def]
    late = built(tables, tmp_path, grace=6.0)["late_payment"].set_index("invoice_id")
    assert not late.at["X2", "late"]  # 5 days late is inside a 6-day grace
    assert late.at["X3", "late"]


def test_churn_labels_per_month_end(tables, tmp_path) -> None:  # type: ignore[no-untyped-def]
    churn = built(tables, tmp_path)["churn"]
    rows = {(r.customer_id, str(r.cutoff.date())): r.churned_90d for r in churn.itertuples()}
    # Month ends from February; a row needs 90 days of future before 2024-06-15 12:00, so only
    # 1 February and 1 March qualify. L1 churns on 20 March, so it has no row on 1 April anyway.
    assert rows == {
        ("L1", "2024-02-01"): True,
        ("L2", "2024-02-01"): False,
        ("L1", "2024-03-01"): True,
        ("L2", "2024-03-01"): False,
    }


def test_send_time_labels(tables, tmp_path) -> None:  # type: ignore[no-untyped-def]
    send = built(tables, tmp_path)["send_time"].set_index("message_id")
    # Letters (opens unobservable) and no-contact decisions are not send-time rows.
    assert list(send.index) == ["M1", "M2"]
    assert send.at["M1", "opened_24h"]  # opened 23 h after sending
    assert not send.at["M2", "opened_24h"]  # opened 25 h after sending
    # Amsterdam is UTC+1 in January: 09:00 UTC is 10:00 local, on a Wednesday.
    assert send.at["M1", "send_hour"] == 10 and send.at["M1", "send_weekday"] == 2


def test_manifest_counts_censored_rows(tables, tmp_path) -> None:  # type: ignore[no-untyped-def]
    manifests = {m.name: m for m in build_datasets(tables, tmp_path)}
    assert manifests["late_payment"].censored_rows == 1
    assert manifests["late_payment"].rows == 4
    assert manifests["late_payment"].data_hash.startswith("sha256:")
    assert (tmp_path / "late_payment.manifest.json").exists()
