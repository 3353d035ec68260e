"""Contact counts of the re-check against a row-by-row count of the same definition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from dispatcher.recheck import COUNT_COLUMNS, contact_counts

START = datetime(2025, 7, 10, tzinfo=UTC)


class History:
    """A session whose only query answers the contact history rows given."""

    def __init__(self, rows: list[tuple]) -> None:
        self.rows = rows

    def execute(self, _statement: object) -> History:
        return self

    def all(self) -> list[tuple]:
        return self.rows


def by_hand(rows: pd.DataFrame, at: pd.DatetimeIndex, history: list[tuple]) -> np.ndarray:
    counts = np.zeros((len(rows), len(COUNT_COLUMNS)), dtype=np.int64)
    pairs = zip(rows["invoice_id"], rows["customer_id"], strict=True)
    for i, (invoice, customer) in enumerate(pairs):
        for h_invoice, h_customer, channel, when in history:
            if h_customer != customer or when is None or not when < at[i]:
                continue
            same, age = h_invoice == invoice, at[i] - when
            counts[i] += [
                same and channel == "call" and age < timedelta(days=7),
                same and age < timedelta(days=7),
                age < timedelta(hours=24),
                same,
            ]
    return counts


@pytest.mark.parametrize("seed", range(40))
def test_contact_counts_match_a_count_by_hand(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, 30)), int(rng.integers(0, 50))
    rows = pd.DataFrame({"invoice_id": [f"I{i}" for i in rng.integers(0, 8, n)],
                         "customer_id": [f"C{c}" for c in rng.integers(0, 6, n)]})  # fmt: skip
    at = pd.DatetimeIndex([START + timedelta(minutes=int(x)) for x in rng.integers(0, 20_000, n)])
    history = [
        (f"I{rng.integers(0, 8)}", f"C{rng.integers(0, 6)}", str(rng.choice(["call", "email"])),
         None if rng.random() < 0.1 else START + timedelta(minutes=int(rng.integers(-9e3, 2e4))))
        for _ in range(m)
    ]  # fmt: skip
    history += [("I0", rows["customer_id"][0], "call", at[0].to_pydatetime())]  # same instant
    counts = contact_counts(History(history), rows, at)  # type: ignore[arg-type]
    assert list(counts.columns) == list(COUNT_COLUMNS)
    np.testing.assert_array_equal(counts.to_numpy(), by_hand(rows, at, history))
