"""Trait effects: the documented behaviour shows up in the ground truth and in the data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from paynudge.errors import DataError
from simulation.summary import local_due_end, settled_at
from simulation.truth import GroundTruth, response_probabilities
from simulation.world import World


@pytest.fixture(scope="module")
def truth(small_world: World) -> GroundTruth:
    return GroundTruth.from_world(small_world)


def pre_due_decisions(world: World) -> pd.DataFrame:
    messages = world.tables["messages"]
    return messages[messages["stage"] == "pre_due"].reset_index(drop=True)


def late_flags(world: World) -> pd.Series:
    tables = world.tables
    invoices = tables["invoices"]
    due_end = local_due_end(invoices, tables["customers"])
    settled = settled_at(invoices, tables["payments"])
    closed = due_end <= tables["payments"]["paid_at"].max()
    late = settled.isna() | (settled > due_end)
    return pd.Series(late[closed].to_numpy(), index=invoices.loc[closed, "invoice_id"])


def test_bill_shock_raises_lateness(small_world: World) -> None:
    late = late_flags(small_world)
    context = small_world.invoice_context.set_index("invoice_id").loc[late.index]
    shocked = context["bill_ratio"] > 2.0
    usual = context["bill_ratio"].between(0.8, 1.2)
    assert shocked.sum() > 200
    assert late[shocked.to_numpy()].mean() > late[usual.to_numpy()].mean() + 0.05


def test_reminders_help_forgetful_customers_most(small_world: World, truth: GroundTruth) -> None:
    decisions = pre_due_decisions(small_world)
    send = decisions["decided_at"]
    ids = decisions["invoice_id"]
    email = response_probabilities(truth, ids, "email", "friendly", "none", send)
    nothing = response_probabilities(truth, ids, None, None, None, send)
    gain = (email["p_pay_by_due"] - nothing["p_pay_by_due"]).to_numpy()
    forgetful = truth.customers.loc[decisions["customer_id"], "forgetfulness"].to_numpy()
    assert (gain >= -1e-12).all()
    high, low = forgetful >= np.quantile(forgetful, 0.75), forgetful <= np.quantile(forgetful, 0.25)
    assert gain[high].mean() > 2 * gain[low].mean()


def test_reminders_raise_payment_in_the_logged_data(small_world: World) -> None:
    decisions = pre_due_decisions(small_world)
    context = small_world.invoice_context.set_index("invoice_id").loc[decisions["invoice_id"]]
    paid = (context["resolved_at"] <= context["due_at"]).to_numpy()
    contacted = decisions["channel"].notna().to_numpy()
    assert (~contacted).sum() > 100
    assert paid[contacted].mean() > paid[~contacted].mean() + 0.05


def test_firm_tone_raises_churn_only_for_those_it_annoys(
    small_world: World, truth: GroundTruth
) -> None:
    decisions = pre_due_decisions(small_world)
    ids, send = decisions["invoice_id"], decisions["decided_at"]
    firm = response_probabilities(truth, ids, "sms", "firm", "none", send)["p_churn"].to_numpy()
    neutral = response_probabilities(truth, ids, "sms", "neutral", "none", send)
    neutral_churn = neutral["p_churn"].to_numpy()
    response = truth.customers.loc[decisions["customer_id"], "firm_response"].to_numpy()
    assert (firm[response < -0.5] > neutral_churn[response < -0.5]).all()
    np.testing.assert_allclose(firm[response > 0], neutral_churn[response > 0])


def test_opening_depends_on_the_send_hour(small_world: World, truth: GroundTruth) -> None:
    decisions = pre_due_decisions(small_world).head(2000)
    person = truth.customers.loc[decisions["customer_id"]]
    day = decisions["decided_at"].dt.floor("D")
    zones = person["timezone"].to_numpy()

    def at_local_hour(hours: np.ndarray) -> pd.Series:
        local = [
            (d.tz_convert(z).normalize() + pd.Timedelta(hours=float(h))).tz_convert("UTC")
            for d, z, h in zip(day, zones, hours, strict=True)
        ]
        return pd.Series(pd.DatetimeIndex(local))

    preferred = np.round(person["preferred_hour"].to_numpy()) % 24
    opposite = (preferred + 12) % 24
    ids = decisions["invoice_id"]
    best = response_probabilities(truth, ids, "email", "neutral", "none", at_local_hour(preferred))
    worst = response_probabilities(truth, ids, "email", "neutral", "none", at_local_hour(opposite))
    assert best["p_open"].mean() > worst["p_open"].mean() + 0.05


def test_truth_matches_what_the_simulation_did(small_world: World, truth: GroundTruth) -> None:
    """At the due stage nothing else can happen before the due moment: compare means."""
    messages = small_world.tables["messages"]
    due = messages[messages["stage"] == "due"]
    earlier = messages[(messages["stage"] == "pre_due") & messages["channel"].notna()]
    attempts = due["invoice_id"].map(earlier.groupby("invoice_id").size()).fillna(0).astype(int)
    send = due["sent_at"].fillna(due["decided_at"])
    p = response_probabilities(
        truth, due["invoice_id"], due["channel"], due["tone"], due["offer"], send, attempts
    )
    context = small_world.invoice_context.set_index("invoice_id").loc[due["invoice_id"]]
    paid = (context["resolved_at"] <= context["due_at"]).to_numpy()
    tolerance = 3 * np.sqrt(p["p_pay_by_due"].mean() / len(due))
    assert abs(paid.mean() - p["p_pay_by_due"].mean()) < tolerance
    observed = due["channel"].isin(["email", "sms", "push", "call"]).to_numpy()
    opened = due["opened_at"].notna().to_numpy()[observed]
    assert abs(opened.mean() - p["p_open"].to_numpy()[observed].mean()) < 0.02


def test_truth_rejects_unknown_invoices_and_actions(truth: GroundTruth) -> None:
    now = pd.Series(pd.to_datetime(["2024-03-01T10:00:00Z"]))
    some = truth.invoices.index[:1]
    with pytest.raises(DataError, match="unknown invoice 'NOPE'"):
        response_probabilities(truth, ["NOPE"], "email", "friendly", "none", now)
    with pytest.raises(DataError, match="channel: expected one of"):
        response_probabilities(truth, some, "fax", "friendly", "none", now)


def test_truth_round_trips_through_disk(small_world_dir, truth: GroundTruth) -> None:  # type: ignore[no-untyped-def]
    loaded = GroundTruth.load(small_world_dir)
    pd.testing.assert_frame_equal(
        loaded.customers, truth.customers, check_dtype=False, check_index_type=False
    )
    assert loaded.config == truth.config
