"""Property tests: whatever the decision service answers, the dispatcher never sends a message
for a paid invoice, to an opted-out (or unconsented) channel, inside quiet hours or above a cap.

The service here is adversarial: it ignores every guardrail and picks random actions at random
instants (quiet hours included) before the deadline. Customers get random consent, opt-outs
(flags and opt-out responses at random instants), invoices random due dates, payments random
instants. Everything the dispatcher sent must still satisfy the rules at its send instant.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from dispatcher.cycle import Dispatcher
from dispatcher.loading import load_tables
from dispatcher.state import Base, Message
from paynudge.vocabulary import CHANNELS, OFFERS, TONES
from serving.client import DecisionClient

START = pd.Timestamp("2024-05-01", tz="UTC")
ZONES = ("Europe/Amsterdam", "America/New_York", "Asia/Tokyo")
HORIZON_DAYS = 40


def adversarial(rng: random.Random):
    def handler(http: httpx.Request) -> httpx.Response:
        if http.url.path == "/feedback":
            return httpx.Response(503, text="the adversary ignores feedback")
        decisions = []
        for request in json.loads(http.content)["requests"]:
            now = pd.Timestamp(request["now"])
            deadline = pd.Timestamp(request["send_before"])
            contact = rng.random() < 0.9
            send = now + (deadline - now) * rng.random()
            channel, tone, offer = rng.choice(CHANNELS), rng.choice(TONES), rng.choice(OFFERS)
            decisions.append({
                "customer_id": request["customer_id"], "invoice_id": request["invoice_id"],
                "late_payment_probability": 0.5, "churn_probability": 0.1, "cold_start": False,
                "explanation": None, "decision_id": str(uuid.uuid4()),
                "action": f"{channel}/{tone}/{offer}" if contact else "no_contact",
                "channel": channel if contact else None, "tone": tone if contact else None,
                "offer": offer if contact else None,
                "send_at": send.isoformat() if contact else None,
                "send_at_local": send.isoformat() if contact else None,
                "timezone": request["timezone"], "propensity": 0.1, "open_probability": None,
                "expected_reward": 0.0, "guardrail_reasons": [], "model_versions": {},
                "policy_version": "adversary/1",
            })  # fmt: skip
        return httpx.Response(200, json={"decisions": decisions})

    return handler


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, pd.DataFrame]:
    n_customers = draw(st.integers(1, 4))
    flags = st.sampled_from([True, True, True, False])
    customers = pd.DataFrame([
        {"customer_id": f"C{c}", "timezone": draw(st.sampled_from(ZONES)),
         "language": draw(st.sampled_from(["en", "nl"])), "name": f"Customer {c}",
         "email": f"c{c}@example.com", "phone": f"+3160000000{c}",
         **{f"consent_{ch}": draw(flags) for ch in CHANNELS},
         **{f"opted_out_{ch}": draw(st.booleans()) and draw(flags) for ch in CHANNELS}}
        for c in range(n_customers)
    ])  # fmt: skip
    invoices, payments, responses = [], [], []
    for i in range(draw(st.integers(2, 6))):
        customer = f"C{draw(st.integers(0, n_customers - 1))}"
        due = (START + pd.Timedelta(days=draw(st.integers(-12, 20)))).normalize().tz_localize(None)
        invoices.append({"invoice_id": f"I{i}", "customer_id": customer,
                         "issue_date": due - pd.Timedelta(days=14), "due_date": due,
                         "amount": 50.0})  # fmt: skip
        if draw(st.booleans()):
            paid = START + pd.Timedelta(minutes=draw(st.integers(0, HORIZON_DAYS * 1440)))
            payments.append({"payment_id": f"P{i}", "invoice_id": f"I{i}",
                             "customer_id": customer, "paid_at": paid, "amount": 50.0,
                             "method": "card"})  # fmt: skip
        if draw(st.integers(0, 4)) == 0:
            at = START + pd.Timedelta(minutes=draw(st.integers(0, HORIZON_DAYS * 1440)))
            responses.append({"customer_id": customer, "invoice_id": f"I{i}", "type": "dispute",
                              "occurred_at": at, "channel": None})  # fmt: skip
    for _ in range(draw(st.integers(0, 3))):
        at = START + pd.Timedelta(minutes=draw(st.integers(0, HORIZON_DAYS * 1440)))
        responses.append({"customer_id": f"C{draw(st.integers(0, n_customers - 1))}",
                          "invoice_id": None, "type": "opt_out", "occurred_at": at,
                          "channel": draw(st.sampled_from(CHANNELS))})  # fmt: skip
    payment_columns = ["payment_id", "invoice_id", "customer_id", "paid_at", "amount", "method"]
    response_columns = ["customer_id", "invoice_id", "type", "occurred_at", "channel"]
    return {
        "customers": customers,
        "invoices": pd.DataFrame(invoices),
        "payments": pd.DataFrame(payments, columns=payment_columns).astype(
            {"paid_at": "datetime64[ns, UTC]"}),
        "responses": pd.DataFrame(responses, columns=response_columns).astype(
            {"occurred_at": "datetime64[ns, UTC]"}),
    }  # fmt: skip


@pytest.fixture(scope="module")
def dispatcher(tmp_path_factory: pytest.TempPathFactory, kit) -> Iterator[Dispatcher]:
    home = tmp_path_factory.mktemp("properties")
    rng = random.Random(0)
    client = DecisionClient("http://adversary.test", kit.token,
                            transport=httpx.MockTransport(adversarial(rng)))  # fmt: skip
    built = Dispatcher(kit.make_settings(Path(home)), client=client)
    built.rng = rng  # type: ignore[attr-defined]
    yield built
    built.close()


def _reset(dispatcher: Dispatcher) -> None:
    with dispatcher.sessions.begin() as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(delete(table))


@hypothesis_settings(max_examples=20, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(tables=worlds(), seed=st.integers(0, 2**32 - 1), step_hours=st.integers(12, 72))
def test_nothing_sent_breaks_a_rule(dispatcher: Dispatcher, tables, seed: int, step_hours) -> None:
    _reset(dispatcher)
    dispatcher.rng.seed(seed)  # type: ignore[attr-defined]
    load_tables(dispatcher.sessions, tables, dispatcher.workflow)
    clock = START
    while clock < START + pd.Timedelta(days=HORIZON_DAYS):
        dispatcher.run_once(clock.to_pydatetime())
        clock += pd.Timedelta(hours=step_hours)
    with dispatcher.sessions() as session:
        sent = pd.DataFrame(
            session.execute(select(Message.invoice_id, Message.customer_id, Message.channel,
                                   Message.sent_at).where(Message.status == "sent")).all(),
            columns=["invoice_id", "customer_id", "channel", "sent_at"],
        )  # fmt: skip
    event(f"messages sent: {'none' if sent.empty else 'some'}")
    if sent.empty:
        return
    guard = dispatcher.settings.policy.guardrails
    customers = tables["customers"].set_index("customer_id")
    payments = tables["payments"].set_index("invoice_id")["paid_at"]
    responses = tables["responses"]
    for row in sent.itertuples():
        at = pd.Timestamp(row.sent_at)
        assert not (row.invoice_id in payments.index and payments[row.invoice_id] <= at), row
        customer = customers.loc[row.customer_id]
        assert customer[f"consent_{row.channel}"] and not customer[f"opted_out_{row.channel}"]
        opt_outs = responses[(responses["type"] == "opt_out")
                             & (responses["customer_id"] == row.customer_id)
                             & (responses["channel"] == row.channel)]  # fmt: skip
        assert not (opt_outs["occurred_at"] <= at).any(), row
        disputes = responses[(responses["type"] == "dispute")
                             & (responses["invoice_id"] == row.invoice_id)]  # fmt: skip
        assert not (disputes["occurred_at"] <= at).any(), row
        hour = at.tz_convert(customer["timezone"]).hour
        start, end = guard.quiet_hours
        assert not (hour >= start or hour < end), (row, hour)
        earlier = sent[(sent["customer_id"] == row.customer_id) & (sent["sent_at"] < at)]
        assert (earlier["sent_at"] > at - timedelta(hours=24)).sum() < (
            guard.max_messages_per_customer_day
        )
        same = earlier[earlier["invoice_id"] == row.invoice_id]
        assert (same["sent_at"] > at - timedelta(days=7)).sum() < (
            guard.max_messages_per_invoice_week
        )
