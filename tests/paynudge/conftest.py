"""A tiny valid data set built by hand, and a writer for it in either file format.

Three customers, four invoices, three payments, three messages (one a logged no_contact
decision), two responses and one churn, with the dtypes the simulator writes: object ids,
naive midnight ``datetime64[ns]`` dates, ``datetime64[ns, UTC]`` timestamps, bool and float64.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from paynudge.vocabulary import CHANNELS, consent_column, opt_out_column

Tables = dict[str, pd.DataFrame]
WriteDataset = Callable[[Tables, str], Path]


def dates(*values: str | None) -> pd.Series:
    """Calendar dates as the simulator stores them: naive, at midnight."""
    return pd.Series(pd.to_datetime(list(values)), dtype="datetime64[ns]")


def instants(*values: str | None) -> pd.Series:
    """Timestamps as the simulator stores them: in UTC."""
    return pd.Series(pd.to_datetime(list(values), utc=True), dtype="datetime64[ns, UTC]")


def _customers() -> pd.DataFrame:
    customers = pd.DataFrame(
        {
            "customer_id": ["C1", "C2", "C3"],
            "signup_date": dates("2023-05-01", "2023-06-15", "2023-07-30"),
            "plan": ["basic", "premium", "business"],
            "monthly_fee": [20.0, 45.5, 120.0],
            "autopay": [True, False, False],
            "timezone": ["Europe/Amsterdam", "Europe/London", "America/New_York"],
            "language": ["nl", "en", "en"],
        }
    )
    for position, channel in enumerate(CHANNELS):
        customers[consent_column(channel)] = [True, position % 2 == 0, False]
        customers[opt_out_column(channel)] = [False, False, channel == "sms"]
    customers["name"] = ["Ada Jansen", "Ben Smith", "Cleo Park"]
    customers["email"] = ["ada@example.org", None, "cleo@example.com"]
    customers["phone"] = [None, "+44 20 7946 0000", "+1 212 555 0100"]
    return customers


def _invoices() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "invoice_id": ["I1", "I2", "I3", "I4"],
            "customer_id": ["C1", "C2", "C3", "C1"],
            "issue_date": dates("2024-01-01", "2024-01-01", "2024-01-01", "2024-02-01"),
            "due_date": dates("2024-01-15", "2024-01-15", "2024-01-15", "2024-02-15"),
            "amount": [25.0, 50.0, 110.0, 20.0],
            "fee_amount": [20.0, 45.5, 120.0, 20.0],
            "usage_amount": [5.0, 4.5, 0.0, 0.0],
            "discount_amount": [0.0, 0.0, 10.0, 0.0],
        }
    )


def _payments() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "payment_id": ["P1", "P2", "P3"],
            "invoice_id": ["I1", "I2", "I3"],
            "customer_id": ["C1", "C2", "C3"],
            "paid_at": instants(
                "2024-01-10T08:00:00Z", "2024-01-20T17:45:00Z", "2024-01-14T23:30:00Z"
            ),
            "amount": [25.0, 50.0, 110.0],
            "method": ["direct_debit", "card", "bank_transfer"],
        }
    )


def _messages() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "message_id": ["M1", "M2", "M3"],
            "invoice_id": ["I2", "I3", "I4"],
            "customer_id": ["C2", "C3", "C1"],
            "stage": ["pre_due", "pre_due", "overdue"],
            "channel": ["email", None, "sms"],
            "tone": ["friendly", None, "firm"],
            "offer": ["none", None, "extension"],
            "decided_at": instants(
                "2024-01-12T06:00:00Z", "2024-01-12T06:00:00Z", "2024-02-17T06:00:00Z"
            ),
            "sent_at": instants("2024-01-12T09:00:00Z", None, "2024-02-17T10:00:00Z"),
            "delivered_at": instants("2024-01-12T09:00:05Z", None, "2024-02-17T10:00:02Z"),
            "opened_at": instants("2024-01-12T12:30:00Z", None, None),
            "clicked_at": instants("2024-01-12T12:31:00Z", None, None),
            "propensity": [0.25, 0.6, 1.0],
            "logging_policy": ["epsilon_greedy_v1"] * 3,
        }
    )


def _responses() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "response_id": ["R1", "R2"],
            "customer_id": ["C2", "C3"],
            "invoice_id": ["I2", None],
            "message_id": ["M1", None],
            "type": ["promise_to_pay", "opt_out"],
            "occurred_at": instants("2024-01-12T12:35:00Z", "2024-01-13T08:00:00Z"),
            "channel": [None, "sms"],
            "promised_date": dates("2024-01-20", None),
        }
    )


def _churn() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["C3"],
            "churned_at": instants("2024-03-01T00:00:00Z"),
            "reason": ["competitor"],
        }
    )


@pytest.fixture
def valid_tables() -> Tables:
    """A fresh copy of the valid data set for each test to mutate."""
    return {
        "customers": _customers(),
        "invoices": _invoices(),
        "payments": _payments(),
        "messages": _messages(),
        "responses": _responses(),
        "churn": _churn(),
    }


def _write_tables(tables: Tables, directory: Path, file_format: str) -> Path:
    """Write ``tables`` into ``directory`` as ``parquet`` or ``csv`` files; return the folder."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        path = directory / f"{name}.{file_format}"
        if file_format == "parquet":
            table.to_parquet(path, index=False)
        else:
            table.to_csv(path, index=False)
    return directory


@pytest.fixture
def write_dataset(tmp_path: Path) -> WriteDataset:
    """Write tables as a data set of one format under the test's temporary folder."""
    return lambda tables, file_format: _write_tables(tables, tmp_path / file_format, file_format)
