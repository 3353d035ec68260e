"""The simulated world: determinism, contracts, documented marginals and log invariants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from paynudge.errors import ConfigError
from simulation.summary import TARGETS, marginals, within_targets
from simulation.world import World, make_config, simulate_world


def test_same_seed_gives_the_same_world() -> None:
    first = simulate_world(make_config(n_customers=300, n_months=4, seed=5))
    again = simulate_world(make_config(n_customers=300, n_months=4, seed=5))
    for name, table in first.tables.items():
        pd.testing.assert_frame_equal(table, again.tables[name], obj=name)


def test_another_seed_gives_another_world() -> None:
    first = simulate_world(make_config(n_customers=300, n_months=4, seed=5))
    other = simulate_world(make_config(n_customers=300, n_months=4, seed=6))
    assert not first.tables["invoices"]["amount"].equals(other.tables["invoices"]["amount"])


def test_simulated_tables_meet_the_data_contract(small_world_dir) -> None:  # type: ignore[no-untyped-def]
    from paynudge.validation import validate_dataset

    report = validate_dataset(small_world_dir)
    assert report.ok, "\n".join(str(p) for p in report.problems)
    assert set(report.row_counts) == {
        "customers", "invoices", "payments", "messages", "responses", "churn",
    }  # fmt: skip


def test_marginals_fall_in_their_documented_ranges(small_world: World) -> None:
    values = marginals(small_world.tables)
    inside = within_targets(values)
    assert set(inside) == set(TARGETS)
    outside = {name: round(values[name], 4) for name, ok in inside.items() if not ok}
    assert not outside, f"marginals outside their targets {TARGETS}: {outside}"
    assert values["open_rate_sms"] > values["open_rate_email"]


def test_payments_never_exceed_the_invoice_amount(small_world: World) -> None:
    invoices = small_world.tables["invoices"].set_index("invoice_id")
    paid = small_world.tables["payments"].groupby("invoice_id")["amount"].sum()
    assert (paid <= invoices.loc[paid.index, "amount"] + 0.005).all()
    assert (small_world.tables["payments"]["amount"] > 0).all()


def test_logged_messages_respect_the_biller_rules(small_world: World) -> None:
    tables = small_world.tables
    messages = tables["messages"]
    customers = tables["customers"].set_index("customer_id")
    sent = messages[messages["channel"].notna()]
    consent = np.array(
        [
            customers.at[c, f"consent_{ch}"]
            for c, ch in zip(sent["customer_id"], sent["channel"], strict=True)
        ]
    )
    assert consent.all(), "a message went to a channel without consent"
    letters = sent[sent["channel"] == "letter"]
    assert set(letters["stage"]) <= {"overdue_3", "overdue_10", "overdue_30"}
    opt_outs = tables["responses"].query("type == 'opt_out'")
    first_opt_out = opt_outs.groupby(["customer_id", "channel"])["occurred_at"].min()
    later = sent.join(first_opt_out.rename("opted_out_at"), on=["customer_id", "channel"])
    assert not (later["sent_at"] > later["opted_out_at"]).any(), "message after an opt-out"
    per_day = sent.groupby(["customer_id", sent["decided_at"].dt.floor("D")]).size()
    assert per_day.max() <= 2  # one per local day; a UTC day can straddle two local days


def test_propensities_are_valid_and_exploration_is_logged(small_world: World) -> None:
    messages = small_world.tables["messages"]
    assert messages["propensity"].between(0, 1, inclusive="right").all()
    no_contact = messages["channel"].isna()
    assert no_contact.any() and (~no_contact).any()
    assert messages.loc[no_contact, "sent_at"].isna().all()
    assert messages.loc[~no_contact, "sent_at"].notna().all()
    assert (messages["sent_at"].dropna() >= messages.loc[~no_contact, "decided_at"]).all()


def test_send_hours_stay_in_the_local_window(small_world: World) -> None:
    messages = small_world.tables["messages"].dropna(subset=["sent_at"])
    zones = messages["customer_id"].map(
        small_world.tables["customers"].set_index("customer_id")["timezone"]
    )
    for zone, rows in messages.groupby(zones).groups.items():
        hours = messages.loc[rows, "sent_at"].dt.tz_convert(str(zone)).dt.hour
        assert hours.between(8, 20).all(), f"send outside 08:00-21:00 local in {zone}"


def test_bad_settings_give_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="n_customers"):
        make_config(n_customers=0)
    with pytest.raises(ConfigError, match="start: expected a date"):
        make_config(start="next tuesday")
