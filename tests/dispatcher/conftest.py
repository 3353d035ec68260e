"""Dispatcher fixtures: a small world, settings on a temporary home, a guarded fake /decide.

The fake decision service answers /decide over an httpx transport in-process (the unit tests of
planning and sending need decisions, not models); it picks the first channel the customer
consents to and has not opted out of, at the next 10:00 local time before the deadline, and no
contact during disputes. The crash test and one integration test use the real service.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest

from paynudge.config import Settings
from paynudge.vocabulary import CHANNELS
from serving.client import DecisionClient
from simulation.world import World, make_config, simulate_world

SEND_HOUR = 10
TOKEN = "dispatcher-test-token"


@pytest.fixture(scope="session")
def tiny_world() -> World:
    """150 customers over 4 months."""
    return simulate_world(make_config(n_customers=150, n_months=4, seed=23))


def make_settings(home: Path, **dispatcher: object) -> Settings:
    return Settings(
        home=home,
        api_token=TOKEN,
        dispatcher={"link_secret": "x" * 32, "decision_seed": 1, **dispatcher},
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "home")


def fake_decide(
    choose: Callable[[dict], tuple[str, str, str] | None] | None = None,
) -> Callable[[httpx.Request], httpx.Response]:
    """A /decide handler: ``choose(request)`` gives (channel, tone, offer) or None."""

    def default(request: dict) -> tuple[str, str, str] | None:
        if request["dispute_open"]:
            return None
        overrides = request["overrides"]
        for channel in CHANNELS:
            if overrides[f"consent_{channel}"] and not overrides[f"opted_out_{channel}"]:
                if channel == "letter" and request["stage"] == "pre_due":
                    continue
                return channel, "friendly", "none"
        return None

    pick = choose or default

    def handler(http: httpx.Request) -> httpx.Response:
        body = json.loads(http.content)
        if http.url.path == "/feedback":
            return httpx.Response(200, json={"accepted": len(body["feedback"]), "duplicates": 0})
        decisions = []
        for request in body["requests"]:
            now = pd.Timestamp(request["now"])
            local = now.tz_convert(request["timezone"])
            send = local.normalize() + pd.Timedelta(hours=SEND_HOUR)
            if send <= local:
                send += pd.Timedelta(days=1)
            deadline = request.get("send_before")
            chosen = pick(request)
            if chosen is None or (deadline and send > pd.Timestamp(deadline)):
                chosen = None
            channel, tone, offer = chosen or (None, None, None)
            decisions.append(
                {
                    "customer_id": request["customer_id"],
                    "invoice_id": request["invoice_id"],
                    "late_payment_probability": 0.3,
                    "churn_probability": 0.05,
                    "cold_start": False,
                    "explanation": None,
                    "decision_id": str(uuid.uuid4()),
                    "action": f"{channel}/{tone}/{offer}" if channel else "no_contact",
                    "channel": channel,
                    "tone": tone,
                    "offer": offer,
                    "send_at": send.tz_convert("UTC").isoformat() if channel else None,
                    "send_at_local": send.isoformat() if channel else None,
                    "timezone": request["timezone"],
                    "propensity": 0.9,
                    "open_probability": None,
                    "expected_reward": 1.0,
                    "guardrail_reasons": [],
                    "model_versions": {"late_payment": "late_payment/1"},
                    "policy_version": "fake/1",
                }
            )
        return httpx.Response(200, json={"decisions": decisions})

    return handler


@pytest.fixture
def fake_client() -> DecisionClient:
    return DecisionClient(
        "http://decisions.test", TOKEN, transport=httpx.MockTransport(fake_decide())
    )


def open_invoices_at(world: World, now: pd.Timestamp) -> int:
    """Invoices issued by ``now`` and not settled by it (for sanity checks)."""
    invoices = world.tables["invoices"]
    return int((pd.to_datetime(invoices["issue_date"]) <= now.tz_localize(None)).sum())


ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Kit:
    """The helpers above, for test modules (conftest is not importable under importlib mode)."""

    make_settings: Callable[..., Settings]
    fake_decide: Callable[..., Callable[[httpx.Request], httpx.Response]]
    token: str


@pytest.fixture(scope="session")
def kit() -> Kit:
    return Kit(make_settings, fake_decide, TOKEN)
