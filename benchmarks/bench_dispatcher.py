"""One dunning stage for 100,000 open invoices through the dispatcher, with the real service.

Starts ``bentoml serve`` for a home whose registry holds the champions and whose online store
holds the profiles (``make demo`` + ``make demo-models`` + ``paynudge policy train``; with
``--build`` a small served home is built first, as the serving tests build theirs). Then, in a
fresh SQLite dispatcher database: loads the customers and 100,000 invoices all entering the
``overdue_3`` stage, plans the stage (``/decide`` in batches of ``decide_batch_size``, local
re-check, outbox rows; each batch's ``/decide`` call runs while the batch before is written) and
sends every scheduled message into the dry-run outbox (render, write a file, record). Prints the
time of each part, invoices per second, the share of the time planning was blocked waiting for
``/decide`` and the ratio to the goal (under 60 s on 2 cores).

    .venv/bin/python benchmarks/bench_dispatcher.py --home .paynudge
    .venv/bin/python benchmarks/bench_dispatcher.py --build      # no demo home needed
    .venv/bin/python benchmarks/bench_dispatcher.py --fake-service --data .paynudge/demo

``--fake-service`` answers ``/decide`` in-process (the first consented channel, friendly, no
offer, at the next 10:00 local time before the deadline) through the same client, so the figures
isolate the dispatcher's own work: planning without the wait, and sending.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import pandas as pd

from dispatcher.cycle import Dispatcher
from dispatcher.loading import load_tables
from paynudge.config import Settings
from paynudge.vocabulary import CHANNELS
from serving.client import DecisionClient

ROOT = Path(__file__).resolve().parents[1]
GOAL_SECONDS = 60.0
STAGE_OFFSET_DAYS = 3  # overdue_3
FAKE_SEND_HOUR = 10
T = pd.Timestamp("2025-07-10 12:00", tz="UTC")


def build_served_home(home: Path, customers: int) -> pd.DataFrame:
    """A small served world (quick models, policy, profiles) as the serving tests build it."""
    from features.datasets import build_datasets
    from features.profiles import build_profiles
    from features.store import materialize
    from simulation.world import make_config, simulate_world
    from training.specs import SPECS

    spec = importlib.util.spec_from_file_location(
        "serving_world_helpers", ROOT / "tests" / "serving" / "conftest.py"
    )
    assert spec is not None and spec.loader is not None
    helpers = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = helpers
    spec.loader.exec_module(helpers)
    world = simulate_world(make_config(n_customers=customers, n_months=6, seed=17))
    settings = Settings(home=home)
    build_datasets(world.tables, settings.features_directory)
    build_profiles(world.tables, settings.features_directory)
    materialize(settings)
    for name in ("late_payment", "churn", "send_time"):
        estimator = helpers.fit_estimator(settings.features_directory, name)
        example = pd.read_parquet(settings.features_directory / f"{name}.parquet").head(5)
        helpers.register_champion(estimator, example[list(SPECS[name].features)], name, settings)
    helpers.register_policy(world, settings)
    return world.tables["customers"]


def stage_invoices(customers: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    due = T.normalize().tz_localize(None) - pd.Timedelta(days=STAGE_OFFSET_DAYS)
    return pd.DataFrame({
        "invoice_id": [f"B{i:07d}" for i in range(n)],
        "customer_id": rng.choice(customers["customer_id"].to_numpy(), n),
        "issue_date": due - pd.Timedelta(days=14), "due_date": due,
        "amount": np.round(rng.gamma(2.0, 30.0, n) + 5, 2),
    })  # fmt: skip


def fake_decide(http: httpx.Request) -> httpx.Response:
    """An in-process /decide: the first consented channel not opted out (none in a dispute),
    friendly, no offer, at the next 10:00 local time unless that is past the deadline."""
    body = json.loads(http.content)
    if http.url.path == "/feedback":
        return httpx.Response(200, json={"accepted": len(body["feedback"]), "duplicates": 0})
    decisions = []
    for request in body["requests"]:
        flags = request["overrides"]
        allowed = [c for c in CHANNELS if flags[f"consent_{c}"] and not flags[f"opted_out_{c}"]]
        channel = None if request["dispute_open"] or not allowed else allowed[0]
        local = datetime.fromisoformat(request["now"]).astimezone(ZoneInfo(request["timezone"]))
        send = local.replace(hour=FAKE_SEND_HOUR, minute=0, second=0, microsecond=0)
        send += timedelta(days=1) if send <= local else timedelta()
        if send > datetime.fromisoformat(request["send_before"]):
            channel = None
        decisions.append({
            "customer_id": request["customer_id"], "invoice_id": request["invoice_id"],
            "late_payment_probability": 0.3, "churn_probability": 0.05, "cold_start": False,
            "decision_id": str(uuid.uuid4()), "channel": channel,
            "action": f"{channel}/friendly/none" if channel else "no_contact",
            "tone": channel and "friendly", "offer": channel and "none",
            "send_at": channel and send.isoformat(), "send_at_local": channel and send.isoformat(),
            "timezone": request["timezone"], "propensity": 0.9, "expected_reward": 1.0,
            "explanation": None, "open_probability": None,
            "guardrail_reasons": [], "model_versions": {}, "policy_version": "fake/1",
        })  # fmt: skip
    return httpx.Response(200, json={"decisions": decisions})


@contextmanager
def decision_client(home: Path, fake: bool) -> Iterator[DecisionClient]:
    """A client of the real service started on ``home`` (stopped afterwards), or of the fake."""
    if fake:
        yield DecisionClient("http://fake.decisions", "fake", transport=httpx.MockTransport(
            fake_decide))  # fmt: skip
        return
    from bench_serving import start_service

    token = secrets.token_urlsafe(24)
    process, url = start_service(home, token)
    try:
        yield DecisionClient(url, token, timeout=120)
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Settings().home)
    parser.add_argument("--build", action="store_true", help="build a small served home first")
    parser.add_argument("--customers", type=int, default=2_000, help="customers of --build")
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--data", type=Path, default=None, help="customers table folder")
    parser.add_argument("--fake-service", action="store_true",
                        help="answer /decide in-process (the dispatcher's own work)")  # fmt: skip
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    scratch = Path(tempfile.mkdtemp(prefix="bench_dispatcher_"))
    home = scratch / "served" if args.build else args.home
    if args.build:
        started = time.perf_counter()
        customers = build_served_home(home, args.customers)
        print(f"built a served home for {args.customers:,} customers in "
              f"{time.perf_counter() - started:.0f} s")  # fmt: skip
    else:
        data = args.data or Settings(home=args.home).default_data_dir
        customers = pd.read_parquet(data / "customers.parquet")
    print(f"decision service: {'in-process fake' if args.fake_service else 'real, ' + str(home)}; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip
    with decision_client(home, args.fake_service) as client:
        settings = Settings(home=scratch / "dispatcher")
        dispatcher = Dispatcher(settings, client=client)
        tables = {"customers": customers,
                  "invoices": stage_invoices(customers, args.invoices, seed=1),
                  "payments": pd.DataFrame(columns=["payment_id", "invoice_id", "customer_id",
                                                    "paid_at", "amount", "method"])}  # fmt: skip
        started = time.perf_counter()
        load_tables(dispatcher.sessions, tables, dispatcher.workflow)
        loaded = time.perf_counter() - started
        first = dispatcher.run_once(T.to_pydatetime())  # plan (and send what is due now)
        second = dispatcher.run_once((T + pd.Timedelta(days=2)).to_pydatetime())  # send the rest
        dispatcher.close()
    report(args.invoices, loaded, first, second)


def report(n: int, loaded: float, first, second) -> None:
    """Planning is timed by itself, less the sending it did while decisions were on their way;
    sending is the rest of both passes (recovery, sending what was due, closing the loop)."""
    plan, stage = first.planned, first.seconds + second.seconds
    sent = first.sent.sent + second.sent.sent
    own = plan.seconds - plan.decide_seconds - plan.waiting_work_seconds
    sending = stage - plan.seconds + plan.waiting_work_seconds
    print(f"invoices                         {n:>10,}")
    print(f"load into the database           {loaded:>10.1f} s")
    print(f"plan: decide + re-check + outbox {plan.seconds:>10.1f} s   "
          f"({plan.scheduled:,} scheduled, {plan.no_contact:,} no contact, "
          f"{plan.blocked:,} blocked)")  # fmt: skip
    print(f"  blocked waiting for /decide    {plan.decide_seconds:>10.1f} s   "
          f"({plan.decide_seconds / stage:.0%} of the stage; the calls took "
          f"{plan.decide_call_seconds:.1f} s)")  # fmt: skip
    print(f"  own work (plan without wait)   {own:>10.1f} s   "
          f"({own / n * 100_000:.1f} s per 100,000 invoices; {plan.batches:,} batches, "
          f"{plan.changed:,} invoices changed after their /decide call)")  # fmt: skip
    print(f"send: render + dry-run outbox    {sending:>10.1f} s   ({sent:,} messages; "
          f"{sending / max(sent, 1) * 100_000:.1f} s per 100,000; "
          f"{plan.waiting_work_seconds:.1f} s of it while waiting for /decide)")  # fmt: skip
    print(f"stage total                      {stage:>10.1f} s   "
          f"({n / stage:,.0f} invoices/s; goal {GOAL_SECONDS:.0f} s: "
          f"{stage / GOAL_SECONDS:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
