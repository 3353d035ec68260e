"""Point-in-time correctness: events at or after a cutoff never change a feature before it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from features.catalog import ALL_FEATURES, names
from features.profiles import profile_frame
from paynudge.validation import load_dataset
from simulation.world import make_config, simulate_world, write_world


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    world = simulate_world(make_config(n_customers=150, n_months=5, seed=21))
    folder = write_world(world, tmp_path_factory.mktemp("pit"))
    return load_dataset(Path(folder))


def future_events(
    tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp, rng: np.random.Generator, n: int
) -> dict[str, pd.DataFrame]:
    """Copies of ``tables`` with ``n`` random events of every kind at or after ``cutoff``."""
    later = lambda: cutoff + pd.to_timedelta(rng.uniform(0, 40, n), unit="D")  # noqa: E731
    invoices, customers = tables["invoices"], tables["customers"]
    pick = invoices.sample(n, replace=True, random_state=int(rng.integers(1 << 30)))
    payments = pd.DataFrame(
        {
            "payment_id": [f"FUTURE-P{i}" for i in range(n)],
            "invoice_id": pick["invoice_id"].to_numpy(),
            "customer_id": pick["customer_id"].to_numpy(),
            "paid_at": later(),
            "amount": pick["amount"].to_numpy() + 1.0,
            "method": "card",
        }
    )
    sent = later()
    messages = pd.DataFrame(
        {
            "message_id": [f"FUTURE-M{i}" for i in range(n)],
            "invoice_id": pick["invoice_id"].to_numpy(),
            "customer_id": pick["customer_id"].to_numpy(),
            "stage": "due",
            "channel": rng.choice(["email", "sms", "push", "call", "letter"], n),
            "tone": "firm",
            "offer": "none",
            "decided_at": sent,
            "sent_at": sent,
            "delivered_at": sent + pd.Timedelta(minutes=1),
            "opened_at": sent + pd.Timedelta(hours=1),
            "clicked_at": sent + pd.Timedelta(hours=2),
            "propensity": 0.5,
            "logging_policy": "future",
        }
    )
    kinds = rng.choice(["promise_to_pay", "dispute", "hardship", "opt_out"], n)
    responses = pd.DataFrame(
        {
            "response_id": [f"FUTURE-R{i}" for i in range(n)],
            "customer_id": pick["customer_id"].to_numpy(),
            "invoice_id": pick["invoice_id"].to_numpy(),
            "message_id": None,
            "type": kinds,
            "occurred_at": later(),
            "channel": np.where(kinds == "opt_out", "email", None),
            "promised_date": pd.Series(
                [cutoff.tz_convert(None).normalize() + pd.Timedelta(days=3)] * n
            ).where(kinds == "promise_to_pay"),
        }
    )
    issue = cutoff.tz_convert(None).normalize() + pd.Timedelta(days=2)
    new_invoices = pick.assign(
        invoice_id=[f"FUTURE-I{i}" for i in range(n)],
        issue_date=issue,
        due_date=issue + pd.Timedelta(days=14),
    )
    alive = customers[~customers["customer_id"].isin(tables["churn"]["customer_id"])]
    churn = pd.DataFrame(
        {
            "customer_id": alive["customer_id"].head(n).to_numpy(),
            "churned_at": cutoff + pd.Timedelta(hours=1),
            "reason": "moved",
        }
    )
    extended = dict(tables)
    for name, extra in (
        ("payments", payments),
        ("messages", messages),
        ("responses", responses),
        ("invoices", new_invoices),
        ("churn", churn),
    ):
        extended[name] = pd.concat([tables[name], extra], ignore_index=True)
    return extended


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(position=st.floats(0.15, 0.95), seed=st.integers(0, 2**31 - 1), n=st.integers(1, 60))
def test_appending_future_events_changes_no_feature(
    tables: dict[str, pd.DataFrame], position: float, seed: int, n: int
) -> None:
    start = tables["invoices"]["issue_date"].min().tz_localize("UTC")
    end = tables["payments"]["paid_at"].max()
    cutoff = (start + (end - start) * position).floor("s")
    before = profile_frame(tables, cutoff)
    after = profile_frame(future_events(tables, cutoff, np.random.default_rng(seed), n), cutoff)
    pd.testing.assert_frame_equal(
        before[names(ALL_FEATURES)], after[names(ALL_FEATURES)], check_exact=False, rtol=1e-9
    )


def test_events_before_the_cutoff_do_count(tables: dict[str, pd.DataFrame]) -> None:
    """The converse: the same profile a day later sees more history (the test can fail)."""
    cutoff = tables["payments"]["paid_at"].quantile(0.5)
    early = profile_frame(tables, cutoff)
    late = profile_frame(tables, cutoff + pd.Timedelta(days=30))
    assert (late["invoices_so_far"] >= early["invoices_so_far"]).all()
    assert late["invoices_so_far"].sum() > early["invoices_so_far"].sum()
